"""Predict NIfTI volumes with a trained medical segmentor (``tools/infer.py``)."""
from pathlib import Path
from typing import List, Optional, Union

from mmengine.config import Config

from gatedvision.engine.inferencer import CheckpointInferencer
from gatedvision.registry import INFERENCERS
from .io import group_image_files, load_case, normalize, save_label
from .vis import write_overlays

__all__ = ['MedSegInferencer']


@INFERENCERS.register_module()
class MedSegInferencer(CheckpointInferencer):
    """Whole-volume inference on NIfTI files, written as NIfTI predictions plus PNG overlays.

    Slicing axis, 2.5-D context, normalisation and orientation come from the config's
    ``test_dataloader.dataset``, so inputs are processed exactly as the test set was.

    Model (a ``MedSegmentor``), checkpoint and device: :class:`CheckpointInferencer`.
    """

    def __init__(self, model: Union[str, Config], weights: Optional[str] = None,
                 device: Optional[str] = None):
        super().__init__(model, weights, device)
        ds = self.cfg.test_dataloader.dataset
        self.axis, self.context = ds.get('axis', 2), ds.get('context', 0)
        self.normalize, self.canonical = ds.get('normalize', 'zscore'), ds.get('canonical', True)
        self.channel_names = self.dataset_meta.get('channel_names')

    def __call__(self, inputs: Union[str, Path], out_dir: str = 'outputs',
                 num_slices: int = 3) -> List[dict]:
        """Predict every case in ``inputs`` (a NIfTI file, or a folder; ``X_0000.nii.gz``,
        ``X_0001.nii.gz``... are the channels of case ``X``).

        Writes ``<out_dir>/preds/<case>.nii.gz`` (uint8 labels in the image's voxel grid, with its
        affine and header) and ``<out_dir>/vis/<case>_z<slice>.png`` overlays; returns, per case,
        ``dict(name, pred, pred_file, pictures)``.
        """
        out_dir = Path(out_dir)
        expected = self.model.backbone.in_channels // (2 * self.context + 1)
        results = []
        for case in group_image_files(inputs):
            data = load_case(case, canonical=self.canonical, with_label=False)
            if data['image'].shape[0] != expected:
                raise ValueError(
                    f"case '{case.name}': {data['image'].shape[0]} channel(s) "
                    f"({', '.join(p.name for p in case.images)}) but the model takes {expected}; "
                    f"give one file per channel named {case.name}_0000.nii.gz, "
                    f"{case.name}_0001.nii.gz, ...")
            image = normalize(data['image'], self.normalize, self.channel_names)
            pred = self.model.predict_volume(image, self.axis, self.context).cpu().numpy()
            pred_file = save_label(pred, out_dir / 'preds' / f'{case.name}.nii.gz',
                                   data['affine'], data['header'], canonical=self.canonical)
            pictures = write_overlays(self.vis_dir(out_dir), case.name, image[0], pred, axis=self.axis,
                                      num_slices=num_slices)
            results.append(dict(name=case.name, pred=pred, pred_file=pred_file, pictures=pictures))
        return results
