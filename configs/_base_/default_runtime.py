# Shared by every task; each task's runtime in runtimes/ adds its scope, visualizer and hooks.
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
# atomic checkpoints, safe --resume, a checkpoint on SIGTERM / Ctrl-C, a stop at the first NaN loss.
# Its hooks join mmengine's default hooks by name (gatedvision.engine.runner.DEFAULT_HOOKS): random_state
# (exact --resume), interrupt, batch_files, nonfinite_loss, loss_average, sync_buffers, startup_check,
# authors_checkpoint. Change one with an entry of its name, e.g.
# default_hooks = dict(nonfinite_loss=dict(policy='skip'))  # skip updates whose loss is NaN / Inf
# and remove one with None.
runner_type = 'gatedvision.ResilientRunner'
# before the first iteration: data paths, classes against the heads, one training batch and one
# validation sample through the model and the evaluator (tools/train.py --no-precheck: False)
precheck = True
resume = False
# registers the shared engine and makes torch.load accept mmengine checkpoints; each task's
# runtime (runtimes/<task>.py) adds its own package
custom_imports = dict(imports=['gatedvision.engine'], allow_failed_imports=False)
