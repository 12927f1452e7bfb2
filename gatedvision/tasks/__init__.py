"""The tasks, one package each with the same file names (``dataset.py``, ``metric.py``,
``model.py``, ``inferencer.py``, ``hooks.py``, ``toy.py`` where the task has one):

- :mod:`.detection`: detection and instance segmentation on mmdet 3.x;
- :mod:`.segmentation`: semantic segmentation on mmseg 1.x;
- :mod:`.restoration`: denoising, deblurring, deraining on mmengine;
- :mod:`.medseg`: medical image segmentation on mmengine, MONAI and nibabel.

``import gatedvision.tasks`` imports the shared engine (:mod:`gatedvision.engine`) only; a task's
package, and the library it stands on, is imported when a config names it (``custom_imports``)
or when one of its names is first used here (``from gatedvision.tasks import ToyCocoDataset``).
"""
import importlib

from gatedvision.engine import *  # noqa: F401,F403  (the shared engine; registers it)
from gatedvision.engine import __all__ as _ENGINE

_TASK_OF = {
    'detection': ['ToyCocoDataset', 'ToyCocoMetric', 'make_toy_coco'],
    'segmentation': ['ToySegDataset', 'make_toy_seg'],
    'restoration': ['Restorer', 'make_toy_restore', 'PSNR', 'SSIM'],
    'medseg': ['MedSegmentor', 'make_toy_medseg'],
}
_LAZY = {name: task for task, names in _TASK_OF.items() for name in names}

__all__ = [*_ENGINE, *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f'{__name__}.{_LAZY[name]}'), name)
    if name in _TASK_OF:
        return importlib.import_module(f'{__name__}.{name}')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
