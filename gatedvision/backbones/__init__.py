"""timm-registered gated backbones, one module per family. Importing a module registers its
models with ``timm.models.register_model``."""
import fnmatch
from typing import List

from . import biformer, convit, hornet, overlock, vig  # noqa: F401


def list_models(pattern: str = '*') -> List[str]:
    """Names of the models gatedvision registers in timm, optionally filtered by a wildcard."""
    from timm.models._registry import _model_entrypoints
    return sorted(n for n, fn in _model_entrypoints.items()
                  if fn.__module__.startswith(__name__ + '.') and fnmatch.fnmatch(n, pattern))
