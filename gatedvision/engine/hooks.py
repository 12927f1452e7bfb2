"""Hooks shared by every task."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

from gatedvision.registry import HOOKS

__all__ = ['RandomStateHook']


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
