"""The catalogue of bad inputs and the message each one gives (what users see; see also the
task-specific ones in test_restoration.py, test_medseg.py, test_configs.py, test_bridge.py)."""
import re
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from mmengine.dataset import BaseDataset
from mmengine.registry import DefaultScope

from conftest import run_tool
from gatedvision.tasks import TimmBackbone
from gatedvision.engine.config import ConfigError, load_config
from gatedvision.engine.precheck import StartupCheckError
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
    'the non-finite policy as the old top-level key': (
        lambda tmp: load_config(TOYSEG, {'nonfinite_loss': 'skip'}),
        ConfigError, r"the key 'nonfinite_loss' is now the nonfinite_loss default hook's policy: "
                     r"default_hooks = dict\(nonfinite_loss=dict\(policy='skip'\)\)"),
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

# a user's COCO-format data (generated in that layout) under the toy Mask R-CNN recipe: only the
# data keys change, as docs/your-data.md shows
_USER_COCO = '''
_base_ = ['{base}']
data_root = '{root}/'
metainfo = dict(classes=('disc', 'square', 'triangle', 'ring'))
train_dataloader = dict(batch_size=2, dataset=dict(
    _delete_=True, type='CocoDataset', data_root=data_root, metainfo=metainfo,
    ann_file='annotations/instances_train.json', data_prefix=dict(img='images/train/'),
    filter_cfg=dict(filter_empty_gt=True), pipeline={{{{_base_.train_pipeline}}}}))
val_dataloader = dict(dataset=dict(
    _delete_=True, type='CocoDataset', data_root=data_root, metainfo=metainfo, test_mode=True,
    ann_file='annotations/instances_val.json', data_prefix=dict(img='images/val/'),
    pipeline={{{{_base_.test_pipeline}}}}))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
'''
_NO_RESIZE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
              dict(type='PackDetInputs')]


def _train_start(tmp, options):
    """Start training a user's COCO-format config with ``options`` (a mistake); the start-up check
    stops it before the first iteration (a passing one would train an epoch: the test fails on time)."""
    from mmengine.registry import RUNNERS

    from gatedvision.tasks.detection.toy import make_toy_coco
    root = make_toy_coco(tmp / 'coins', num_train=4, num_val=2, size=128, sparse=True)
    config = tmp / 'my_det.py'
    config.write_text(_USER_COCO.format(base=Path('configs/det/mask-rcnn_halonet26t_fpn_1xb4-4e_toycoco-sparse.py')
                                        .resolve(), root=root))
    cfg = load_config(str(config), options)
    cfg.work_dir = str(tmp / 'work')
    RUNNERS.build(cfg).train()


CASES.update({
    'data path that does not exist (found before the datasets are built)': (
        lambda tmp: _train_start(tmp, {'train_dataloader.dataset.ann_file': 'annotations/instances_trian.json'}),
        StartupCheckError, r"train_dataloader\.dataset\.ann_file: '.*coins/annotations/instances_trian\.json' does "
                           r"not exist \(data_root '.*coins/' \+ ann_file 'annotations/instances_trian\.json'\)"),
    'heads with another number of classes than the dataset': (
        lambda tmp: _train_start(tmp, {'model.roi_head.bbox_head.num_classes': 1, 'model.roi_head.mask_head.num_classes': 1}),
        StartupCheckError, r'model\.roi_head\.bbox_head\.num_classes is 1 but train_dataloader\.dataset has 4 classes '
                           r'\(disc, square, triangle, ring; its metainfo\): set num_classes=4 in every head'),
    'metainfo classes the annotation file does not have': (
        lambda tmp: _train_start(tmp, {'train_dataloader.dataset.metainfo.classes': ('disc', 'squares', 'triangle', 'ring')}),
        StartupCheckError, r"train_dataloader\.dataset\.metainfo classes \['squares'\] are not categories of "
                           r"'.*instances_train\.json' \(it has \['disc', 'square', 'triangle', 'ring'\]\)"),
    'validation pipeline without a key the model needs (Resize: scale_factor)': (
        lambda tmp: _train_start(tmp, {'val_dataloader.dataset.pipeline': _NO_RESIZE}),
        StartupCheckError, r"prediction on a validation sample failed on .*images/val/toy_val_00000\.jpg: KeyError: "
                           r"'scale_factor'; the samples of val_dataloader\.dataset\.pipeline carry no 'scale_factor': "
                           r"add Resize .*--no-precheck"),
})


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
    """A user's own folders read by mmseg's BaseSegDataset (no class names to compare with the
    heads): found by the start-up check before the first iteration; without it, by the first
    iteration whose batch holds one (the error then names that batch's files)."""
    from gatedvision.tasks import make_toy_seg
    data = [f'train_dataloader.dataset.{k}' for k in (
        'type=BaseSegDataset', f'data_root={make_toy_seg()}', 'img_suffix=.jpg', 'seg_map_suffix=.png',
        'reduce_zero_label=True')]
    options = ['model.decode_head.num_classes=2', 'model.auxiliary_head.num_classes=2',
               'train_dataloader.batch_size=2', 'train_cfg.max_iters=1', *data]
    res = run_tool('train', TOYSEG, '--work-dir', tmp_path, '--cfg-options', *options)
    assert res.returncode != 0
    assert re.search(r"StartupCheckError: label values \[[2-9][, \d]*\] in .*annotations/training/\w+\.png are "
                     r"outside the 2 classes of model\.decode_head\.num_classes \(values 0\.\.1, or 255 for ignored "
                     r"pixels\): check num_classes and reduce_zero_label", res.stderr), res.stderr[-2000:]
    res = run_tool('train', TOYSEG, '--work-dir', tmp_path, '--no-precheck', '--cfg-options', *options)
    assert res.returncode != 0
    err = res.stderr
    assert 'start-up check' not in res.stdout + err
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


def test_compile_names_the_backends_torch_has():
    import argparse
    from gatedvision.engine.config import compile_backend
    assert compile_backend('aot_eager') == 'aot_eager'
    with pytest.raises(argparse.ArgumentTypeError, match=r"unknown torch\.compile backend 'inductr'; this torch "
                                                         r"has: .*\binductor\b"):
        compile_backend('inductr')


def test_amp_refuses_to_replace_a_configured_optimizer_wrapper():
    res = run_tool('train', TOYSEG, '--amp', '--cfg-options', 'optim_wrapper.type=AmpOptimWrapper')
    assert res.returncode != 0 and 'Traceback' not in res.stderr, res.stderr[-2000:]
    assert re.search(r"--amp replaces optim_wrapper\.type .* the config sets 'AmpOptimWrapper'", res.stderr)
