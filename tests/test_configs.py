"""Every config under configs/ loads, type-checks and builds its model; config errors are clear."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, MODELS

from gatedvision.engine.config import ConfigError, load_config

CONFIG_DIR = Path(__file__).resolve().parents[1] / 'configs'
LEAF_CONFIGS = sorted(p for p in CONFIG_DIR.rglob('*.py') if '_base_' not in p.parts)


def _depth(path: Path) -> int:
    cfg_text = path.read_text()
    if '_base_' not in cfg_text:
        return 0
    bases = Config._get_base_files(str(path))
    return 1 + max((_depth((path.parent / b).resolve()) for b in bases), default=0)


@pytest.mark.parametrize('path', LEAF_CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_config_builds_model(path):
    assert _depth(path) <= 3, f'{path.name}: _base_ chain deeper than 3 levels'
    cfg = load_config(str(path))
    cfg.model.backbone.pretrained = False  # no downloads in tests
    backbone = cfg.model.backbone
    if backbone.type.endswith('TimmBackbone') and backbone.get('size_divisor', 'auto') == 'auto':
        backbone.size_divisor = None  # channels do not depend on it; its probe (test_bridge) runs OverLoCK-B 3 times
    # on the meta device: shapes and channels without initialising weights (a Mask R-CNN on
    # OverLoCK-B builds in about 1 s instead of 25)
    with DefaultScope.overwrite_default_scope(cfg.default_scope), torch.device('meta'):
        model = MODELS.build(cfg.model)
    backbone = model.backbone
    # necks and heads are configured for what the backbone really gives
    channels = backbone.out_channels
    neck_cfg = cfg.model.get('neck')
    for neck_part, neck in zip(neck_cfg if isinstance(neck_cfg, list) else [neck_cfg],
                               model.neck if isinstance(neck_cfg, list) else [getattr(model, 'neck', None)]):
        if neck_part is None:
            break
        declared = neck_part.in_channels
        assert (list(declared) if isinstance(declared, (list, tuple)) else [declared]) == \
            (channels if isinstance(declared, (list, tuple)) else channels[-1:])
        out = neck.out_channels  # mmdet/mmseg FPN: an int per level; SimplePyramid: a list
        channels = [out] * neck_part.num_outs if isinstance(out, int) else list(out)
    head = cfg.model.get('decode_head')
    if head is not None and 'in_index' in head:  # mmseg heads; restoration heads read the backbone
        assert list(head.in_channels) == [channels[i] for i in head.in_index]
    aux = cfg.model.get('auxiliary_head')
    if aux is not None:
        assert aux.in_channels == channels[aux.in_index]


def _toy_config():
    return next(p for p in LEAF_CONFIGS if 'toyseg' in p.name)


def test_unknown_type_names_key_and_file(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text(f"_base_ = ['{_toy_config()}']\nmodel = dict(decode_head=dict(type='UPerHeed'))\n")
    with pytest.raises(ConfigError, match=r"bad\.py.*model\.decode_head\.type = 'UPerHeed' is not "
                                          r"registered in scope 'mmseg'; did you mean 'UPerHead'"):
        load_config(str(bad))


def test_unknown_type_from_cfg_options():
    with pytest.raises(ConfigError, match=r"model\.backbone\.type = 'gatedvision\.TimBackbone'.*"
                                          r"did you mean 'gatedvision\.TimmBackbone'"):
        load_config(str(_toy_config()), {'model.backbone.type': 'gatedvision.TimBackbone'})


def test_missing_files(tmp_path):
    with pytest.raises(ConfigError, match=r"config file '.*nothere\.py' does not exist"):
        load_config(str(tmp_path / 'nothere.py'))
    orphan = tmp_path / 'orphan.py'
    orphan.write_text("_base_ = ['./missing_base.py']\n")
    with pytest.raises(ConfigError, match=r"orphan\.py.*missing_base\.py"):
        load_config(str(orphan))
