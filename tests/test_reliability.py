"""Nothing is lost: atomic checkpoints, saving on SIGTERM, the non-finite loss guard, safe resume,
worker crashes that surface at once (gatedvision.ResilientRunner, every task's default runner)."""
import re
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch.utils.data import Dataset

from gatedvision.engine.checkpoint import checkpoint_problem, find_resumable_checkpoint, load_checkpoint
from gatedvision.engine.runner import ResilientRunner


class _Points(Dataset):
    def __init__(self, n=32, crash_in_worker=False):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g)
        self.crash_in_worker = crash_in_worker

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        if self.crash_in_worker and torch.utils.data.get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGKILL)  # a worker dying (OOM killer, segfault)
        return dict(inputs=self.x[i], data_samples=self.y[i])


class _Regressor(BaseModel):
    """A linear model whose loss turns NaN on its ``nan_at``-th training forward."""

    def __init__(self, nan_at=None):
        super().__init__()
        torch.manual_seed(0)  # built before the runner seeds: the same start in every run
        self.lin = nn.Linear(4, 1)
        self.nan_at, self.calls = nan_at, 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.lin(inputs)
        if mode != 'loss':
            return out
        self.calls += torch.is_grad_enabled()  # training steps: the start-up check's forward has no gradients
        loss = ((out - data_samples) ** 2).mean()
        return dict(loss_mse=loss * float('nan') if self.calls == self.nan_at else loss)


def _runner(work_dir, model=None, max_iters=6, dataset=None, num_workers=0, val_interval=None, hooks=None,
            **kwargs):
    """``hooks``: more ``default_hooks`` entries (the runner's own hooks by name)."""
    return ResilientRunner(
        model=model or _Regressor(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=dataset or _Points(), batch_size=4, num_workers=num_workers,
                              sampler=dict(type='InfiniteSampler', shuffle=True, seed=0),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=kwargs.pop('optim_wrapper', dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, **({} if val_interval is None else
                                                              dict(val_interval=val_interval))),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1), **(hooks or {})),
        randomness=dict(seed=0),
        # mmengine keeps one visualizer per experiment name (a timestamp by default): runners made
        # within the same second would share the first one's log folder
        experiment_name=f'toy-{time.time_ns()}', **kwargs)


def _weights(path):
    return load_checkpoint(str(path))['state_dict']


def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    runner = _runner(tmp_path, _Regressor(nan_at=4))
    with pytest.raises(FloatingPointError, match=r'non-finite loss at iteration 4: loss_mse=nan'):
        runner.train()
    assert not (tmp_path / 'iter_4.pth').exists()
    good = _weights(tmp_path / 'iter_3.pth')
    assert all(torch.isfinite(v).all() for v in good.values())


def test_nonfinite_loss_skip_leaves_the_weights_alone(tmp_path):
    runner = _runner(tmp_path, _Regressor(nan_at=4), hooks=dict(nonfinite_loss=dict(policy='skip')))
    runner.train()
    assert runner.skipped_updates == 1
    before, skipped, after = (_weights(tmp_path / f'iter_{i}.pth') for i in (3, 4, 5))
    assert all(torch.equal(before[k], skipped[k]) for k in before)  # no step at the NaN
    assert not all(torch.equal(skipped[k], after[k]) for k in before)  # training went on
    assert all(torch.isfinite(v).all() for v in after.values())


def test_the_runners_hooks_are_default_hooks_a_config_changes_by_name(tmp_path):
    """mmengine's default hooks and the runner's own, each once; a ``default_hooks`` entry without
    ``type`` changes one's options, ``None`` removes it; custom hooks that replace the config's list
    (mmdet's ``custom_hooks = [EMAHook]``) keep the random states, and an old config's
    RandomStateHook among them is not registered twice."""
    from gatedvision.engine.hooks import NonFiniteLossHook
    from gatedvision.engine.precheck import StartupCheckHook
    runner = _runner(tmp_path, hooks=dict(nonfinite_loss=dict(policy='skip'), startup_check=None),
                     custom_hooks=[dict(type='EMAHook'), dict(type='gatedvision.RandomStateHook')])
    kinds = [type(h).__name__ for h in runner.hooks]
    assert sorted(kinds) == sorted(['RuntimeInfoHook', 'IterTimerHook', 'DistSamplerSeedHook', 'LoggerHook',
                                    'ParamSchedulerHook', 'CheckpointHook', 'RandomStateHook', 'InterruptHook',
                                    'BatchFilesHook', 'NonFiniteLossHook', 'LossAverageHook', 'SyncBuffersHook',
                                    'AuthorsCheckpointHook', 'EMAHook'])
    assert next(h for h in runner.hooks if isinstance(h, NonFiniteLossHook)).policy == 'skip'
    assert any(isinstance(h, StartupCheckHook) for h in _runner(tmp_path / 'plain').hooks)
    with pytest.raises(ValueError, match="NonFiniteLossHook: policy must be 'stop' or 'skip', got 'skp'"):
        _runner(tmp_path / 'typo', hooks=dict(nonfinite_loss=dict(policy='skp')))


class _SendSigterm(Hook):
    def __init__(self, at=2):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_saves_a_checkpoint_that_resumes_exactly(tmp_path):
    _runner(tmp_path / 'straight').train()
    runner = _runner(tmp_path / 'stopped')
    runner.register_hook(_SendSigterm())
    with pytest.raises(SystemExit) as stop:
        runner.train()
    assert stop.value.code == 128 + signal.SIGTERM
    assert (tmp_path / 'stopped' / 'iter_2.pth').is_file()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    # `tools/train.py --resume` without a path: the runner finds the newest complete checkpoint
    _runner(tmp_path / 'stopped', resume=True).train()
    a, b = _weights(tmp_path / 'straight' / 'iter_6.pth'), _weights(tmp_path / 'stopped' / 'iter_6.pth')
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_skips_truncated_checkpoints(tmp_path):
    _runner(tmp_path, max_iters=3).train()
    data = (tmp_path / 'iter_3.pth').read_bytes()
    (tmp_path / 'iter_3.pth').write_bytes(data[:len(data) // 2])  # a crash mid-write (non-atomic tools)
    assert 'is truncated or corrupt' in checkpoint_problem(str(tmp_path / 'iter_3.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    (tmp_path / 'last_checkpoint').unlink()
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    # a flipped byte inside a tensor (the archive's end record intact): the quick check cannot see
    # it, the thorough one (what --resume uses) fails the member's CRC and falls back further
    import zipfile
    with zipfile.ZipFile(tmp_path / 'iter_2.pth') as z:  # the first byte of the largest tensor's data
        member = max((i for i in z.infolist() if '/data/' in i.filename), key=lambda i: i.file_size)
    data = bytearray((tmp_path / 'iter_2.pth').read_bytes())
    at = member.header_offset  # a local header of 30 bytes, then the name and the extra field
    start = at + 30 + int.from_bytes(data[at + 26:at + 28], 'little') + int.from_bytes(data[at + 28:at + 30], 'little')
    data[start] ^= 0xFF
    (tmp_path / 'iter_2.pth').write_bytes(bytes(data))
    assert checkpoint_problem(str(tmp_path / 'iter_2.pth')) is None
    assert re.search(r'is corrupt \(\d+ bytes; its member .* fails its CRC\)',
                     checkpoint_problem(str(tmp_path / 'iter_2.pth'), thorough=True))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_1.pth')


def test_resume_from_a_truncated_file_falls_back_and_load_from_names_it(tmp_path):
    _runner(tmp_path, max_iters=3).train()
    cut = tmp_path / 'cut.pth'
    data = (tmp_path / 'iter_3.pth').read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    # `tools/train.py --resume cut.pth`: the newest complete checkpoint instead, and on to the end
    runner = _runner(tmp_path, max_iters=5, resume=True, load_from=str(cut))
    runner.train()
    assert runner.iter == 5 and (tmp_path / 'iter_5.pth').is_file()
    assert not any('cut.pth' in line for line in open(tmp_path / 'last_checkpoint'))
    # `load_from` (and tools/test.py): the file is named, not torch's zip reader error
    with pytest.raises(ValueError, match=r"checkpoint '.*cut\.pth' is truncated or corrupt"):
        _runner(tmp_path / 'other', load_from=str(cut)).train()
    # nothing complete to fall back to: say so
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match=r"--resume: checkpoint '.*cut\.pth' is truncated .* holds no complete"):
        _runner(empty, resume=True, load_from=str(cut)).train()


_SAVER = textwrap.dedent('''
    import sys, torch
    from gatedvision.engine.checkpoint import atomic_torch_save
    path, atomic = sys.argv[1], sys.argv[2] == '1'
    save = atomic_torch_save if atomic else torch.save
    big = torch.ones(64 * 2**20)  # 256 MiB
    save({'version': 1, 'w': big}, path)
    print('saved', flush=True)
    while True:
        save({'version': 2, 'w': big * 2}, path)
''')


def _kill_during_second_save(path, atomic):
    proc = subprocess.Popen([sys.executable, '-c', _SAVER, str(path), '1' if atomic else '0'],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'saved'
        full = path.stat().st_size
        tmp = path.parent / f'.{path.name}.tmp-{proc.pid}'
        written = tmp if atomic else path
        deadline = time.time() + 60
        while time.time() < deadline:  # wait until the second save is part-way through
            if written.exists() and 0.1 * full < written.stat().st_size < 0.9 * full:
                break
            time.sleep(0.005)
        else:
            pytest.fail('the second save was never observed in progress')
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    return full


def test_kill_during_save_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / 'ckpt.pth'
    _kill_during_second_save(path, atomic=True)
    state = torch.load(path)
    assert state['version'] == 1 and bool((state['w'] == 1).all())
    # without the temporary file, the same kill leaves a checkpoint torch cannot read
    plain = tmp_path / 'plain.pth'
    _kill_during_second_save(plain, atomic=False)
    with pytest.raises(Exception):
        torch.load(plain)


def test_runner_checkpoints_go_through_a_temporary_file(tmp_path, monkeypatch):
    import mmengine.runner.runner as mm_runner
    seen = []
    original = mm_runner.save_checkpoint
    monkeypatch.setattr(mm_runner, 'save_checkpoint',
                        lambda ckpt, path, **kw: (seen.append(os.path.basename(path)), original(ckpt, path, **kw)))
    _runner(tmp_path, max_iters=1).train()
    assert seen and seen[0].startswith('.iter_1.pth.tmp-')
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_1.pth']


def test_worker_crash_fails_fast(tmp_path):
    runner = _runner(tmp_path, dataset=_Points(crash_in_worker=True), num_workers=1)
    start = time.time()
    with pytest.raises(RuntimeError, match='DataLoader worker .* exited unexpectedly'):
        runner.train()
    assert time.time() - start < 60


def test_checkpoint_of_another_model_is_refused_at_test_time(tmp_path):
    _runner(tmp_path / 'a', max_iters=1).train()
    other = _Regressor()
    other.extra = nn.Linear(2, 2)
    runner = _runner(tmp_path / 'b', model=other)
    runner.strict_load = True  # what runner.test() sets
    with pytest.raises(RuntimeError, match=r'missing keys in source state_dict: extra\.weight, extra\.bias'):
        runner.load_checkpoint(str(tmp_path / 'a' / 'iter_1.pth'))


# Exact resume through tools/train.py for every task's toy config: train 2N steps straight, and
# N steps + `--resume` + N more; the final weights must be identical.
RESUME_CASES = {
    'segmentation': ('configs/seg/upernet_halonet26t_1xb4-120i_toyseg-128x128.py',
                     ['train_cfg.max_iters=6', 'train_cfg.val_interval=100', 'train_dataloader.batch_size=2',
                      'default_hooks.checkpoint.interval=3', 'default_hooks.checkpoint.max_keep_ckpts=-1'],
                     'iter_3.pth', 'iter_6.pth'),
    'medical': ('configs/medseg/agunet_hornet-t-7x7-slim_1xb8-400i_toymedseg.py',
                ['train_cfg.max_iters=4', 'train_cfg.val_interval=100', 'train_dataloader.batch_size=2',
                 'default_hooks.checkpoint.interval=2', 'default_hooks.checkpoint.max_keep_ckpts=-1',
                 'default_hooks.checkpoint.save_best=None'],
                'iter_2.pth', 'iter_4.pth'),
    'restoration': ('configs/restore/nafdec_hornet-t-7x7_1xb8-300i_toyrestore-sigma25.py',
                    ['train_cfg.max_iters=4', 'train_cfg.val_interval=100', 'param_scheduler.0.end=4',
                     'default_hooks.checkpoint.interval=2', 'train_dataloader.batch_size=4'],
                    'iter_2.pth', 'iter_4.pth'),
    'detection': ('configs/det/mask-rcnn_halonet26t_fpn_1xb4-4e_toycoco-sparse.py',
                  ['train_cfg.max_epochs=2', 'train_cfg.val_interval=100', 'train_dataloader.batch_size=2',
                   'train_dataloader.dataset.indices=4', 'default_hooks.checkpoint.interval=1',
                   'default_hooks.checkpoint.max_keep_ckpts=-1'],
                  'epoch_1.pth', 'epoch_2.pth'),
}


@pytest.mark.parametrize('task', sorted(RESUME_CASES))
def test_resume_is_exact_for_every_task(task, tmp_path):
    from conftest import run_tool
    config, options, half, end = RESUME_CASES[task]
    options = [*options, 'randomness.deterministic=True']
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    res = run_tool('train', config, '--work-dir', straight, '--cfg-options', *options)
    assert res.returncode == 0, res.stderr[-3000:]
    res = run_tool('train', config, '--work-dir', resumed, '--resume', straight / half,
                   '--cfg-options', *options)
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = _weights(straight / end), _weights(resumed / end)
    diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert diff == 0, f'{task}: resumed weights differ by up to {diff}'
    mid = _weights(straight / half)
    assert any(not torch.equal(mid[k], a[k]) for k in a)  # the second half did train


def test_the_start_up_check_leaves_the_run_unchanged(tmp_path):
    """Bit-identical weights after 2 iterations with and without the start-up check: its forward
    passes (a training batch in train mode, a validation sample) give back the random states and
    the BN statistics they touch."""
    from conftest import run_tool
    config, options = RESUME_CASES['segmentation'][:2]
    options = [*options, 'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2', 'randomness.deterministic=True']
    weights = []
    for flag in ([], ['--no-precheck']):
        work = tmp_path / ('off' if flag else 'on')
        res = run_tool('train', config, '--work-dir', work, *flag, '--cfg-options', *options)
        assert res.returncode == 0, res.stderr[-3000:]
        assert ('start-up check passed' in res.stdout + res.stderr) != bool(flag)
        weights.append(_weights(work / 'iter_2.pth'))
    with_check, without = weights
    assert all(torch.equal(with_check[k], without[k]) for k in without)


class _MSE(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.append(((torch.stack(data_samples) - data_batch['data_samples']) ** 2).mean().item())

    def compute_metrics(self, results):
        return dict(mse=sum(results) / len(results))


class _Validations(Hook):
    """Records (iteration, metrics) of every validation."""
    def __init__(self):
        self.seen = []

    def after_val_epoch(self, runner, metrics=None):
        self.seen.append((runner.iter, metrics))


def _validating_runner(work_dir, seen, **kwargs):
    runner = _runner(work_dir, val_dataloader=dict(dataset=_Points(8), batch_size=4,
                                                 sampler=dict(type='DefaultSampler', shuffle=False),
                                                 collate_fn=dict(type='default_collate')),
                     val_cfg=dict(), val_evaluator=Evaluator(_MSE()), val_interval=3, **kwargs)
    runner.register_hook(seen)
    return runner


@pytest.mark.parametrize('stop_at', [3, 6, 2])  # before a validation, before the last one, between
def test_an_interrupted_run_validates_where_an_uninterrupted_one_does(stop_at, tmp_path):
    straight = _Validations()
    _validating_runner(tmp_path / 'straight', straight).train()
    assert [it for it, _ in straight.seen] == [3, 6]
    first, resumed = _Validations(), _Validations()
    runner = _validating_runner(tmp_path / 'stopped', first)
    runner.register_hook(_SendSigterm(at=stop_at))
    with pytest.raises(SystemExit):
        runner.train()
    _validating_runner(tmp_path / 'stopped', resumed, resume=True).train()
    # the validation the interruption skipped is done by the resumed run, on the same weights
    assert first.seen + resumed.seen == straight.seen


class _WithBackbone(_Regressor):
    """The regressor beside a pretrained bridge backbone (weights from a local file: no network)."""

    def __init__(self, weights):
        super().__init__()
        from gatedvision.engine.bridge import TimmBackbone
        self.backbone = TimmBackbone('resnet18', checkpoint=str(weights), out_indices=(-1,))


def test_load_from_a_checkpoint_without_the_backbone_names_the_missing_tensors(tmp_path):
    """load_from replaces the backbone's pretrained weights (they are not loaded for it): a
    checkpoint that lacks them is refused with the tensor and the fix, not trained from random."""
    import timm
    weights = tmp_path / 'resnet18.pth'
    torch.save(timm.create_model('resnet18').state_dict(), weights)
    _runner(tmp_path / 'head', max_iters=1).train()  # a checkpoint of the regressor alone
    runner = _runner(tmp_path / 'run', model=_WithBackbone(weights), max_iters=1,
                     load_from=str(tmp_path / 'head' / 'iter_1.pth'))
    with pytest.raises(ValueError, match=r"checkpoint '.*iter_1\.pth' has no weights for \d+ tensor\(s\) of the "
                                         r"backbone backbone \(resnet18\), e\.g\. backbone\.model\..*give load_from "
                                         r"a checkpoint of the whole model"):
        runner.train()
    assert runner.model.backbone.weights_provided_by == f"load_from {tmp_path / 'head' / 'iter_1.pth'}"
