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


def checkpoint_problem(path: str, thorough: bool = False) -> Optional[str]:
    """Why the local file ``path`` cannot be a whole checkpoint (as words to follow its name), or
    None. Cheap: reads the head and, for torch's zip format, the archive's end record, which a
    truncated copy or download lacks; ``thorough`` also reads every member of the archive against
    its CRC (what ``--resume`` checks before it picks a checkpoint to continue from)."""
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
                bad = z.testzip() if thorough else None
        except (zipfile.BadZipFile, OSError, EOFError):
            return f'is truncated or corrupt ({size} bytes; its zip archive has no intact end record)'
        return f'is corrupt ({size} bytes; its member {bad} fails its CRC)' if bad else None
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


class WeightsUnavailable(OSError):
    """Pretrained weights that could not be downloaded; the message names the model, the source,
    where the file belongs in the cache and the ways round (the tools print it without a traceback)."""


def download_weights(kind: str, loc, check_hash: bool = False, progress: bool = True) -> str:
    """Download one pretrained source (``kind``, ``loc`` as timm's ``_resolve_pretrained_source``
    gives them) into its cache, or find it there; returns the local path. A hub repo without a
    file name holds ``model.safetensors`` or ``pytorch_model.bin`` (timm's order)."""
    from timm.models._hub import download_cached_file, download_from_hf
    if kind == 'url':
        return download_cached_file(loc, check_hash=check_hash, progress=progress)
    if kind == 'hf-hub':
        repo, filename = loc if isinstance(loc, tuple) else (loc, None)
        if filename:
            return download_from_hf(repo, filename)
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
        try:
            return download_from_hf(repo, 'model.safetensors')
        except EntryNotFoundError as e:  # the hub has no such file: the older format
            if isinstance(e, LocalEntryNotFoundError):  # no network, not in the cache: the same again
                raise
            return download_from_hf(repo, 'pytorch_model.bin')
    if kind == 'file':
        return loc
    raise ValueError(f'no download source ({kind!r})')


def weights_cache_path(kind: str, loc) -> str:
    """Where :func:`download_weights` puts (and looks for) the file of a source."""
    if kind == 'url':
        from timm.models._hub import get_cache_dir
        url, name = loc if isinstance(loc, tuple) else (loc, None)
        return os.path.join(get_cache_dir(), name or os.path.basename(urlparse(url).path))
    if kind == 'hf-hub':
        from huggingface_hub.constants import HF_HUB_CACHE
        repo = loc[0] if isinstance(loc, tuple) else loc
        return os.path.join(HF_HUB_CACHE, 'models--' + repo.split('@')[0].replace('/', '--'))
    return str(loc)


def prepare_pretrained(variant: str, kwargs: Dict[str, Any], download: bool = True) -> None:
    """Before timm loads pretrained weights: a local ``file`` (``pretrained_cfg_overlay``) is
    checked, so a truncated one is named instead of failing inside torch's zip reader; a remote
    source (URL, Hugging Face hub) is downloaded into the cache timm reads it from, or found there,
    so that a download that fails raises :class:`WeightsUnavailable` naming the model, the source,
    the file's place in the cache and the ways round, instead of a urllib or hub traceback from
    inside timm (timm then loads from its cache, as it would have). A URL that names no weight file
    (Tsinghua Cloud and OneDrive share links end in ``/?dl=1`` or ``/content``; caches name files
    after the URL path, so they would collide or fail) is cached as ``<variant>.<tag>.pth`` and
    handed to timm as that file. ``download=False`` only checks a local file (the bridge builds
    models without weights; they are loaded by ``init_weights``, which testing and inference never
    call).
    """
    from timm.models._builder import _resolve_pretrained_source, resolve_pretrained_cfg
    cfg = resolve_pretrained_cfg(variant, pretrained_cfg=kwargs.get('pretrained_cfg'),
                                 pretrained_cfg_overlay=kwargs.get('pretrained_cfg_overlay'))
    cfg = cfg.to_dict() if isinstance(cfg, PretrainedCfg) else dict(cfg or {})
    kind, loc = _resolve_pretrained_source(cfg)
    if kind == 'file':
        check_checkpoint(loc, f'pretrained weights of {variant}')
        return
    if not download or kind not in ('url', 'hf-hub'):
        return
    if kind == 'url' and os.path.splitext(os.path.basename(urlparse(loc).path))[1] not in _WEIGHT_EXTENSIONS:
        loc = (loc, f"{cfg.get('architecture') or variant}.{cfg.get('tag') or 'default'}.pth")
    try:
        path = download_weights(kind, loc)
    except Exception as e:  # urllib, socket and hub errors alike: the same advice
        where = loc[0] if isinstance(loc, tuple) else loc  # the URL, or the hub repo
        name = f"{cfg.get('architecture') or variant}{'.' + cfg['tag'] if cfg.get('tag') else ''}"
        raise WeightsUnavailable(
            f"cannot download the pretrained weights of {variant} from {where} "
            f"({type(e).__name__}: {str(e).strip() or 'no reason given'}). Either download them where "
            f"there is a network (python tools/download.py {name}) into {weights_cache_path(kind, loc)}, "
            f"which this machine must see; or give a local copy (checkpoint=PATH in a TimmBackbone config, "
            f"pretrained_cfg_overlay=dict(file=PATH) in timm.create_model); or set pretrained=False to "
            f"train from scratch") from None
    check_checkpoint(path, f'downloaded weights of {variant}')
    if isinstance(loc, tuple) and kind == 'url':  # a share link: timm would name the file after its path
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


def prepare_features(variant: str, kwargs: Dict[str, Any], dense_norms: bool = True) -> None:
    """``features_only=True``: the pyramid comes from ``forward_intermediates`` through timm's
    FeatureGetterNet, with the per-level norms of the authors' dense backbone (``dense_norms``).
    timm's other extractors ('fx', 'hook', 'list', 'dict') need the classification graph's stage
    modules and would miss those norms: a ``feature_cls`` naming one is refused, saying so."""
    if not kwargs.get('features_only'):
        return
    from timm.models._features import FeatureGetterNet
    cls = kwargs.setdefault('feature_cls', 'getter')
    if not ((isinstance(cls, str) and cls.lower() == 'getter')
            or (isinstance(cls, type) and issubclass(cls, FeatureGetterNet))):
        raise ValueError(
            f"{variant}: features_only=True takes feature_cls='getter' (the default for gatedvision models), "
            f"not {cls!r}: gatedvision models give their pyramid through forward_intermediates() (timm's "
            f"FeatureGetterNet), which applies the output norms of the authors' dense backbones; leave "
            f"feature_cls out")
    if dense_norms:
        kwargs['dense_norms'] = True


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
           'WeightsUnavailable', 'download_weights', 'weights_cache_path',
           'check_checkpoint', 'is_other_head', 'add_missing', 'check_image_input', 'prepare_features']
