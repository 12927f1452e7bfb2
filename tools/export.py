"""Export a model to ONNX through torch's dynamo exporter, and check it against PyTorch in onnxruntime.

    python tools/export.py MODEL [--pretrained | --checkpoint CKPT] [--deploy] ...   # a timm model
    python tools/export.py CONFIG CHECKPOINT ...                                     # a task model
        [--out model.onnx] [--input-size H W] [--batch N] [--dynamic] [--check] [--atol A] [--rtol R]

A timm model name (any gatedvision or timm model) exports the classifier, logits out; ``--deploy``
first calls the model's ``reparameterize()`` (OverLoCK's deploy form). A config and its checkpoint
export the task model as it predicts, on the batch its ``data_preprocessor`` gives (normalised,
padded):

- segmentor (mmseg): per-pixel logits (N, classes, H, W), resized to the input as mmseg does;
- restorer: the restored image (N, 3, H, W) (it normalises internally: input in [0, 1]);
- medical segmentor: the full-resolution logits (N, classes, H, W) of a batch of slices;
- detector (mmdet): backbone and neck only, the FPN maps: mmdet's RPN / RoI post-processing
  (proposal sorting, NMS, RoIAlign on variable box counts) is not exported; mmdeploy covers it.

``--dynamic``: H and W are dynamic (multiples of the model's stride), batch too; fixed otherwise.
``--check``: onnxruntime runs the file on a random input (and, with ``--dynamic``, on a second
size) and the largest difference from PyTorch's output is printed; the exit status is 1 when it
is above ``atol + rtol * max|PyTorch output|``. Needs the ``deploy`` extra (onnx, onnxruntime,
onnxscript). Building the model downloads nothing: a config's checkpoint replaces every weight.
"""
import argparse
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Export a timm model or a task model to ONNX')
    p.add_argument('model', help='a timm model name, or a config file (.py)')
    p.add_argument('checkpoint', nargs='?', help='with a config: its checkpoint')
    p.add_argument('--checkpoint', dest='weights', help='with a model name: a checkpoint file for it')
    p.add_argument('--pretrained', action='store_true', help='with a model name: its pretrained weights')
    p.add_argument('--deploy', action='store_true', help='reparameterize() first (OverLoCK)')
    p.add_argument('--out', type=Path, default=None, help='the .onnx file (default: <model>.onnx)')
    p.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'), default=None,
                   help="default: the model's pretrained input size, or 512 x 512 for a task model")
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--dynamic', action='store_true', help='dynamic batch, H and W')
    p.add_argument('--check', action='store_true', help='compare onnxruntime with PyTorch')
    p.add_argument('--atol', type=float, default=1e-4)
    p.add_argument('--rtol', type=float, default=1e-4)
    p.add_argument('--opset', type=int, default=18)
    return p.parse_args(argv)


class _Segmentor(nn.Module):
    """mmseg's EncoderDecoder as it predicts: logits resized to the input (``encode_decode``)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        logits = self.model._forward(x)
        return F.interpolate(logits, size=x.shape[-2:], mode='bilinear', align_corners=self.model.align_corners)


class _Tensor(nn.Module):
    """A gatedvision task model's ``mode='tensor'`` output (the first one, where it returns several:
    the medical segmentor's full-resolution logits before its deep-supervision levels)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x, mode='tensor')
        return out[0] if isinstance(out, (list, tuple)) else out


class _Features(nn.Module):
    """A detector's backbone and neck: the FPN maps (mmdet's post-processing is not exported)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return tuple(self.model.extract_feat(x))


def timm_model(args) -> tuple:
    import timm
    import gatedvision  # noqa: F401  (registers the gatedvision models)
    kwargs = dict(pretrained=args.pretrained or bool(args.weights))
    if args.weights:
        kwargs['pretrained_cfg_overlay'] = dict(file=args.weights)
    model = timm.create_model(args.model, **kwargs)
    if args.deploy:
        if not hasattr(model, 'reparameterize'):
            raise SystemExit(f'--deploy: {args.model} has no reparameterize() (it has no deploy form)')
        model.reparameterize()
    size = tuple(args.input_size or model.pretrained_cfg['input_size'][-2:])
    stride = max(getattr(model, 'feature_info', [{'reduction': 32}])[-1]['reduction'], 32)
    return model, size, stride, 'logits'


def task_model(args) -> tuple:
    from mmengine.registry import DefaultScope, MODELS
    from gatedvision.engine.checkpoint import checkpoint_problem, load_checkpoint
    from gatedvision.engine.config import load_config
    if not args.checkpoint:
        raise SystemExit(f'{args.model}: a config needs its checkpoint (python tools/export.py CONFIG CHECKPOINT)')
    problem = checkpoint_problem(args.checkpoint)
    if problem:
        raise SystemExit(f"checkpoint '{args.checkpoint}' {problem}")
    cfg = load_config(args.model)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)  # no init_weights(): nothing is downloaded
    state = load_checkpoint(args.checkpoint)
    model.load_state_dict(state.get('state_dict', state), strict=True)
    kind = type(model).__name__
    if cfg.default_scope == 'mmdet':
        wrapped, what = _Features(model), 'the FPN maps of the backbone and neck (no RPN / RoI post-processing)'
    elif cfg.default_scope == 'mmseg':
        wrapped, what = _Segmentor(model), 'per-pixel logits'
    else:
        wrapped, what = _Tensor(model), f'{kind} output'
    size = tuple(args.input_size or (512, 512))
    return wrapped, size, 32, what  # the backbone pads to its own multiple (TimmBackbone's size_divisor)


def export(model: nn.Module, x: torch.Tensor, out: Path, dynamic: bool, stride: int, opset: int):
    dynamic_shapes = None
    if dynamic:
        from torch.export import Dim
        h, w = (Dim(n, min=1, max=8192 // stride) for n in ('h_blocks', 'w_blocks'))
        dynamic_shapes = ({0: Dim('batch', min=1, max=1024), 2: stride * h, 3: stride * w},)
    try:
        torch.onnx.export(model, (x,), str(out), dynamo=True, dynamic_shapes=dynamic_shapes,
                          opset_version=opset, verbose=False)
    except ModuleNotFoundError as e:
        raise SystemExit(f'{e}: ONNX export needs the deploy extra (pip install "gatedvision[deploy]", '
                         f'i.e. onnx, onnxruntime, onnxscript)')
    except Exception as e:
        hint = ('; export at a fixed size (without --dynamic)' if dynamic else '')
        raise SystemExit(f'export failed: {type(e).__name__}: {str(e).splitlines()[0][:500]}{hint}') from e


def check(model: nn.Module, out: Path, x: torch.Tensor, sizes, atol: float, rtol: float) -> bool:
    import numpy as np
    import onnxruntime as ort
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    ok = True
    for size in sizes:
        inp = torch.randn(x.shape[0], x.shape[1], *size)
        with torch.no_grad():
            ref = model(inp)
        refs = [r.numpy() for r in (ref if isinstance(ref, (tuple, list)) else [ref])]
        got = session.run(None, {name: inp.numpy()})
        diff = max(float(np.abs(a - b).max()) for a, b in zip(refs, got))
        scale = max(float(np.abs(a).max()) for a in refs)
        good = diff <= atol + rtol * scale and len(got) == len(refs)
        print(f'onnxruntime vs PyTorch at {x.shape[0]}x{x.shape[1]}x{size[0]}x{size[1]}: max abs difference '
              f'{diff:.2e} (outputs up to {scale:.3g}; tolerance {atol:g} + {rtol:g} x that) '
              f'{"ok" if good else "TOO LARGE"}')
        ok &= good
    return ok


def main(argv=None) -> int:
    args = parse_args(argv)
    is_config = args.model.endswith('.py')
    if is_config and not os.path.isfile(args.model):
        raise SystemExit(f"config '{args.model}' does not exist")
    model, size, stride, what = task_model(args) if is_config else timm_model(args)
    model.eval()
    channels = 3
    if is_config:
        backbone = getattr(getattr(model, 'model', model), 'backbone', None)
        channels = getattr(backbone, 'in_channels', 3)
    # a dynamic batch needs an example of two or more: torch.export specialises dimensions of size 1
    x = torch.randn(max(args.batch, 2) if args.dynamic else args.batch, channels, *size)
    out = args.out or Path(f'{Path(args.model).stem}.onnx')
    export(model, x, out, args.dynamic, stride, args.opset)
    print(f'{out}: {what}, input {x.shape[0]}x{channels}x{size[0]}x{size[1]}'
          + (f' (batch, H and W dynamic: multiples of {stride})' if args.dynamic else ''))
    if not args.check:
        return 0
    sizes = [size] + ([(size[0] + stride, size[1] + 2 * stride)] if args.dynamic else [])
    return 0 if check(model, out, x, sizes, args.atol, args.rtol) else 1


if __name__ == '__main__':
    sys.exit(main())
