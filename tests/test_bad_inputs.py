"""The catalogue of bad inputs and the message each one gives (what users see; see also the
task-specific ones in test_restoration.py, test_medseg.py, test_configs.py, test_bridge.py)."""
import re

import numpy as np
import pytest
import timm
import torch
from mmengine.dataset import BaseDataset
from mmengine.registry import DefaultScope

from conftest import run_tool
from gatedvision.tasks import TimmBackbone
from gatedvision.engine.config import ConfigError, load_config
from gatedvision.engine.transforms import LoadImageFromFile

TOYSEG = 'configs/seg/upernet_halonet26t_1xb4-200i_toyseg-256x256.py'


def _image(path, ok=True):
    import cv2
    if ok:
        cv2.imwrite(str(path), np.full((16, 16, 3), 128, np.uint8))
    else:
        cv2.imwrite(str(path), np.full((64, 64, 3), 128, np.uint8))
        path.write_bytes(path.read_bytes()[:100])  # truncated JPEG
    return str(path)


def _truncated_checkpoint(tmp):
    path = tmp / 'cut.pth'
    torch.save({'w': torch.ones(4096)}, path)
    path.write_bytes(path.read_bytes()[:3000])  # a download or copy that stopped early
    return str(path)


def _not_a_checkpoint(tmp):
    path = tmp / 'notes.pth'
    path.write_text('not weights')
    return str(path)


CASES = {
    'unknown backbone name': (
        lambda tmp: TimmBackbone('hornet_tny_7x7'),
        ValueError, r"unknown model name 'hornet_tny_7x7'.*closest registered names: hornet_tiny_7x7"),
    'input channels the backbone cannot take': (
        lambda tmp: TimmBackbone('hornet_tiny_7x7')(torch.rand(1, 1, 64, 64)),
        ValueError, r'hornet_tiny_7x7 expects \(N, 3, H, W\) input, got shape \(1, 1, 64, 64\); set in_channels'),
    'input size the backbone cannot take': (
        lambda tmp: TimmBackbone('halonet26t', size_divisor=None)(torch.rand(1, 3, 200, 200)),
        ValueError, r"halonet26t needs H and W divisible by 256, got 200x200; set size_divisor='auto'"),
    'unknown output norm': (
        lambda tmp: TimmBackbone('resnet18', out_norm=dict(type='LN2')),
        ValueError, r"TimmBackbone out_norm type 'LN2' is not a norm layer; did you mean 'LN2d'\? Known: LN2d, BN"),
    'corrupt or truncated image': (
        lambda tmp: LoadImageFromFile()(dict(img_path=_image(tmp / 'cut.jpg', ok=False))),
        ValueError, r"image '.*cut\.jpg' is truncated, corrupt or not an image; .*skip_bad=True"),
    'annotation referring to a missing image': (
        lambda tmp: LoadImageFromFile()(dict(img_path=str(tmp / 'gone.jpg'))),
        ValueError, r"image '.*gone\.jpg' does not exist \(an annotation refers to it\)"),
    'config with an unknown key': (
        lambda tmp: load_config(TOYSEG, {'train_cgf.max_iters': 3}),
        ConfigError, r"upernet_halonet26t.*\.py': unknown key 'train_cgf'.*did you mean 'train_cfg'"),
    'truncated checkpoint for the bridge': (
        lambda tmp: TimmBackbone('resnet18', checkpoint=_truncated_checkpoint(tmp)),
        ValueError, r"checkpoint '.*cut\.pth' is truncated or corrupt \(3000 bytes.*copy or download it again"),
    'truncated pretrained file': (
        lambda tmp: timm.create_model('hornet_tiny_7x7', pretrained=True,
                                      pretrained_cfg_overlay=dict(file=_truncated_checkpoint(tmp))),
        ValueError, r"pretrained weights of hornet_tiny_7x7 '.*cut\.pth' is truncated or corrupt"),
    'file that is no checkpoint': (
        lambda tmp: timm.create_model('overlock_xt', pretrained=True,
                                      pretrained_cfg_overlay=dict(file=_not_a_checkpoint(tmp))),
        ValueError, r"'.*notes\.pth' is not a checkpoint \(11 bytes; neither a torch archive nor safetensors\)"),
    'unknown argument inside a nested config dict': (
        lambda tmp: load_config(TOYSEG, {'train_cfg.max_iter': 2}),
        ConfigError, r"\.py': train_cfg\.max_iter: IterBasedTrainLoop has no argument 'max_iter'; did you mean 'max_iters'\?"),
    'unknown argument of an optimizer': (
        lambda tmp: load_config(TOYSEG, {'optim_wrapper.optimizer.weight_decy': 0.1}),
        ConfigError, r"optim_wrapper\.optimizer\.weight_decy: AdamW has no argument 'weight_decy'; did you mean 'weight_decay'"),
    'unknown argument of a head (through **kwargs to its parent)': (
        lambda tmp: load_config(TOYSEG, {'model.decode_head.num_clases': 3}),
        ConfigError, r"model\.decode_head\.num_clases: UPerHead has no argument 'num_clases'; did you mean 'num_classes'"),
    'unknown argument of a data loader': (
        lambda tmp: load_config(TOYSEG, {'train_dataloader.batch_sise': 3}),
        ConfigError, r"train_dataloader\.batch_sise: DataLoader has no argument 'batch_sise'; did you mean 'batch_size'"),
    'unknown argument of the bridge': (
        lambda tmp: TimmBackbone('hornet_tiny_7x7', frozen_stage=1),
        ValueError, r"TimmBackbone\('hornet_tiny_7x7'\): 'frozen_stage' is neither .*did you mean 'frozen_stages'"),
    'config with an unknown type': (
        lambda tmp: load_config(TOYSEG, {'model.decode_head.type': 'UPerHeed'}),
        ConfigError, r"model\.decode_head\.type = 'UPerHeed' is not registered in scope 'mmseg'; did you mean 'UPerHead'"),
}


@pytest.mark.parametrize('case', list(CASES))
def test_bad_input_message(case, tmp_path):
    make, error, message = CASES[case]
    with pytest.raises(error, match=message):
        make(tmp_path)


def test_bad_images_can_be_skipped_and_counted(tmp_path):
    good, bad = _image(tmp_path / 'good.png'), _image(tmp_path / 'bad.jpg', ok=False)
    loader = LoadImageFromFile(skip_bad=True)
    assert loader(dict(img_path=bad)) is None and loader.skipped == 1

    class Images(BaseDataset):
        def load_data_list(self):
            return [dict(img_path=bad), dict(img_path=good)]

    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = Images(pipeline=[dict(type='gatedvision.LoadImageFromFile', skip_bad=True)],
                    serialize_data=False)
    # the dataset draws another sample in place of the unreadable one
    assert ds[0]['img_path'] == good


def test_label_values_outside_the_classes_name_the_files(tmp_path):
    res = run_tool('train', TOYSEG, '--work-dir', tmp_path, '--cfg-options',
                   'model.decode_head.num_classes=2', 'model.auxiliary_head.num_classes=2',
                   'train_dataloader.batch_size=2', 'train_cfg.max_iters=1')
    assert res.returncode != 0
    err = res.stderr
    assert re.search(r'Target \d+ is out of bounds', err), err[-2000:]
    assert re.search(r'\(iteration 1, batch of .*annotations/training/\w+\.png', err), err[-2000:]
    assert 'check num_classes and reduce_zero_label' in err


def test_test_tool_with_a_missing_checkpoint(tmp_path):
    res = run_tool('test', TOYSEG, tmp_path / 'none.pth')
    assert res.returncode != 0 and re.search(r"checkpoint '.*none\.pth' does not exist", res.stderr)


@pytest.mark.parametrize('tool', ['test', 'infer'])
def test_tools_name_a_truncated_checkpoint(tool, tmp_path):
    args = [TOYSEG, _truncated_checkpoint(tmp_path)] + ([str(tmp_path)] if tool == 'infer' else [])
    res = run_tool(tool, *args)
    assert res.returncode != 0 and 'Traceback' not in res.stderr, res.stderr[-2000:]
    assert re.search(r"checkpoint '.*cut\.pth' is truncated or corrupt", res.stderr), res.stderr[-2000:]
