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
sys.path.insert(0, str(ROOT / 'tools'))
import compare  # noqa: E402
SMOKE = [  # a few iterations of the toy recipes; the det cells fail on purpose (an epoch-based loop)
    'seg:train_cfg.max_iters=4', 'seg:train_cfg.val_interval=4', 'seg:train_dataloader.batch_size=2',
    'seg:train_dataloader.dataset.num_images=[8,2]', 'seg:val_dataloader.dataset.num_images=[8,2]',
    'seg:default_hooks.checkpoint.interval=1', 'seg:default_hooks.logger.interval=1',
    'det:train_cfg.max_iters=2']


def test_two_seeds_with_a_failure_an_interruption_and_resume(tmp_path):
    args = ['--families', 'halonet', '--tasks', 'seg', 'det', '--seeds', '2', '--work-dir', str(tmp_path),
            '--cfg-options', *SMOKE]
    cells = tmp_path / 'cells'
    # the first run is stopped while the third run (seed 1 of the seg cell) trains
    proc = subprocess.Popen([*TOOL, *args, '--no-cost'], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    while not any((cells / 'halonet26t_seg' / 'seed1').glob('iter_*.pth')):
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline, 'the third run never started training'
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
    first = cells / 'halonet26t_seg' / 'seed0' / 'result.json'
    assert json.loads(first.read_text())['status'] == 'ok'
    assert not (cells / 'halonet26t_seg' / 'seed1' / 'result.json').exists()
    assert 'SIGTERM received' in (cells / 'halonet26t_seg' / 'seed1' / 'log.txt').read_text()
    finished = first.read_text(), first.stat().st_mtime_ns, (first.parent / 'log.txt').read_text()

    # resumed two at a time: seed 0's det run (its seg run finished) beside seed 1's seg run
    res = subprocess.run([*TOOL, *args, '--resume', '--jobs', '2'], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 2, res.stdout[-3000:] + res.stderr[-3000:]  # the two det runs
    # finished runs are not run again; the interrupted one resumed from its checkpoint
    assert (first.read_text(), first.stat().st_mtime_ns, (first.parent / 'log.txt').read_text()) == finished
    log = (cells / 'halonet26t_seg' / 'seed1' / 'log.txt').read_text()
    assert '--resume' in log and 'Resuming from' in log and 'Iter(train) [4/4]' in log
    results = json.loads((tmp_path / 'leaderboard.json').read_text())
    seg = {r['seed']: r for r in results['runs'] if r['task'] == 'seg'}
    for seed, r in seg.items():  # each run its own seed, kept in its config as trained
        assert r['status'] == 'ok' and 0 < r['value'] <= 100 and r['seconds'] > 0 and r['final_loss'] is not None
        assert f'randomness.seed={seed}' in (cells / 'halonet26t_seg' / f'seed{seed}' / 'log.txt').read_text()
        # a run keeps its newest checkpoint only (4 were saved, one an iteration)
        assert sorted(p.name for p in (cells / 'halonet26t_seg' / f'seed{seed}').glob('iter_*.pth')) == ['iter_4.pth']
    assert sorted(seg) == [0, 1] and seg[0]['final_loss'] != seg[1]['final_loss']  # the seeds train differently
    # each seed's det run starts from the same seed's seg backbone
    for seed in (0, 1):
        det_cfg = (cells / 'halonet26t_det' / f'seed{seed}' / 'config.py').read_text()
        assert str(cells / 'halonet26t_det' / f'seed{seed}' / 'backbone_init.pth') in det_cfg
    det = [r for r in results['runs'] if r['task'] == 'det']
    assert [r['status'] for r in det] == ['failed', 'failed']
    assert det[0]['started'] < seg[1]['started'] + seg[1]['seconds'] < det[1]['started']
    assert "train_cfg.max_iters: EpochBasedTrainLoop has no argument 'max_iters'" in det[0]['error']
    assert 'FAILED halonet26t det seed 0' in res.stderr
    cell = next(c for c in results['cells'] if c['task'] == 'seg')
    assert cell['n'] == 2 and cell['values'] == [seg[0]['value'], seg[1]['value']]
    rows = list(csv.reader(open(tmp_path / 'leaderboard.csv')))
    assert rows[0] == ['backbone', 'seg mIoU', 'seg mIoU std', 'seg mIoU n', 'det coco/bbox_mAP',
                       'det coco/bbox_mAP std', 'det coco/bbox_mAP n', 'params (M)', 'GMACs', 'img/s', 'at']
    assert rows[1][:4] == ['halonet26t', compare._number(cell['mean']), f"{cell['std']:.3g}", '2']
    assert rows[1][4].startswith('failed: ')
    md = (tmp_path / 'leaderboard.md').read_text()
    shown = f"{compare._number(cell['mean'])} ± {compare._number(cell['std'], cell['mean'])}"
    assert f'| halonet26t | {shown} | failed: ' in md and 'Measured on' in md
    for plot in ('seg_bar', 'seg_vs_gmacs', 'det_bar'):
        assert (tmp_path / 'plots' / f'{plot}.png').stat().st_size > 1000


def _log_run(run: Path, metrics: dict, loss: float = 0.5):
    """A finished run's scalars, as tools/train.py logs them."""
    vis = run / '20261201_000000' / 'vis_data'
    vis.mkdir(parents=True)
    (vis / 'scalars.json').write_text('\n'.join(json.dumps(r) for r in [dict(loss=loss, iter=10), metrics]))


def test_small_preset_commands_and_the_table_of_what_they_logged(tmp_path):
    res = subprocess.run([*TOOL, '--preset', 'small', '--dry-run', '--gpus', '2', '--families', 'hornet', 'vig',
                          '--work-dir', str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 2 * 4 * 3  # two families, four tasks, three seeds
    for line in lines:
        cmd = shlex.split(line)
        assert cmd[:2] == ['bash', 'tools/dist_train.sh'] and cmd[3] == '2', line
        seed = int(cmd[5][-1])
        assert cmd[5].endswith(f'seed{seed}') and cmd[6:] == ['--cfg-options', f'randomness.seed={seed}'], line
        written = Path(cmd[2]).read_text()  # the task's small recipe, the row's backbone from ImageNet
        assert "'pretrained': True" in written and Path(cmd[2]).parent == Path(cmd[5]).parent
    written = (tmp_path / 'cells' / 'vig-h-t_det' / 'config.py').read_text()
    assert 'mask-rcnn_hornet-t-7x7_fpn_1xb4-12e_pennfudan.py' in written and "'vig_h_tiny'" in written

    # what those runs logged: three backbones on CamVid, three seeds each, one seed unfinished
    cells = tmp_path / 'cells'
    values = {'hornet-t-7x7': [61.0, 62.0, 60.5], 'vig-h-t': [61.5, 60.8, None], 'biformer-s': [55.0, 56.0, 54.0]}
    for tag, vals in values.items():
        for seed, v in enumerate(vals):
            if v is not None:
                _log_run(cells / f'{tag}_seg' / f'seed{seed}', {'mIoU': v, 'aAcc': 90.0, 'step': 8000})
    res = subprocess.run([*TOOL, '--preset', 'small', '--families', 'hornet', 'vig', 'biformer', '--tasks', 'seg',
                          '--work-dir', str(tmp_path), '--no-cost'], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 1, res.stderr[-3000:]  # one run not finished
    md = (tmp_path / 'leaderboard.md').read_text()
    # HorNet and ViG within each other's noise (bold: the best's group); BiFormer 6 mIoU below
    assert '| hornet-t-7x7 | **61.17 ± 0.76** |' in md
    assert '| vig-h-t | **61.15 ± 0.49** (n=2) |' in md
    assert '| biformer-s | 55.00 ± 1.00 |' in md
    summary = json.loads((tmp_path / 'leaderboard.json').read_text())
    assert summary['rank_groups']['seg']['tied'] == ['hornet-t-7x7', 'vig-h-t']
    power = summary['power']['seg']
    assert power['p'] < 0.01 and power['eta_squared'] > 0.9
    row = f"| seg | hornet-t-7x7 | hornet-t-7x7, vig-h-t | {power['f']:.2f} | {power['p']:.2g} | 0.95 | 0.49–1.00 |"
    assert row in md
    assert 'tells the backbones apart' in md
    rows = list(csv.reader(open(tmp_path / 'leaderboard.csv')))
    assert rows[2][:4] == ['vig-h-t', '61.15', '0.495', '2']


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
    _log_run(tmp_path / 'cells' / 'overlock-t_det' / 'seed0', {'coco/bbox_mAP': 0.471, 'coco/segm_mAP': 0.425,
                                                               'step': 12}, loss=0.9)
    res = subprocess.run([*TOOL, '--preset', 'full', '--families', 'overlock', '--tasks', 'det', 'seg',
                          '--work-dir', str(tmp_path), '--no-cost'], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 1, res.stderr[-3000:]  # one cell not run yet
    assert '| overlock-t | 0.471 (paper 0.483) | not run (paper 50.30) |' in (tmp_path / 'leaderboard.md').read_text()
    runs = json.loads((tmp_path / 'leaderboard.json').read_text())['runs']
    assert runs[0]['metrics']['coco/segm_mAP'] == 0.425 and runs[0]['final_loss'] == 0.9


def test_pretrained_backbone_takes_the_source_cells_weights_and_adapts_the_stem(tmp_path):
    """The toy pre-training: a cell starts from the backbone of the row's seg cell (its newest
    complete checkpoint); a 1-channel (medseg) stem gets the RGB kernels summed, as timm adapts
    pretrained weights."""
    import torch
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


def test_toy_dry_run_writes_the_configs_it_prints(tmp_path):
    res = subprocess.run([*TOOL, '--dry-run', '--families', 'hornet', '--tasks', 'seg', 'restore', '--seeds', '2',
                          '--work-dir', str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.strip().splitlines()
    commands = [shlex.split(line) for line in lines if not line.startswith('#')]
    assert len(commands) == 2 and len(lines) == 4  # per seed: the seg run, and a note for restore
    for seed, cmd in enumerate(commands):
        assert cmd[:2] == ['python', 'tools/train.py'] and cmd[-1] == f'randomness.seed={seed}'
        assert "'model_name': 'hornet_tiny_7x7'" in Path(cmd[2]).read_text()
        assert cmd[4] == str(tmp_path / 'cells' / 'hornet-t-7x7_seg' / f'seed{seed}')
    assert lines[1].startswith('# hornet-t-7x7 restore seed 0 starts from the backbone that ')
