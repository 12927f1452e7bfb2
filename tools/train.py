"""Train any gatedvision task from its config: the config's ``default_scope`` decides the task.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CHECKPOINT]] [--amp] [--compile [BACKEND]] [--no-precheck]
                                 [--cfg-options key=value ...] [--launcher none|pytorch|slurm]
"""
import argparse
import os.path as osp

from mmengine.config import DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from gatedvision.backbones._helpers import WeightsUnavailable
from gatedvision.engine.config import add_compile_argument, load_config


def parse_args():
    p = argparse.ArgumentParser(description='Train a model')
    p.add_argument('config', help='config file')
    p.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config>)')
    p.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT',
                   help='resume from CHECKPOINT, or without a value from the latest in work-dir')
    p.add_argument('--no-precheck', action='store_true',
                   help='skip the start-up check (data paths, classes, one batch through model and evaluator)')
    p.add_argument('--amp', action='store_true', help='mixed precision: fp16 with loss scaling on CUDA, bf16 autocast on the CPU')
    add_compile_argument(p)
    p.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                   help='override config keys, e.g. train_cfg.max_iters=100')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return p.parse_args()


def add_tensorboard(cfg) -> None:
    """Log scalars to TensorBoard too when it is installed (the local backend always logs)."""
    import importlib.util
    backends = cfg.get('visualizer', {}).get('vis_backends')
    if backends is not None and importlib.util.find_spec('tensorboard') is not None \
            and not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.compile:
        cfg.compile = dict(backend=args.compile)
    if args.no_precheck:
        cfg.precheck = False
    if args.amp:
        import torch
        configured = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if configured not in ('OptimWrapper', 'mmengine.OptimWrapper'):  # as mmseg's train.py asserts
            raise SystemExit(f"--amp replaces optim_wrapper.type with a mixed-precision wrapper, but the config "
                             f"sets {configured!r}; drop --amp and set that wrapper's own mixed precision "
                             f"options, or set optim_wrapper.type='OptimWrapper'")
        if torch.cuda.is_available():  # fp16 with dynamic loss scaling
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        else:  # bf16 autocast on the CPU: no loss scaling needed
            cfg.optim_wrapper.type = 'gatedvision.AutocastOptimWrapper'
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        if not osp.isfile(args.resume):
            raise SystemExit(f"--resume: checkpoint '{args.resume}' does not exist")
        cfg.resume, cfg.load_from = True, args.resume
    add_tensorboard(cfg)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    try:
        runner.train()
    except WeightsUnavailable as e:  # no network: the message says what to do
        raise SystemExit(f'error: {e}') from None


if __name__ == '__main__':
    main()
