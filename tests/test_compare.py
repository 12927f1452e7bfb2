"""tools/compare.py, the leaderboard: cells, failures, interruption and --resume, outputs."""
import csv
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = [sys.executable, str(ROOT / 'tools' / 'compare.py')]
SMOKE = [  # a few iterations of the toy recipes; the det cells fail on purpose (an epoch-based loop)
    'seg:train_cfg.max_iters=4', 'seg:train_cfg.val_interval=4', 'seg:train_dataloader.batch_size=2',
    'seg:train_dataloader.dataset.num_images=[8,2]', 'seg:val_dataloader.dataset.num_images=[8,2]',
    'seg:default_hooks.checkpoint.interval=1', 'seg:default_hooks.logger.interval=1',
    'det:train_cfg.max_iters=2']


def test_two_by_two_with_a_failure_an_interruption_and_resume(tmp_path):
    args = ['--families', 'halonet', 'baseline', '--tasks', 'seg', 'det', '--work-dir', str(tmp_path),
            '--cfg-options', *SMOKE]
    cells = tmp_path / 'cells'
    # the first run is stopped while the third cell (resnet50 on seg) trains
    proc = subprocess.Popen([*TOOL, *args, '--no-cost'], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    while not any((cells / 'resnet50_seg').glob('iter_*.pth')):
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline, 'the third cell never started training'
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
    first = cells / 'halonet26t_seg' / 'result.json'
    assert json.loads(first.read_text())['status'] == 'ok'
    assert not (cells / 'resnet50_seg' / 'result.json').exists()
    assert 'SIGTERM received' in (cells / 'resnet50_seg' / 'log.txt').read_text()
    finished = first.read_text(), first.stat().st_mtime_ns, (cells / 'halonet26t_seg' / 'log.txt').read_text()

    res = subprocess.run([*TOOL, *args, '--resume'], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 2, res.stdout[-3000:] + res.stderr[-3000:]  # the two det cells
    # finished cells are not run again; the interrupted one resumed from its checkpoint
    assert (first.read_text(), first.stat().st_mtime_ns,
            (cells / 'halonet26t_seg' / 'log.txt').read_text()) == finished
    log = (cells / 'resnet50_seg' / 'log.txt').read_text()
    assert '--resume' in log and 'Resuming from' in log and 'Iter(train) [4/4]' in log
    # a cell keeps its newest checkpoint only (4 were saved, one an iteration)
    for cell in ('halonet26t_seg', 'resnet50_seg'):
        assert sorted(p.name for p in (cells / cell).glob('iter_*.pth')) == ['iter_4.pth'], cell
    results = json.loads((tmp_path / 'leaderboard.json').read_text())
    by_cell = {(c['backbone'], c['task']): c for c in results['cells']}
    assert set(by_cell) == {(b, t) for b in ('halonet26t', 'resnet50') for t in ('seg', 'det')}
    for b in ('halonet26t', 'resnet50'):
        seg, det = by_cell[b, 'seg'], by_cell[b, 'det']
        assert seg['status'] == 'ok' and 0 < seg['value'] <= 100 and seg['seconds'] > 0
        assert seg['final_loss'] is not None
        assert det['status'] == 'failed'
        assert "train_cfg.max_iters: EpochBasedTrainLoop has no argument 'max_iters'" in det['error']
    assert 'FAILED halonet26t det' in res.stderr
    # the table: rows are backbones; columns the task metrics, then the costs
    rows = list(csv.reader(open(tmp_path / 'leaderboard.csv')))
    assert rows[0] == ['backbone', 'seg mIoU', 'det coco/bbox_mAP', 'params (M)', 'GMACs', 'img/s', 'at']
    assert [r[0] for r in rows[1:]] == ['halonet26t', 'resnet50']
    for r in rows[1:]:
        assert float(r[1]) == round(by_cell[r[0], 'seg']['value'], 2) and r[2].startswith('failed: ')
        assert float(r[3]) > 10 and float(r[4]) > 1 and float(r[5]) > 0 and r[6] in ('224', '256')
    md = (tmp_path / 'leaderboard.md').read_text()
    assert '| halonet26t |' in md and 'Measured on' in md and 'mask-rcnn_halonet26t_fpn_1xb2-2e' in md
    for plot in ('seg_bar', 'seg_vs_gmacs', 'det_bar', 'det_vs_gmacs'):
        assert (tmp_path / 'plots' / f'{plot}.png').stat().st_size > 1000


def test_full_preset_dry_run_names_a_config_for_every_cell(tmp_path):
    res = subprocess.run([*TOOL, '--preset', 'full', '--dry-run', '--gpus', '8', '--work-dir', str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 7 * 4  # six families and the baseline, four tasks
    for line in lines:
        cmd = shlex.split(line)
        assert cmd[:2] == ['bash', 'tools/dist_train.sh'] and cmd[3] == '8', line
        config = Path(cmd[2]) if Path(cmd[2]).is_absolute() else ROOT / cmd[2]
        assert config.is_file(), line
    # the families' own configs (their papers' recipes) where they exist
    assert any('configs/det/mask-rcnn_overlock-t_fpn_1x_coco.py' in line for line in lines)
    written = tmp_path / 'cells' / 'resnet50_seg' / 'config.py'
    assert written.is_file() and "'model_name': 'resnet50'" in written.read_text()


def test_full_preset_table_puts_the_papers_numbers_beside_the_logged_ones(tmp_path):
    # a finished OverLoCK-T Mask R-CNN cell (as its dist_train.sh command logs it), the seg cell not run
    run = tmp_path / 'cells' / 'overlock-t_det' / '20261201_000000' / 'vis_data'
    run.mkdir(parents=True)
    rows = [dict(loss=0.9, iter=10), {'coco/bbox_mAP': 0.471, 'coco/segm_mAP': 0.425, 'step': 12}]
    (run / 'scalars.json').write_text('\n'.join(json.dumps(r) for r in rows))
    res = subprocess.run([*TOOL, '--preset', 'full', '--families', 'overlock', '--tasks', 'det', 'seg',
                          '--work-dir', str(tmp_path), '--no-cost'], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 1, res.stderr[-3000:]  # one cell not run yet
    table = list(csv.reader(open(tmp_path / 'leaderboard.csv')))
    assert table[1][:3] == ['overlock-t', '0.471 (paper 0.483)', 'not run (paper 50.30)']
    cells = json.loads((tmp_path / 'leaderboard.json').read_text())['cells']
    assert cells[0]['metrics']['coco/segm_mAP'] == 0.425 and cells[0]['final_loss'] == 0.9


def test_pretrained_backbone_takes_the_source_cells_weights_and_adapts_the_stem(tmp_path):
    """The toy pre-training: a cell starts from the backbone of the row's seg cell (its newest
    complete checkpoint); a 1-channel (medseg) stem gets the RGB kernels summed, as timm adapts
    pretrained weights."""
    import torch
    sys.path.insert(0, str(ROOT / 'tools'))
    import compare
    from gatedvision.tasks import TimmBackbone
    torch.manual_seed(0)
    source = TimmBackbone('resnet18')
    seg = tmp_path / 'resnet18_seg'
    seg.mkdir()
    state = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    state['decode_head.conv_seg.weight'] = torch.zeros(5, 8, 1, 1)  # the task's head is left behind
    torch.save(dict(state_dict=state, meta={}), seg / 'iter_4.pth')
    (seg / 'iter_8.pth').write_bytes(b'truncated')  # an interrupted save is not taken
    target = dict(type='gatedvision.TimmBackbone', model_name='resnet18', in_channels=1, _delete_=True)
    path = compare.pretrained_backbone(seg, tmp_path / 'medseg', target)
    loaded = torch.load(path)
    medseg = TimmBackbone('resnet18', in_channels=1)
    medseg.load_state_dict(loaded, strict=True)  # every key, no head keys
    stem = 'model.conv1.weight'
    torch.testing.assert_close(loaded[stem], source.state_dict()[stem].sum(1, keepdim=True))
    for k, v in source.state_dict().items():
        if k != stem:
            torch.testing.assert_close(loaded[k], v, rtol=0, atol=0)
