# Shared by every task; each task's runtime in runtimes/ adds its scope, visualizer and hooks.
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
log_processor = dict(by_epoch=False)
log_level = 'INFO'
# restores the random states on --resume so that resumed runs match uninterrupted ones
custom_hooks = [dict(type='gatedvision.RandomStateHook')]
load_from = None
# atomic checkpoints, safe --resume, a checkpoint on SIGTERM / Ctrl-C, a stop at the first NaN loss
runner_type = 'gatedvision.ResilientRunner'
nonfinite_loss = 'stop'  # or 'skip': skip updates whose loss is NaN / Inf
# before the first iteration: data paths, classes against the heads, one training batch and one
# validation sample through the model and the evaluator (tools/train.py --no-precheck: False)
precheck = True
resume = False
# registers the shared engine and makes torch.load accept mmengine checkpoints; each task's
# runtime (runtimes/<task>.py) adds its own package
custom_imports = dict(imports=['gatedvision.engine'], allow_failed_imports=False)
