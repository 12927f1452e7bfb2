_base_ = ['../default_runtime.py']
default_scope = 'mmdet'
visualizer = dict(type='DetLocalVisualizer', vis_backends=_base_.vis_backends, name='visualizer')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
log_processor = dict(by_epoch=True)
# tools/infer.py: mmdet's / mmseg's inferencer for users' own images
inferencer = dict(type='gatedvision.DetInferencer')
# the engine and this task's modules (and only this task's library: mmdet)
custom_imports = dict(imports=['gatedvision.engine', 'gatedvision.tasks.detection'], allow_failed_imports=False)
