"""Small behaviours of the tools."""
import importlib.util
import sys
from pathlib import Path

from mmengine.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tools'))
import train  # noqa: E402


def test_tensorboard_backend_added_only_when_installed(monkeypatch):
    cfg = Config(dict(visualizer=dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda n, *a: None if n == 'tensorboard' else real(n, *a))
    train.add_tensorboard(cfg)
    assert [b['type'] for b in cfg.visualizer.vis_backends] == ['LocalVisBackend']
    monkeypatch.setattr(importlib.util, 'find_spec', lambda n, *a: object() if n == 'tensorboard' else real(n, *a))
    train.add_tensorboard(cfg)
    train.add_tensorboard(cfg)  # once only
    assert [b['type'] for b in cfg.visualizer.vis_backends] == ['LocalVisBackend', 'TensorboardVisBackend']
