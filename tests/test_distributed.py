"""Distributed training for real: torchrun with 2 processes on the CPU (gloo), through
tests/dist_regressor.py (a linear model on ResilientRunner, so that a launch costs little more than
the imports). tools/dist_train.sh and tools/dist_test.sh are tested where a model is trained anyway:
test_segmentation.py trains and validates the toy UPerNet on 2 processes; test_detection.py tests its
Mask R-CNN on 2."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SEG = 'configs/seg/upernet_halonet26t_1xb4-200i_toyseg-256x256.py'


def _launch(work, *args, port) -> list:
    return [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', f'--master_port={port}',
            str(ROOT / 'tests' / 'dist_regressor.py'), str(work), *map(str, args)]


def _regressor(work, *args, port, timeout=180):
    return subprocess.run(_launch(work, *args, port=port), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _losses(work: Path) -> list:
    scalars = next(work.glob('*/vis_data/scalars.json'))
    return [json.loads(line)['loss_mse'] for line in scalars.read_text().splitlines() if 'loss_mse' in line]


@pytest.fixture(scope='module')
def straight(tmp_path_factory):
    """An uninterrupted 2-process run: 8 iterations, 2 samples a process, dropout on."""
    work = tmp_path_factory.mktemp('straight')
    res = _regressor(work, '--iters', 8, '--save-weights', work / 'final.pt', port=29611)
    assert res.returncode == 0, res.stderr[-3000:]
    return work


def test_two_processes_of_batch_b_train_as_one_of_batch_2b(tmp_path):
    """DDP averages the gradients of the ranks' halves of the batch: the same update as one process
    on the whole batch. Exact up to float rounding of that average (measured 6e-8); dropout off,
    since each process draws its own masks."""
    two, one = tmp_path / 'two', tmp_path / 'one'
    res = _regressor(two, '--dropout', 0, '--save-weights', two / 'final.pt', port=29612)
    assert res.returncode == 0, res.stderr[-3000:]
    from dist_regressor import train
    train(str(one), batch=4, dropout=0.0, save_weights=str(one / 'final.pt'))
    a, b = torch.load(two / 'final.pt'), torch.load(one / 'final.pt')
    assert all(torch.allclose(a[k], b[k], atol=1e-6, rtol=0) for k in a)
    # the logged loss is the whole batch's, averaged over the ranks, not rank 0's half
    assert _losses(two) == pytest.approx(_losses(one), rel=1e-6, abs=1e-7)
    # only rank 0 writes checkpoints and the log
    assert sorted(p.name for p in two.glob('*.pth')) == ['iter_2.pth', 'iter_4.pth', 'iter_6.pth']
    assert len(list(two.glob('*/*.log'))) == 1


def test_sigterm_to_the_launcher_stops_every_rank_with_one_checkpoint_and_resume_is_exact(straight, tmp_path):
    work = tmp_path / 'stopped'
    port = 29613
    proc = subprocess.Popen(_launch(work, '--iters', 8, '--sleep', 0.3, port=port), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (work / 'iter_2.pth').exists():
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read()[-3000:]
        time.sleep(0.1)
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert time.time() - sent < 30, 'the ranks took too long to stop'
    saved = re.findall(r'SIGTERM received: stopped after iteration (\d+) and saved', out)
    assert saved, out[-3000:]  # rank 0's message; both ranks stopped after the same iteration
    assert 'DataLoader worker' not in out  # the workers did not die of the signal
    last = (work / 'last_checkpoint').read_text().strip()
    assert Path(last).name == f'iter_{saved[0]}.pth' and Path(last).is_file()
    res = _regressor(work, '--iters', 8, '--resume', '--save-weights', work / 'final.pt', port=port)
    assert res.returncode == 0, res.stderr[-3000:]
    # each rank's random states (dropout) were saved and restored: the same weights as uninterrupted
    a, b = torch.load(straight / 'final.pt'), torch.load(work / 'final.pt')
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize('failure, message', [
    ('--nan', r'FloatingPointError: non-finite loss at iteration 3: rank 1: loss_mse=nan'),
    ('--raise', r'IndexError: index 7 is out of bounds .*\n.*\(iteration 3, batch of unknown files\)'),
    ('--die', r'exitcode\s*: -9'),
])
def test_a_failure_on_one_rank_stops_every_rank(failure, message, tmp_path):
    """A non-finite loss, an error in the step or a killed process on rank 1 at iteration 3: all
    ranks stop within a bounded time (no rank waits in an all-reduce for the one that is gone)."""
    start = time.time()
    res = _regressor(tmp_path, failure, '1:3', port=29614 + ['--nan', '--raise', '--die'].index(failure), timeout=120)
    assert res.returncode != 0
    assert re.search(message, res.stdout + res.stderr), (res.stdout + res.stderr)[-3000:]
    assert time.time() - start < 90
    if failure == '--nan':  # rank 0, whose loss was finite, stopped with the same message
        assert '[rank0]: FloatingPointError: non-finite loss at iteration 3: rank 1' in res.stderr


@pytest.mark.parametrize('script, args, tool', [
    ('slurm_train', ['PART', 'job', SEG, 'work_dirs/job', '--resume'], ['tools/train.py', SEG, '--work-dir', 'work_dirs/job']),
    ('slurm_test', ['PART', 'job', SEG, 'ckpt.pth', '--out', 'p.pkl'], ['tools/test.py', SEG, 'ckpt.pth']),
])
def test_slurm_scripts_ask_srun_for_one_task_per_gpu(script, args, tool, tmp_path):
    """No cluster here: a stand-in srun prints the command the script gives it."""
    (tmp_path / 'srun').write_text('#!/bin/sh\necho "$@"\n')
    (tmp_path / 'srun').chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}", GPUS='16', PYTHON='python')
    res = subprocess.run(['bash', f'tools/{script}.sh', *args], cwd=ROOT, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    cmd = res.stdout.split()
    assert cmd[:2] == ['-p', 'PART'] and '--job-name=job' in cmd and '--kill-on-bad-exit=1' in cmd
    assert '--ntasks=16' in cmd and '--ntasks-per-node=8' in cmd and '--gres=gpu:8' in cmd
    at = cmd.index('python')
    assert cmd[at + 2].endswith(tool[0]) and cmd[at + 3:at + 2 + len(tool)] == tool[1:]
    assert cmd[-len(args) + 4:] == args[4:] and '--launcher' in cmd and cmd[cmd.index('--launcher') + 1] == 'slurm'
