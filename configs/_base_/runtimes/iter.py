# Iteration-based runtime of the tasks built on mmengine directly (restoration, medical
# segmentation): gatedvision scope; each task's runtime names its best-checkpoint metric, picture
# hook and inferencer.
_base_ = ['../default_runtime.py']
default_scope = 'gatedvision'
visualizer = dict(type='Visualizer', vis_backends=_base_.vis_backends, name='visualizer')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000, max_keep_ckpts=3,
                    rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
log_processor = dict(by_epoch=False)
