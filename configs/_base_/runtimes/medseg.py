_base_ = ['../default_runtime.py']
default_scope = 'gatedvision'
visualizer = dict(type='Visualizer', vis_backends=_base_.vis_backends, name='visualizer')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000, max_keep_ckpts=3,
                    save_best='mDice', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # tools/test.py --show-dir: image | ground truth | prediction, a few slices per volume
    visualization=dict(type='MedSegVisualizationHook'))
log_processor = dict(by_epoch=False)
# tools/infer.py: NIfTI file or folder in, NIfTI predictions (original affine) + PNG overlays out
inferencer = dict(type='gatedvision.MedSegInferencer')
