"""The start-up check: data mistakes fail in the first minute, naming the config key, the file or
the class, instead of hours in (at the first validation, or at the batch that holds the bad label).

Before the first training iteration, :class:`StartupCheckHook` checks that the datasets are not
empty and that their classes agree with the model's heads, then sends one training batch through
the pipeline and the model's loss, and one validation sample through the pipeline, the model's
prediction and the evaluator. It leaves the run as it found it: the random states, the model's
buffers (BN statistics) and its train/eval mode are restored, and the samples are read from the
datasets directly, so the samplers, the data order and exact resumption are untouched. Before the
datasets are built, :func:`check_data_paths` names a ``data_root``, ``ann_file`` or ``data_prefix``
that does not exist. Switch both off with ``precheck = False`` in the config (``tools/train.py
--no-precheck``).
"""
import copy
import json
import logging
import os.path as osp
import re
import time
from contextlib import contextmanager
from typing import Iterator, List, Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop

from gatedvision.engine.hooks import RandomStateHook
from gatedvision.registry import HOOKS

__all__ = ['StartupCheckError', 'StartupCheckHook', 'check_data_paths', 'startup_check']

_SKIP = "(this check runs before the first iteration; skip it with --no-precheck or precheck = False)"

# the transform that puts a key into a sample, for the message about a pipeline that lacks it
_SETS_KEY = {
    'scale_factor': "Resize (mmdet's and mmseg's set it; keep_ratio=True keeps the size you want)",
    'img_shape': 'LoadImageFromFile', 'ori_shape': 'LoadImageFromFile', 'img': 'LoadImageFromFile',
    'img_path': 'LoadImageFromFile',
    'gt_bboxes': 'LoadAnnotations(with_bbox=True)', 'gt_bboxes_labels': 'LoadAnnotations(with_bbox=True)',
    'gt_instances': 'LoadAnnotations(with_bbox=True, with_mask=True) and PackDetInputs',
    'gt_masks': 'LoadAnnotations(with_mask=True)', 'gt_ignore_flags': 'LoadAnnotations(with_bbox=True)',
    'gt_seg_map': "LoadAnnotations (mmseg's)", 'gt_sem_seg': "LoadAnnotations (mmseg's) and PackSegInputs",
    'inputs': 'the Pack*Inputs transform at the end', 'data_samples': 'the Pack*Inputs transform at the end',
    'pad_shape': 'Pad or the data preprocessor', 'batch_input_shape': 'the data preprocessor',
}


class StartupCheckError(ValueError):
    """A data or config mistake found by the start-up check; the message names the key and the file."""


def _datasets(cfg, key: str) -> Iterator[Tuple[str, dict]]:
    """(config key, dataset dict) of a data loader's dataset, wrappers (ConcatDataset,
    RepeatDataset, ClassBalancedDataset) followed."""
    def walk(node, path):
        if not isinstance(node, dict):
            return
        yield path, node
        if isinstance(node.get('dataset'), dict):
            yield from walk(node['dataset'], f'{path}.dataset')
        for i, d in enumerate(node.get('datasets') or ()):
            yield from walk(d, f'{path}.datasets[{i}]')
    loader = cfg.get(key)
    if isinstance(loader, dict):
        yield from walk(loader.get('dataset'), f'{key}.dataset')


def _local(path) -> bool:
    return isinstance(path, str) and bool(path) and '://' not in path


def check_data_paths(cfg, keys=('train_dataloader', 'val_dataloader')) -> None:
    """A dataset's ``data_root``, ``ann_file`` and ``data_prefix`` folders (joined as mmengine's
    ``BaseDataset`` joins them) must exist: name the key, the path and what it was joined from."""
    for key in keys:
        for where, ds in _datasets(cfg, key):
            root = ds.get('data_root')
            if _local(root) and not osp.isdir(root):
                raise StartupCheckError(f"{where}.data_root: folder '{root}' does not exist; set "
                                        f"{where}.data_root to the folder that holds your data")

            def joined(p):
                return p if osp.isabs(p) or not _local(root) else osp.join(root, p)

            def known(p):  # without a data_root a relative path is the dataset's own (toy sets make theirs)
                return _local(p) and (osp.isabs(p) or _local(root))
            ann = ds.get('ann_file')
            if known(ann) and not osp.exists(joined(ann)):
                via = f" (data_root '{root}' + ann_file '{ann}')" if joined(ann) != ann else ''
                raise StartupCheckError(f"{where}.ann_file: '{joined(ann)}' does not exist{via}")
            prefix = ds.get('data_prefix')
            for name, p in (prefix.items() if isinstance(prefix, dict) else ()):
                if known(p) and not osp.isdir(joined(p)):
                    via = f" (data_root '{root}' + '{p}')" if joined(p) != p else ''
                    raise StartupCheckError(f"{where}.data_prefix.{name}: folder '{joined(p)}' does not exist{via}")


def _inner(model):
    return model.module if is_model_wrapper(model) else model


def _classes(dataset) -> Optional[tuple]:
    meta = getattr(dataset, 'metainfo', None) or {}
    classes = meta.get('classes')
    return tuple(classes) if classes else None


def _class_heads(model) -> List[Tuple[str, object]]:
    """(config key, module) of the modules that predict the dataset's classes (not an RPN)."""
    found = []
    for name, m in model.named_modules():
        n = getattr(m, 'num_classes', None)
        if name.startswith('backbone'):  # a timm classifier's own (0 without its head)
            continue
        if isinstance(n, int) and not isinstance(n, bool) and 'RPN' not in type(m).__name__ \
                and not any(name.startswith(f + '.') for f, _ in found if f):
            found.append((name, m))
    if len(found) > 1:  # mmseg's EncoderDecoder repeats its decode head's number: the heads are meant
        found = [(n, m) for n, m in found if n]
    return [('model' + ''.join(f'[{p}]' if p.isdigit() else f'.{p}' for p in n.split('.') if p), m)
            for n, m in found]


def _check_classes(runner, dataset, where: str) -> None:
    classes = _classes(dataset)
    if classes is None:
        return
    ann = getattr(dataset, 'ann_file', None)
    cat_ids = getattr(dataset, 'cat_ids', None)
    if cat_ids is not None and len(cat_ids) < len(classes) and _local(ann) and ann.endswith('.json'):
        with open(ann) as f:  # COCO: a class name the annotations do not have is dropped silently
            names = [c['name'] for c in json.load(f).get('categories', [])]
        missing = [c for c in classes if c not in names]
        raise StartupCheckError(
            f"{where}.metainfo classes {missing} are not categories of '{ann}' (it has {names}); the "
            f"classes must be the annotation file's category names")
    for key, head in _class_heads(_inner(runner.model)):
        if head.num_classes != len(classes):
            raise StartupCheckError(
                f'{key}.num_classes is {head.num_classes} but {where} has {len(classes)} classes '
                f'({", ".join(map(str, classes[:8]))}{", ..." if len(classes) > 8 else ""}; its metainfo): set '
                f'num_classes={len(classes)} in every head, or the dataset\'s metainfo=dict(classes=...) to yours')


def _check_labels(runner, batch) -> None:
    """Segmentation labels the heads cannot predict (the loss would fail with CUDA's device-side
    assert, or CPU's 'Target 7 is out of bounds', at the first batch that holds one)."""
    from gatedvision.engine.hooks import batch_files
    heads = _class_heads(_inner(runner.model))
    if not heads:
        return
    key, head = heads[0]
    ignore = getattr(head, 'ignore_index', 255)
    samples = batch.get('data_samples') if isinstance(batch, dict) else None
    for sample in samples if isinstance(samples, (list, tuple)) else ():  # not a tensor of targets
        seg = getattr(sample, 'gt_sem_seg', None)
        if seg is None:
            continue
        values = torch.unique(seg.data)
        bad = [int(v) for v in values if not (0 <= v < head.num_classes or v == ignore)]
        if bad:
            raise StartupCheckError(
                f"label values {bad} in {batch_files(dict(data_samples=[sample]))} are outside the "
                f"{head.num_classes} classes of {key}.num_classes (values 0..{head.num_classes - 1}, or "
                f"{ignore} for ignored pixels): check num_classes and reduce_zero_label (True when 0 means "
                f"'unlabelled' and the classes start at 1) {_SKIP}")


def _explain(e: Exception, pipeline_key: str) -> str:
    """What to do about an error raised on a sample: a key the pipeline did not put in."""
    name = None
    if isinstance(e, KeyError) and e.args and isinstance(e.args[0], str):
        name = e.args[0]
    elif isinstance(e, AttributeError):
        m = re.search(r"has no attribute '(\w+)'", str(e))
        name = m and m.group(1)
    if name is None:
        return ''
    sets = _SETS_KEY.get(name)
    return (f"; the samples of {pipeline_key} carry no '{name}'"
            + (f': add {sets} to that pipeline' if sets else ': add the transform that sets it to that pipeline'))


@contextmanager
def _unchanged(model):
    """Random states, buffers and train/eval mode as they were, whatever happens inside."""
    rng = RandomStateHook.capture()
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    modes = {n: m.training for n, m in model.named_modules()}
    try:
        with torch.no_grad():
            yield
    finally:
        with torch.no_grad():
            for n, b in model.named_buffers():
                if n in buffers:
                    b.copy_(buffers[n])
        for n, m in model.named_modules():
            m.training = modes.get(n, m.training)
        RandomStateHook._restore(rng)


@contextmanager
def _quiet():
    """The evaluator's tables for one sample are not worth printing."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _fail(stage: str, files: str, e: Exception, pipeline_key: str):
    raise StartupCheckError(f'start-up check: {stage} failed on {files}: {type(e).__name__}: {e}'
                            f'{_explain(e, pipeline_key)} {_SKIP}') from e


def startup_check(runner) -> List[str]:
    """Run the checks (see the module's docstring); returns what was checked, for the log."""
    from gatedvision.engine.hooks import batch_files
    model, done = _inner(runner.model), []
    loader = runner.train_loop.dataloader
    dataset = loader.dataset
    if len(dataset) == 0:
        raise StartupCheckError(
            'train_dataloader.dataset has no samples: check its data_root, ann_file and data_prefix (for '
            'COCO data also metainfo classes, which must be the annotation file\'s category names, and '
            'filter_cfg, which drops images without annotations)')
    _check_classes(runner, dataset, 'train_dataloader.dataset')
    with _unchanged(model):
        samples = []
        size = loader.batch_size or getattr(loader.batch_sampler, 'batch_size', None) or 1  # mmdet's sampler
        for i in range(min(size, len(dataset))):
            try:
                samples.append(dataset[i])
            except Exception as e:
                _fail('the training pipeline (train_dataloader.dataset.pipeline)', f'sample {i}', e,
                      'train_dataloader.dataset.pipeline')
        batch = loader.collate_fn(samples)
        _check_labels(runner, batch)
        files = batch_files(batch)
        model.train()
        try:
            model._run_forward(model.data_preprocessor(copy.copy(batch), True), mode='loss')
        except Exception as e:
            _fail("the model's loss on a training batch", files, e, 'train_dataloader.dataset.pipeline')
        done.append(f'a training batch of {len(samples)}')

        val = runner._val_loop
        if isinstance(val, BaseLoop) and getattr(val, 'dataloader', None) is not None:
            vset = val.dataloader.dataset
            if len(vset) == 0:
                raise StartupCheckError('val_dataloader.dataset has no samples: check its data_root, '
                                        'ann_file and data_prefix')
            _check_classes(runner, vset, 'val_dataloader.dataset')
            try:
                vbatch = val.dataloader.collate_fn([vset[0]])
            except Exception as e:
                _fail('the validation pipeline (val_dataloader.dataset.pipeline)', 'sample 0', e,
                      'val_dataloader.dataset.pipeline')
            files = batch_files(vbatch)
            model.eval()
            try:
                outputs = model.val_step(vbatch)
            except Exception as e:
                _fail("the model's prediction on a validation sample", files, e, 'val_dataloader.dataset.pipeline')
            try:
                val.evaluator.process(data_samples=outputs, data_batch=vbatch)
                with _quiet():
                    for metric in val.evaluator.metrics:
                        results, metric.results = metric.results, []
                        metric.compute_metrics(results)
            except Exception as e:
                _fail('the evaluator (val_evaluator) on a validation sample', files, e, 'val_dataloader.dataset.pipeline')
            finally:
                for metric in val.evaluator.metrics:
                    metric.results.clear()
            done.append('a validation sample through the model and the evaluator')
    return done


@HOOKS.register_module()
class StartupCheckHook(Hook):
    """Runs :func:`startup_check` before the first training iteration (of a resumed run too)."""
    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        start = time.perf_counter()
        done = startup_check(runner)
        runner.logger.info(f'start-up check passed in {time.perf_counter() - start:.1f} s ({", ".join(done)}); '
                           f'precheck = False skips it')
