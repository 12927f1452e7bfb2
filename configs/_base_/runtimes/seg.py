_base_ = ['../default_runtime.py']
default_scope = 'mmseg'
visualizer = dict(type='SegLocalVisualizer', vis_backends=_base_.vis_backends, name='visualizer')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=16000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
tta_model = dict(type='SegTTAModel')
# tools/infer.py: mmdet's / mmseg's inferencer for users' own images
inferencer = dict(type='gatedvision.SegInferencer')
# the engine and this task's modules (and only this task's library: mmseg)
custom_imports = dict(imports=['gatedvision.engine', 'gatedvision.tasks.segmentation'], allow_failed_imports=False)
