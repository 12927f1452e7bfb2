_base_ = ['./iter.py']
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(interval=20000, save_best='PSNR'),
    # tools/test.py --show-dir: input | restored | ground truth
    visualization=dict(type='RestorationVisualizationHook'))
# tools/infer.py: restore your own pictures (tiled when large)
inferencer = dict(type='gatedvision.RestorationInferencer')
# the engine and this task's modules (restoration needs no library beyond mmengine)
custom_imports = dict(imports=['gatedvision.engine', 'gatedvision.tasks.restoration'], allow_failed_imports=False)
