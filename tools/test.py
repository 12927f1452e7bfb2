"""Evaluate a checkpoint of any gatedvision task on the config's test set.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--out FILE] [--amp] [--compile [BACKEND]]
                                           [--cfg-options key=value ...] [--launcher ...]
"""
import argparse
import inspect
import os.path as osp

from mmengine.config import DictAction
from mmengine.registry import HOOKS, RUNNERS
from mmengine.runner import Runner

from gatedvision.engine.checkpoint import checkpoint_problem
from gatedvision.engine.config import add_compile_argument, load_config


def parse_args():
    p = argparse.ArgumentParser(description='Test a checkpoint')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--work-dir', help='where logs and metrics go (default: work_dirs/<config>)')
    p.add_argument('--show-dir', help='write a picture of every prediction into this folder')
    p.add_argument('--show-interval', type=int, default=1,
                   help='with --show-dir, draw every N-th test batch (default: every one)')
    p.add_argument('--out', help='dump the raw predictions to this pickle file')
    p.add_argument('--amp', action='store_true',
                   help='mixed precision: autocast fp16 on CUDA, bf16 on the CPU (mmengine TestLoop fp16)')
    add_compile_argument(p)
    p.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                   help='override config keys')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return p.parse_args()


def enable_pictures(cfg, show_dir: str, interval: int = 1) -> None:
    """Turn on the task's visualization hook and send its pictures to ``show_dir``."""
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise SystemExit(f'--show-dir: config {cfg.filename} has no default_hooks.visualization')
    hook.draw = True
    hook.interval = interval
    hook_type = hook.type
    if isinstance(hook_type, str) and '.' not in hook_type and cfg.get('default_scope'):
        hook_type = f'{cfg.default_scope}.{hook_type}'  # the root registry only sees scoped names
    hook_cls = HOOKS.get(hook_type) if isinstance(hook_type, str) else hook_type
    if hook_cls is not None and 'test_out_dir' in inspect.signature(hook_cls).parameters:
        hook.test_out_dir = osp.abspath(show_dir)  # hooks that write files themselves (mmdet)
    cfg.visualizer.save_dir = show_dir  # hooks that write through the visualizer (mmseg)


def main():
    args = parse_args()
    problem = checkpoint_problem(args.checkpoint)
    if problem:
        raise SystemExit(f"checkpoint '{args.checkpoint}' {problem}")
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.amp:  # mmengine's loops autocast to fp16 on CUDA and to bf16 on the CPU
        cfg.test_cfg = dict(cfg.get('test_cfg') or dict(type='TestLoop'), fp16=True)
    if args.compile:
        cfg.compile = dict(backend=args.compile)
    if args.show_dir:
        enable_pictures(cfg, args.show_dir, args.show_interval)
    if args.out:
        cfg.test_evaluator = [*(cfg.test_evaluator if isinstance(cfg.test_evaluator, list)
                                else [cfg.test_evaluator]),
                              dict(type='DumpResults', out_file_path=args.out)]
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    main()
