"""Hooks shared by every task. ``ResilientRunner`` registers them by name as default hooks
(``DEFAULT_HOOKS`` in :mod:`.runner`), beside mmengine's own, so a config sees, configures or removes
each one: ``default_hooks = dict(nonfinite_loss=dict(policy='skip'), startup_check=None)``."""
import os.path as osp
import random
import signal
from typing import Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, all_reduce, barrier, get_rank, get_world_size, is_distributed, \
    is_main_process
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from gatedvision.engine.optim import NonFiniteGuard, on_any_rank
from gatedvision.registry import HOOKS

__all__ = ['RandomStateHook', 'InterruptHook', 'BatchFilesHook', 'NonFiniteLossHook', 'LossAverageHook',
           'batch_files']


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the main process's random states in each checkpoint and restore them on resume, so a
    resumed run draws the same dropout masks, drop-path decisions and in-process augmentations as
    an uninterrupted one.

    mmengine reseeds on start and replays the data loader up to the resumed iteration, which
    reproduces data order and the augmentations done in loader workers; this hook supplies the
    rest. The states are restored just before the first resumed iteration runs (after the replay,
    which itself draws random numbers), or, for epoch-based loops, before the resumed epoch creates
    its data loader iterator (which draws a seed). Validation leaves the random states as it found
    them, so a run that validated on the way matches one resumed after that point. With
    ``num_workers=0`` the augmentations run in the main process during the replay: use at least one
    worker for exact resumption (and, for epoch-based loops, ``persistent_workers=False``).
    """
    priority = 'VERY_LOW'

    def __init__(self):
        self._pending = None
        self._before_val = None

    @staticmethod
    def capture() -> dict:
        return dict(python=random.getstate(), numpy=np.random.get_state(),
                    torch=torch.get_rng_state(),
                    cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])

    @staticmethod
    def _restore(state: dict) -> None:
        random.setstate(state['python'])
        np.random.set_state(state['numpy'])
        torch.set_rng_state(state['torch'])
        if state['cuda'] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = self.capture()

    def before_val(self, runner) -> None:
        self._before_val = self.capture()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            self._restore(self._before_val)
            self._before_val = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if runner._resume:  # not for load_from (fine-tuning, testing)
            self._pending = checkpoint.get('rng_state')
            # a distributed run saved every rank's states (ResilientRunner.save_checkpoint)
            states = checkpoint.get('meta', {}).get('rng_states')
            if states and len(states) == runner.world_size:
                self._pending = states[runner.rank]
            elif states:
                runner.logger.warning(f'the checkpoint was saved by {len(states)} processes, this run has '
                                      f'{runner.world_size}: random states are not restored exactly')

    def before_train_epoch(self, runner) -> None:
        if self._pending is not None and isinstance(runner.train_loop, EpochBasedTrainLoop):
            state, self._pending = self._pending, None
            self._restore(state)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._pending is not None:
            state, self._pending = self._pending, None
            self._restore(state)


_PENDING_VAL = 'gatedvision_pending_val'  # message hub key, saved in the interrupt's checkpoint


def _validation_due(runner) -> bool:
    """Whether the iteration-based loop validates after the iteration that just ran (its test)."""
    loop, n = runner.train_loop, runner.iter + 1
    return (isinstance(loop, IterBasedTrainLoop) and runner.val_loop is not None and n >= loop.val_begin
            and (n % loop.val_interval == 0 or n == loop.max_iters))


@HOOKS.register_module()
class InterruptHook(Hook):
    """SIGTERM or Ctrl-C during training (the runner routes both here): the current iteration
    finishes, a resumable checkpoint ``iter_N.pth`` is saved and the run exits with 128 + signal; a
    second Ctrl-C stops at once. Under DDP every rank stops after the same iteration. The run resumed
    from that checkpoint first does the validation that iteration was due, so it validates at the
    same iterations (and keeps the same best checkpoint) as an uninterrupted one."""
    priority = 'LOWEST'

    def __init__(self):
        self.signum = None

    def before_train(self, runner) -> None:
        if runner.message_hub.get_info(_PENDING_VAL) and runner.val_loop is not None:
            runner.message_hub.update_info(_PENDING_VAL, False)
            runner.logger.info(f'the interrupted run stopped before its validation at iteration '
                               f'{runner.iter}: validating first')
            runner.val_loop.run()

    def handle(self, signum, frame):
        if self.signum is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        # under DDP the signal reaches the ranks at different moments: all stop after the same iteration
        if not on_any_rank(self.signum is not None):
            return
        signum = self.signum or signal.SIGTERM
        name = f'iter_{runner.iter + 1}.pth'
        runner.message_hub.update_info(_PENDING_VAL, _validation_due(runner))
        runner.save_checkpoint(runner.work_dir, name, by_epoch=False)
        path = osp.join(runner.work_dir, name)
        if is_main_process():
            with open(osp.join(runner.work_dir, 'last_checkpoint'), 'w') as f:
                f.write(path)
        runner.logger.warning(
            f'{signal.Signals(signum).name} received: stopped after iteration {runner.iter + 1} '
            f'and saved {path}; continue with tools/train.py CONFIG --work-dir {runner.work_dir} --resume')
        barrier()  # no rank exits (which makes torchrun stop the others) before rank 0 has saved
        raise SystemExit(128 + signum)


def batch_files(data) -> str:
    """The files a data batch came from (img / gt / label paths in its samples' metainfo)."""
    samples = data.get('data_samples') if isinstance(data, dict) else None
    paths = []
    for sample in samples if isinstance(samples, (list, tuple)) else []:  # not a tensor of targets
        meta = getattr(sample, 'metainfo', sample if isinstance(sample, dict) else {})
        paths += [str(meta[k]) for k in ('img_path', 'seg_map_path', 'gt_path', 'lq_path',
                                          'label_path') if meta.get(k)]
    return ', '.join(paths) or 'unknown files'


@HOOKS.register_module()
class BatchFilesHook(Hook):
    """Remembers the batch being trained on, so that an error raised by the training step names
    its files and iteration (the runner's ``train`` asks :meth:`named`; a hook, not a patch of
    ``train_step``: under DDP the wrapper's own step runs)."""
    priority = 'VERY_HIGH'

    def __init__(self):
        self.current = None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.current = (runner.iter + 1, data_batch)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.current = None

    def named(self, e: Exception) -> Optional[Exception]:
        """``e`` with the iteration and the batch's files added, or None outside a training step."""
        if self.current is None or not isinstance(e, (IndexError, ValueError, RuntimeError, KeyError)):
            return None
        iteration, data = self.current
        hint = (' Label values outside the classes the model predicts: check num_classes '
                'and reduce_zero_label.' if 'out of bounds' in str(e) else '')
        msg = f'{e}\n(iteration {iteration}, batch of {batch_files(data)}){hint}'
        try:
            return type(e)(msg)
        except Exception:  # exception types with other constructors
            return RuntimeError(msg)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """A NaN / Inf loss on any rank: ``policy='stop'`` (default) stops training at once, naming the
    iteration and the loss terms (the checkpoints so far are intact); ``'skip'`` skips that update on
    every rank and counts it (``skipped``, logged; ``runner.skipped_updates``). The optimizer wrapper's
    :class:`~gatedvision.engine.optim.NonFiniteGuard` (the runner mixes it into the configured
    wrapper) has already kept the weights intact; a wrapper without it can only stop."""
    priority = 'HIGHEST'  # before the loss averaging, the runtime info and logger hooks, and any saving

    def __init__(self, policy: str = 'stop'):
        if policy not in ('stop', 'skip'):
            raise ValueError(f"NonFiniteLossHook: policy must be 'stop' or 'skip', got {policy!r}")
        self.policy, self.skipped = policy, 0

    def before_train(self, runner) -> None:
        self.skipped = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        log_vars = outputs if isinstance(outputs, dict) else {}
        bad = {k: float(v.detach()) for k, v in log_vars.items()
               if 'loss' in k and k != 'loss' and torch.is_tensor(v) and not torch.isfinite(v).all()}
        guard = runner.optim_wrapper if isinstance(runner.optim_wrapper, NonFiniteGuard) else None
        total = log_vars.get('loss')
        if guard is not None:
            here, anywhere = guard.nonfinite
        else:
            here = bool(bad) or (torch.is_tensor(total) and not torch.isfinite(total).all())
            anywhere = on_any_rank(here)
        if not anywhere:
            return
        terms = (', '.join(f'{k}={v}' for k, v in bad.items()) or f'loss={float(total.detach())}') if here else None
        if is_distributed():
            terms = '; '.join(f'rank {r}: {t}' for r, t in enumerate(all_gather_object(terms)) if t)
        if self.policy == 'stop' or guard is None:
            raise FloatingPointError(
                f'non-finite loss at iteration {runner.iter + 1}: {terms}. Training stopped; the '
                f'checkpoints in {runner.work_dir} are intact (lower the learning rate, or set '
                f"default_hooks=dict(nonfinite_loss=dict(policy='skip')) to skip such updates)")
        self.skipped += 1
        runner.logger.warning(f'iteration {runner.iter + 1}: non-finite loss ({terms}); update '
                              f'skipped ({self.skipped} so far)')
        # the skipped update's terms are logged as zero on every rank
        log_vars.update({k: torch.zeros_like(v) for k, v in log_vars.items() if torch.is_tensor(v)})


@HOOKS.register_module()
class LossAverageHook(Hook):
    """In a distributed run, the logged loss terms averaged over the ranks after each iteration, so
    the logs show the whole batch's loss, not rank 0's share (the loss that trained is untouched)."""
    priority = 1  # after NonFiniteLossHook (HIGHEST), before the runtime info and logger hooks

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if not is_distributed() or not isinstance(outputs, dict) or not outputs:
            return
        values = torch.stack([torch.as_tensor(v).detach().float().reshape(()).cpu() for v in outputs.values()])
        count = torch.tensor([float(len(values))])
        all_reduce(count, op='sum')
        if int(count) != len(values) * get_world_size():
            raise RuntimeError(f'rank {get_rank()} logs the loss terms {list(outputs)}, which the other ranks do not')
        all_reduce(values, op='mean')
        outputs.update(zip(outputs, values))
