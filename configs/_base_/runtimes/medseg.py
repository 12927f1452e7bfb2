_base_ = ['./iter.py']
default_hooks = dict(
    checkpoint=dict(save_best='mDice'),
    # tools/test.py --show-dir: image | ground truth | prediction, a few slices per volume
    visualization=dict(type='MedSegVisualizationHook'))
# tools/infer.py: NIfTI file or folder in, NIfTI predictions (original affine) + PNG overlays out
inferencer = dict(type='gatedvision.MedSegInferencer')
# the engine and this task's modules (and only this task's library: MONAI, nibabel)
custom_imports = dict(imports=['gatedvision.engine', 'gatedvision.tasks.medseg'], allow_failed_imports=False)
