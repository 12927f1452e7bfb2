"""Convert the authors' released detection / segmentation checkpoints (mmdet 2.x / mmseg 0.x, their
own backbone classes) into the layout of a gatedvision config's model, or back.

    python tools/convert_checkpoint.py SRC DST --config CONFIG            # the authors' -> ours
    python tools/convert_checkpoint.py SRC DST --config CONFIG --to-authors

``tools/test.py`` and ``load_from`` also take the authors' files as they are (converted on load);
this writes the converted file once, e.g. for ``tools/infer.py``. Every tensor is accounted for:
the conversion fails, naming them, if the file holds tensors the config's model does not use or
lacks tensors it needs (``--allow-partial`` writes the file anyway and only lists them).
docs/configs.md lists the released checkpoints, their configs and the numbers they reproduce.
"""
import argparse
import os
import sys

import torch
from mmengine.config import DictAction
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint

import gatedvision.tasks  # noqa: F401  (registers TimmBackbone, the necks and heads)
from gatedvision.engine.checkpoint import (atomic_torch_save, authors_dense_to_ours, check_checkpoint,
                                           is_authors_dense_layout, ours_to_authors_dense)
from gatedvision.engine.config import load_config


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('src', help="checkpoint to convert (local file or URL)")
    p.add_argument('dst', help='where to write the converted checkpoint')
    p.add_argument('--config', required=True, help="the gatedvision config whose model the weights are for")
    p.add_argument('--to-authors', action='store_true', help="ours -> the authors' layout")
    p.add_argument('--allow-partial', action='store_true', help='write even if tensors are left over or missing')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                   help='override config keys, as for tools/test.py')
    return p.parse_args(argv)


def build_model(config: str, options: dict = None):
    cfg = load_config(config, options)
    init_default_scope(cfg.get('default_scope'))
    backbone = cfg.model.get('backbone', {})
    if 'pretrained' in backbone:  # the weights come from the checkpoint: no download
        backbone.pretrained = False
    return MODELS.build(cfg.model)


def main(argv=None) -> int:
    args = parse_args(argv)
    if '://' not in args.src:
        check_checkpoint(args.src)
    model = build_model(args.config, args.cfg_options)
    checkpoint = _load_checkpoint(args.src, map_location='cpu')
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint.get('state_dict'), dict) \
        else checkpoint
    meta = dict(checkpoint.get('meta') or {}, converted_from=os.path.basename(args.src), config=args.config)
    ours = model.state_dict()
    if args.to_authors:
        if is_authors_dense_layout(state_dict, model):
            sys.exit(f"{args.src} is in the authors' layout already")
        converted = ours_to_authors_dense(state_dict, model)
        unused, missing = [], sorted(set(ours) - set(state_dict))
    else:
        if not is_authors_dense_layout(state_dict, model):
            sys.exit(f"{args.src} is not in the authors' dense layout for {args.config} (its backbone.* keys "
                     f"are gatedvision's, or it has none): nothing to convert")
        converted, report = authors_dense_to_ours(state_dict, model)
        unused = report['unused'] + sorted(set(converted) - set(ours))
        missing = report['filled'] + sorted(set(ours) - set(converted))
    shapes = sorted(k for k in set(converted) & set(ours)
                    if not args.to_authors and tuple(converted[k].shape) != tuple(ours[k].shape))
    for what, names in (('tensors the model does not use', unused), ('tensors the model needs and the '
                        'file lacks', missing), ('tensors of another shape than the model\'s', shapes)):
        if names:
            print(f'{len(names)} {what}: {", ".join(names)}', file=sys.stderr)
    if (unused or missing or shapes) and not args.allow_partial:
        print('not written (--allow-partial writes it anyway)', file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.dst)), exist_ok=True)
    atomic_torch_save({'meta': meta, 'state_dict': converted}, args.dst)
    print(f'{len(converted)} tensors -> {args.dst}')
    return 0


if __name__ == '__main__':
    torch.set_grad_enabled(False)
    sys.exit(main())
