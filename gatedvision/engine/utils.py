"""Small helpers shared by the tasks."""
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def cache_dir(*parts: str) -> Path:
    """gatedvision's cache folder: ``$GATEDVISION_CACHE``, else ``$XDG_CACHE_HOME/gatedvision``
    (``~/.cache/gatedvision``)."""
    root = os.environ.get('GATEDVISION_CACHE') or os.path.join(
        os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'gatedvision')
    return Path(root, *parts)


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Create the folder ``target`` with ``build(tmp_dir)`` unless it exists.

    The folder is built under a temporary name beside it and renamed into place, so an interrupted
    build never leaves a half-written dataset and concurrent builders do not collide.
    """
    target = Path(target)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{target.name}-', dir=target.parent))
    try:
        build(tmp)
        os.rename(tmp, target)
    except OSError:
        if not target.is_dir():  # anything but "another process finished first"
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
