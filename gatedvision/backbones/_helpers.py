"""Helpers shared by the backbone files: checkpoint conversion, downloads, input checks."""
import os
import zipfile
from typing import Any, Dict, Optional
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from timm.models._pretrained import PretrainedCfg


def unwrap_state_dict(state_dict: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """The weights inside a training checkpoint (``{'model': ...}``, ``{'state_dict': ...}``)."""
    for key in ('model', 'state_dict', 'model_state'):
        if key in state_dict and isinstance(state_dict[key], dict):
            return state_dict[key]
    return state_dict


def resize_like(weight: torch.Tensor, target: torch.Tensor, dims=(1, 2)) -> torch.Tensor:
    """Bilinearly (align_corners=True) resize the two ``dims`` of ``weight`` to ``target``'s."""
    if weight.shape == target.shape:
        return weight
    d0, d1 = dims
    rest = [d for d in range(weight.ndim) if d not in dims]
    perm = rest + [d0, d1]
    w = weight.permute(*perm)
    lead = w.shape[:-2]
    w = F.interpolate(w.reshape(1, -1, *w.shape[-2:]).float(), size=target.shape[d0:d1 + 1],
                      mode='bilinear', align_corners=True)
    w = w.reshape(*lead, *w.shape[-2:])
    inv = [perm.index(d) for d in range(weight.ndim)]
    return w.permute(*inv).contiguous().to(weight.dtype)


_WEIGHT_EXTENSIONS = ('.pth', '.pt', '.bin', '.safetensors', '.tar', '.ckpt', '.npz')


def checkpoint_problem(path: str) -> Optional[str]:
    """Why the local file ``path`` cannot be a whole checkpoint (as words to follow its name), or
    None. Cheap: reads the head and, for torch's zip format, the archive's end record, which a
    truncated copy or download lacks."""
    if not os.path.isfile(path):
        return 'does not exist'
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        head = f.read(8)
    if size == 0:
        return 'is empty'
    if head.startswith(b'PK\x03\x04'):  # torch.save's zip archive
        try:
            with zipfile.ZipFile(path) as z:
                z.infolist()
        except (zipfile.BadZipFile, OSError, EOFError):
            return f'is truncated or corrupt ({size} bytes; its zip archive has no intact end record)'
        return None
    if head[:2] == b'\x80\x02':  # torch's legacy (pre-1.6) pickle format
        return None
    if size >= 8 and 8 + int.from_bytes(head, 'little') <= size:  # safetensors: header length, then JSON
        with open(path, 'rb') as f:
            f.seek(8)
            if f.read(1) == b'{':
                return None
    return f'is not a checkpoint ({size} bytes; neither a torch archive nor safetensors)'


def check_checkpoint(path: str, what: str = 'checkpoint') -> None:
    """ValueError naming the file when it cannot be a whole checkpoint (see checkpoint_problem)."""
    problem = checkpoint_problem(path)
    if problem:
        raise ValueError(f"{what} '{path}' {problem}; copy or download it again"
                         if problem != 'does not exist' else f"{what} '{path}' does not exist")


def prepare_pretrained(variant: str, kwargs: Dict[str, Any]) -> None:
    """Before timm loads pretrained weights: a local ``file`` (``pretrained_cfg_overlay``) is
    checked, so a truncated one is named instead of failing inside torch's zip reader; and a URL
    that names no weight file (Tsinghua Cloud and OneDrive share links end in ``/?dl=1`` or
    ``/content``; timm's and torch hub's caches name the file after the URL path, so they would
    collide or fail) is downloaded into torch hub's cache as ``<variant>.pth`` and handed to timm
    as a local file. Other sources are untouched.
    """
    from timm.models._builder import resolve_pretrained_cfg
    cfg = resolve_pretrained_cfg(variant, pretrained_cfg=kwargs.get('pretrained_cfg'),
                                 pretrained_cfg_overlay=kwargs.get('pretrained_cfg_overlay'))
    cfg = cfg.to_dict() if isinstance(cfg, PretrainedCfg) else dict(cfg or {})
    if cfg.get('file'):
        check_checkpoint(cfg['file'], f'pretrained weights of {variant}')
        return
    url = cfg.get('url')
    if cfg.get('state_dict') or cfg.get('hf_hub_id') or not url:
        return
    if os.path.splitext(os.path.basename(urlparse(url).path))[1] in _WEIGHT_EXTENSIONS:
        return
    from timm.models._hub import download_cached_file
    name = f"{cfg.get('architecture') or variant}.{cfg.get('tag') or 'default'}.pth"
    path = download_cached_file((url, name), check_hash=False, progress=True)
    check_checkpoint(path, f'downloaded weights of {variant}')
    kwargs['pretrained_cfg_overlay'] = dict(kwargs.get('pretrained_cfg_overlay') or {}, file=path)


def is_other_head(key: str, value: torch.Tensor, target: Dict[str, torch.Tensor], heads=('head.',)) -> bool:
    """A classifier weight the model does not have, or of another class count; the filters drop
    it and timm drops or re-initialises the classifier."""
    return key.startswith(heads) and (key not in target or target[key].shape != value.shape)


def add_missing(out: Dict[str, torch.Tensor], target: Dict[str, torch.Tensor], prefixes) -> None:
    """Modules a classification checkpoint lacks but the dense model has (per-output norms, context
    projections) keep the model's own initialisation (norms: identity), as the original dense
    backbones do when they load classification weights non-strictly."""
    for k, v in target.items():
        if k.startswith(tuple(prefixes)) and k not in out:
            out[k] = v.clone()


def check_image_input(x: torch.Tensor, in_chans: int, min_size: int, name: str) -> None:
    """ValueError naming the accepted input when ``x`` is not (N, in_chans, H, W) with H, W >= min_size."""
    if x.ndim != 4 or x.shape[1] != in_chans:
        raise ValueError(f'{name} expects (N, {in_chans}, H, W) input, got {tuple(x.shape)}')
    if min(x.shape[-2:]) < min_size:
        raise ValueError(f'{name} downsamples by {min_size} and needs H, W >= {min_size}, got '
                         f'{tuple(x.shape[-2:])}')


def run_blocks(blocks, x, *args, checkpointing: bool = False):
    """``x = block(x, *args)`` for every block in order; where ``x`` is a tuple (blocks that take
    and return several tensors) it is unpacked: ``x = block(*x, *args)``. With ``checkpointing``
    (timm's ``set_grad_checkpointing``), while gradients are recorded each block is recomputed in
    backward instead of keeping its activations."""
    for blk in blocks:
        inputs = (*x, *args) if isinstance(x, tuple) else (x, *args)
        if checkpointing and torch.is_grad_enabled() and not torch.jit.is_scripting():
            x = torch.utils.checkpoint.checkpoint(blk, *inputs, use_reentrant=False)
        else:
            x = blk(*inputs)
    return x


__all__ = ['run_blocks', 'unwrap_state_dict', 'resize_like', 'prepare_pretrained', 'checkpoint_problem',
           'check_checkpoint', 'is_other_head', 'add_missing', 'check_image_input']
