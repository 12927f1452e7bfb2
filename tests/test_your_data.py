"""docs/your-data.md's example configs, run as a user would on files generated in exactly the
layout the page shows: each trains (its start-up check passing, a short training, a validation
with the test pipeline and the evaluator). Only speed changes are made to the configs: no
ImageNet download, smaller images and batches, a few iterations."""
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_tool

PAGE = ROOT / 'docs' / 'your-data.md'


def examples() -> dict:
    """``name: config text`` of every ```python block that starts with ``# my_X.py``."""
    blocks = re.findall(r'```python\n# (my_\w+)\.py\n(.*?)```', PAGE.read_text(), re.S)
    return {name: text for name, text in blocks}


def test_the_page_has_an_example_for_every_layout():
    assert sorted(examples()) == ['my_denoise', 'my_det', 'my_medseg', 'my_pairs', 'my_seg']


def _coins(root: Path) -> None:
    """data/my_coins: COCO JSON, one class; training masks as polygons, validation masks as RLE."""
    import cv2
    from pycocotools import mask as mask_utils

    from gatedvision.tasks.detection.toy import make_toy_coco
    src = make_toy_coco(root.parent / 'coco-src', num_train=4, num_val=2, size=128, sparse=True)
    for split in ('train', 'val'):
        shutil.copytree(src / 'images' / split, root / 'images' / split)
        coco = json.loads((src / 'annotations' / f'instances_{split}.json').read_text())
        coco['categories'] = [dict(id=1, name='coin')]
        for ann in coco['annotations']:
            ann['category_id'] = 1
            if split == 'train':  # RLE -> polygons
                m = mask_utils.decode(ann['segmentation'])
                contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
                ann['segmentation'] = [c.ravel().astype(float).tolist() for c in contours if len(c) >= 3]
        (root / 'annotations').mkdir(exist_ok=True)
        (root / 'annotations' / f'{split}.json').write_text(json.dumps(coco))


def _fields(root: Path) -> None:
    """data/my_fields: img_dir / ann_dir, classes 0..2, 255 ignored (from the toy shapes)."""
    import cv2

    from gatedvision.tasks import make_toy_seg
    src = make_toy_seg(root.parent / 'seg-src', num_train=4, num_val=2, size=128)
    for split, theirs in (('train', 'training'), ('val', 'validation')):
        shutil.copytree(src / 'images' / theirs, root / 'img_dir' / split)
        (root / 'ann_dir' / split).mkdir(parents=True)
        for p in (src / 'annotations' / theirs).glob('*.png'):
            ade = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)  # 0 unlabelled, 1 background, 2.. shapes
            ours = np.where(ade == 0, 255, np.minimum(ade.astype(int) - 1, 2)).astype(np.uint8)
            cv2.imwrite(str(root / 'ann_dir' / split / p.name), ours)


def _pictures(root: Path, paired: bool) -> None:
    """data/my_pairs ({train,val}/{input,target}) or data/my_photos ({train,val}/*.png), 96 px."""
    import cv2

    from gatedvision.tasks.restoration.dataset import make_toy_restore
    src = make_toy_restore()
    rng = np.random.default_rng(0)
    for split, n in (('train', 3), ('val', 1)):
        for p in sorted((src / split).glob('*.png'))[:n]:
            clean = cv2.resize(cv2.imread(str(p)), (96, 96), interpolation=cv2.INTER_AREA)
            if not paired:
                (root / split).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / split / p.name), clean)
                continue
            noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
            for sub, img in (('input', noisy), ('target', clean)):
                (root / split / sub).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / split / sub / p.name), img)


def _lesions(root: Path) -> None:
    """data/nnUNet_raw/Dataset002_MyLesions: nnU-Net raw, one channel, three labels."""
    from gatedvision.tasks.medseg.toy import make_toy_medseg
    shutil.copytree(make_toy_medseg(), root)


DATA = {  # the example's data_root in the page -> how to make it
    'my_det': ('data/my_coins/', _coins),
    'my_seg': ('data/my_fields/', _fields),
    'my_pairs': ('data/my_pairs', lambda r: _pictures(r, paired=True)),
    'my_denoise': ('data/my_photos', lambda r: _pictures(r, paired=False)),
    'my_medseg': ('data/nnUNet_raw/Dataset002_MyLesions', _lesions),
}
# speed only: no download, small inputs, two iterations (one epoch for detection)
FAST = {
    'my_det': ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=2'],
    'my_seg': ['train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2'],
    'my_pairs': ['train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
                 'train_dataloader.batch_size=2'],
    'my_medseg': ['train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
                  'train_dataloader.batch_size=2', 'train_dataloader.dataset.cache=memory'],
}
FAST['my_denoise'] = FAST['my_pairs']


def _small(node):
    """Image scales, crops and sliding windows a quarter of the size (the generated images are small)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ('scale', 'crop_size', 'size', 'stride') and isinstance(value, (tuple, list)) \
                    and len(value) == 2 and all(isinstance(v, int) and v >= 256 for v in value):
                node[key] = tuple(v // 4 for v in value)
            else:
                _small(value)
    elif isinstance(node, list):
        for value in node:
            _small(value)


@pytest.mark.parametrize('name', sorted(DATA))
def test_example_config_trains_and_tests_on_its_layout(name, tmp_path):
    from mmengine.config import Config
    text = examples()[name]
    where, make = DATA[name]
    data = tmp_path / 'data'
    make(data / Path(where).relative_to('data'))
    text = text.replace(f"'{where.rstrip('/')}", f"'{data / Path(where).relative_to('data')}")
    text = text.replace("_base_ = ['configs/", f"_base_ = ['{ROOT}/configs/")
    config = tmp_path / f'{name}.py'
    config.write_text(text)
    cfg = Config.fromfile(config)
    _small(cfg._cfg_dict)
    run = tmp_path / f'{name}_run.py'
    cfg.dump(run)  # the user's config, with the speed changes

    res = run_tool('train', run, '--work-dir', tmp_path / 'work', '--cfg-options',
                   'model.backbone.pretrained=False', *FAST[name])
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-3000:]
    assert re.search(r'start-up check passed in [\d.]+ s \(a training batch of \d+, a validation sample', log), log[-3000:]
    metric = {'my_det': r'bbox_mAP: [\d.]+', 'my_seg': r'mIoU: [\d.]+', 'my_medseg': r'Dice\w*: [\d.]+'}
    assert re.search(metric.get(name, r'PSNR: [\d.]+'), log), log[-2000:]  # validated with the test pipeline
    if name == 'my_det':  # and tested from the checkpoint (the other tasks' tests cover test.py)
        res = run_tool('test', run, tmp_path / 'work' / 'epoch_1.pth', '--work-dir', tmp_path / 'test')
        assert res.returncode == 0 and re.search(metric[name], res.stdout + res.stderr), res.stderr[-3000:]
