"""tools/browse_dataset.py draws what each task's pipeline feeds the model, labels included."""
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tools'))
import browse_dataset  # noqa: E402

CASES = {  # toy config, split, what a picture must be
    'det': ('configs/det/mask-rcnn_halonet26t_fpn_1xb4-4e_toycoco-sparse.py', 'train', '.jpg'),
    'seg': ('configs/seg/upernet_halonet26t_1xb4-200i_toyseg-256x256.py', 'train', '.jpg'),
    'restore': ('configs/restore/nafdec_hornet-t-7x7_1xb8-80i_toyrestore-sigma25.py', 'train', '.png'),
    'medseg': ('configs/medseg/agunet_hornet-t-7x7_1xb4-200i_toymedseg.py', 'train', '.png'),
    'medseg-volume': ('configs/medseg/agunet_hornet-t-7x7_1xb4-200i_toymedseg.py', 'val', '.png'),
}


def _colourful(img: np.ndarray) -> float:
    """Share of pixels whose channels differ: labels are drawn in colour over grey or muted inputs."""
    return float((np.ptp(img.astype(int), axis=2) > 40).mean())


@pytest.mark.parametrize('task', list(CASES))
def test_browse_draws_every_task(task, tmp_path, capsys):
    config, split, ext = CASES[task]
    assert browse_dataset.main([config, '--split', split, '-n', '2', '--out-dir', str(tmp_path)]) == 0
    pictures = sorted(tmp_path.glob(f'*{ext}'))
    assert pictures and f'{len(pictures)} pictures of the {split} pipeline' in capsys.readouterr().out
    for p in pictures:
        img = cv2.imread(str(p))
        assert img is not None and img.ndim == 3
    if task == 'restore':  # noisy input | clean target, 64 px training crops
        img = cv2.imread(str(pictures[0])).astype(float)
        assert img.shape == (64, 64 * 2 + 4, 3)
        lq, gt = img[:, :64], img[:, 68:]
        assert 10 < np.abs(lq - gt).mean() < 40  # sigma-25 noise on the clean crop
    elif task == 'det' or task == 'seg':
        assert len(pictures) == 2
        assert _colourful(cv2.imread(str(pictures[0]))) > 0.01  # boxes, masks, class colours
    else:
        assert max(_colourful(cv2.imread(str(p))) for p in pictures) > 0.001  # label colours on grey MRI
    if task == 'medseg':  # a training slice is named after its case and slice
        import re
        assert all(re.fullmatch(r'\d{4}_\w+_z\d{3}\.png', p.name) for p in pictures), pictures
