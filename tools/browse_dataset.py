"""Pictures of what a config's data pipeline feeds the model, with its labels drawn, as mmdet's and
mmseg's ``browse_dataset.py`` draw them, for every task:

    python tools/browse_dataset.py CONFIG [--split train|val|test] [--out-dir D] [-n N] [--cfg-options ...]

detection: boxes and masks (mmdet's visualizer); segmentation: the class map over the image
(mmseg's); restoration: input | target side by side; medical: slices with their labels (a training
patch, or a validation volume's most telling slices). Training samples go through the training
pipeline with its random augmentations, so two runs show other crops and flips.
"""
import argparse
import os.path as osp
import time
from pathlib import Path

import cv2
import numpy as np
from mmengine.config import DictAction
from mmengine.registry import DATASETS, VISUALIZERS, DefaultScope
from mmengine.utils import import_modules_from_strings, mkdir_or_exist

from gatedvision.engine.config import load_config


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Draw what a config's data pipeline feeds the model")
    p.add_argument('config', help='config file')
    p.add_argument('--split', choices=['train', 'val', 'test'], default='train')
    p.add_argument('--out-dir', default='browse', help='where the pictures go')
    p.add_argument('-n', type=int, default=8, help='how many samples (default 8)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE')
    return p.parse_args(argv)


def _bgr(chw) -> np.ndarray:
    """A (C, H, W) uint8 (mmdet / mmseg: BGR) tensor as an (H, W, 3) uint8 array."""
    img = chw.numpy().transpose(1, 2, 0)
    return np.ascontiguousarray(np.repeat(img, 3, -1) if img.shape[2] == 1 else img[..., :3])


def _name(sample, i: int) -> str:
    meta = getattr(sample, 'metainfo', {}) or {}
    path = meta.get('img_path') or meta.get('lq_path') or meta.get('gt_path') or meta.get('name')
    return f'{i:04d}_' + (osp.splitext(osp.basename(str(path)))[0] if path else 'sample')


def draw(item: dict, i: int, out_dir: Path, visualizer=None):
    """Write the picture(s) of one pipeline output; returns their paths."""
    sample, inputs = item.get('data_samples'), item['inputs']
    if hasattr(sample, 'gt_instances') or hasattr(sample, 'gt_sem_seg'):  # mmdet, mmseg
        path = out_dir / f'{_name(sample, i)}.jpg'
        if hasattr(sample, 'gt_instances'):  # mmdet's visualizer draws tensors and boolean arrays
            from mmdet.structures.bbox import BaseBoxes
            from mmdet.structures.mask import BitmapMasks, PolygonMasks
            sample = sample.numpy() if hasattr(sample, 'numpy') else sample
            inst = sample.gt_instances
            if isinstance(inst.get('bboxes'), BaseBoxes):
                inst.bboxes = inst.bboxes.tensor
            if isinstance(inst.get('masks'), (BitmapMasks, PolygonMasks)):
                inst.masks = inst.masks.to_ndarray().astype(bool)
        rgb = _bgr(inputs)[..., ::-1]
        visualizer.add_datasample(path.stem, rgb, sample, draw_gt=True, draw_pred=False, show=False,
                                  out_file=str(path))
        return [path]
    if hasattr(sample, 'gt_img'):  # restoration: input | target
        from gatedvision.tasks.restoration.metric import to_8bit
        lq, gt = (to_8bit(t).astype(np.uint8) for t in (inputs, sample.gt_img))
        if lq.shape != gt.shape:  # super-resolution: the input drawn at the target's size
            lq = cv2.resize(lq, gt.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        sep = np.full((gt.shape[0], 4) + gt.shape[2:], 255, np.uint8)
        pair = np.concatenate([lq, sep, gt], axis=1)
        path = out_dir / f'{_name(sample, i)}.png'
        cv2.imwrite(str(path), pair[..., ::-1] if pair.ndim == 3 and pair.shape[2] == 3 else pair)
        return [path]
    from gatedvision.tasks.medseg.vis import overlay_panel, write_overlays
    image = inputs.numpy()
    if inputs.ndim == 3:  # a training slice (channels, H, W) and its label map, named after its case and slice
        panel = overlay_panel(image[image.shape[0] // 2], np.asarray(sample.gt))
        path = out_dir / f"{i:04d}_{sample.name}_{'xyz'[sample.axis]}{sample.slice_index:03d}.png"
        cv2.imwrite(str(path), panel[..., ::-1])
        return [path]
    return write_overlays(out_dir, _name(sample, i), image[0], sample.gt,  # a whole volume
                          axis=sample.metainfo.get('axis', 2))


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    out_dir = Path(args.out_dir)
    mkdir_or_exist(out_dir)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        dataset = DATASETS.build(cfg[f'{args.split}_dataloader'].dataset)
        visualizer = None
        if cfg.get('default_scope') in ('mmdet', 'mmseg') and cfg.get('visualizer'):
            visualizer = VISUALIZERS.build(dict(cfg.visualizer, vis_backends=None, save_dir=None,
                                                name=f'browse-{time.time_ns()}'))
            visualizer.dataset_meta = dataset.metainfo
        written = []
        for i in range(min(args.n, len(dataset))):
            written += draw(dataset[i], i, out_dir, visualizer)
    print(f'{len(written)} pictures of the {args.split} pipeline in {out_dir}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
