"""Predict on your own images with a trained checkpoint; pictures (and predictions) go to --out-dir.

    python tools/infer.py CONFIG CHECKPOINT IMAGE_OR_DIR [--out-dir DIR] [--device cpu|cuda] [--amp]
                          [--compile [BACKEND]]

The config's ``inferencer`` names the task's inferencer (mmdet's DetInferencer for detection and
instance segmentation, mmseg's MMSegInferencer for semantic segmentation).
"""
import argparse
import os.path as osp

from mmengine.registry import INFERENCERS, DefaultScope
from mmengine.runner.amp import autocast

from gatedvision.engine.checkpoint import checkpoint_problem
from gatedvision.engine.bridge import compile_backbones
from gatedvision.engine.config import add_compile_argument, load_config


def parse_args():
    p = argparse.ArgumentParser(description='Predict on images')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('inputs', help='an image file or a folder of images')
    p.add_argument('--out-dir', default='outputs', help='where the pictures and predictions go')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 ... (default: cuda if available)')
    p.add_argument('--amp', action='store_true', help='mixed precision: autocast fp16 on CUDA, bf16 on the CPU')
    add_compile_argument(p, "the model's backbone (heads and post-processing stay eager)")
    return p.parse_args()


def main():
    args = parse_args()
    problem = checkpoint_problem(args.checkpoint)
    if problem:
        raise SystemExit(f"checkpoint '{args.checkpoint}' {problem}")
    if not osp.exists(args.inputs):
        raise SystemExit(f"input '{args.inputs}' does not exist")
    cfg = load_config(args.config)
    if 'inferencer' not in cfg:
        raise SystemExit(f'config {args.config} names no inferencer (inferencer = dict(type=...))')
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        inferencer = INFERENCERS.build(dict(cfg.inferencer, model=cfg, weights=args.checkpoint,
                                            device=args.device))
    if args.compile:  # as tools/train.py and tools/test.py do: the backbone
        names = compile_backbones(inferencer.model, dict(backend=args.compile))
        print(f"torch.compile(backend={args.compile!r}): {', '.join(names)}")
    # mmengine's autocast: fp16 on CUDA, bf16 on the CPU (the model's device)
    device = next(inferencer.model.parameters()).device.type
    with autocast(device_type=device, enabled=args.amp):
        inferencer(args.inputs, out_dir=args.out_dir)
    print(f'pictures written to {osp.join(args.out_dir, "vis")}')


if __name__ == '__main__':
    main()
