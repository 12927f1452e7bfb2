_base_ = ['./iter.py']
default_hooks = dict(
    checkpoint=dict(save_best='mDice'),
    # tools/test.py --show-dir: image | ground truth | prediction, a few slices per volume
    visualization=dict(type='MedSegVisualizationHook'))
# tools/infer.py: NIfTI file or folder in, NIfTI predictions (original affine) + PNG overlays out
inferencer = dict(type='gatedvision.MedSegInferencer')
