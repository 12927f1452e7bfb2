"""Fetch pretrained weights into the local cache ahead of time (for offline compute nodes).

    python tools/download.py NAME_OR_WILDCARD [...]       # e.g. 'hornet_*' or halonet26t.a1h_in1k
    python tools/download.py --list [NAME_OR_WILDCARD ...]

Weights go where ``timm.create_model(name, pretrained=True)`` looks for them: torch hub's cache
(``$TORCH_HOME/hub/checkpoints``) for URLs, the Hugging Face cache for ``hf_hub_id`` sources. A
URL whose file name carries a hash (``name-<sha256 prefix>.pth``) is verified after download.
Without names, gatedvision's own models are meant.
"""
import argparse
import sys
from typing import Dict, List, Tuple

import timm
from timm.models import get_pretrained_cfg
from timm.models._builder import _resolve_pretrained_source
from timm.models._hub import download_cached_file, download_from_hf

import gatedvision  # registers gatedvision's models


def resolve(patterns: List[str]) -> List[str]:
    """Pretrained ``arch.tag`` names matching the patterns (a bare arch means its default tag)."""
    names: List[str] = []
    archs = patterns or gatedvision.list_models()
    for pat in archs:
        hits = timm.list_models(pat, pretrained=True)
        if not hits and '.' not in pat and timm.is_model(pat):
            hits = [n for n in timm.list_models(pat + '.*', pretrained=True)][:1]
        if not hits:
            raise SystemExit(f"'{pat}' matches no model with pretrained weights; "
                             f"see 'python tools/download.py --list'")
        names += [h for h in hits if h not in names]
    return names


def source(name: str) -> Tuple[str, object]:
    cfg = get_pretrained_cfg(name)
    return _resolve_pretrained_source(cfg.to_dict() if cfg is not None else {})


def fetch(kind: str, loc, progress: bool = True) -> str:
    """Download one source into its cache; returns the local path."""
    if kind == 'url':
        return download_cached_file(loc, check_hash=True, progress=progress)
    if kind == 'hf-hub':
        repo, filename = loc if isinstance(loc, tuple) else (loc, None)
        if filename:
            return download_from_hf(repo, filename)
        for candidate in ('model.safetensors', 'pytorch_model.bin'):
            try:
                return download_from_hf(repo, candidate)
            except Exception as e:  # the hub raises its own not-found types
                last = e
        raise last
    if kind == 'file':
        return loc
    raise ValueError(f'no download source ({kind!r})')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('names', nargs='*', help='model names or wildcards (default: gatedvision models)')
    p.add_argument('--list', action='store_true', help='only show the models and their sources')
    args = p.parse_args(argv)
    names = resolve(args.names)
    if not names:
        print('no model matches; gatedvision registers its backbones as they land, and any timm '
              "name or wildcard works too (e.g. 'halonet*')")
    failures: Dict[str, str] = {}
    for name in names:
        kind, loc = source(name)
        where = f'{kind}:{"/".join(loc) if isinstance(loc, tuple) else loc}'
        if args.list:
            print(f'{name:45s} {where}')
            continue
        print(f'{name}: {where}', flush=True)
        try:
            print(f'  -> {fetch(kind, loc)}', flush=True)
        except Exception as e:  # keep going; report at the end
            failures[name] = f'{type(e).__name__}: {e}'
            print(f'  FAILED: {failures[name]}', file=sys.stderr, flush=True)
    if failures:
        raise SystemExit(f'{len(failures)} of {len(names)} downloads failed: {", ".join(failures)}')


if __name__ == '__main__':
    main()
