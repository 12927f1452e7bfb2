_base_ = ['../default_runtime.py']
default_scope = 'gatedvision'
visualizer = dict(type='Visualizer', vis_backends=_base_.vis_backends, name='visualizer')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=20000, max_keep_ckpts=3,
                    save_best='PSNR', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # tools/test.py --show-dir: input | restored | ground truth
    visualization=dict(type='RestorationVisualizationHook'))
log_processor = dict(by_epoch=False)
# tools/infer.py: restore your own pictures (tiled when large)
inferencer = dict(type='gatedvision.RestorationInferencer')
