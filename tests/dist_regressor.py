"""A linear regressor trained by gatedvision's ResilientRunner, one process per torchrun rank
(gloo on the CPU), for tests/test_distributed.py: small enough that a launch costs the imports.

    python -m torch.distributed.run --nproc_per_node 2 tests/dist_regressor.py WORK_DIR [options]

Without torchrun it trains in one process. Options make one rank fail in a chosen way at a chosen
iteration (``--nan RANK:ITER``, ``--raise RANK:ITER``, ``--die RANK:ITER``), slow iterations down
(``--sleep``), resume, or write the final weights (``--save-weights``).
"""
import argparse
import os
import signal
import time

import torch
import torch.nn as nn
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch.utils.data import Dataset

from gatedvision.engine.runner import ResilientRunner


class Points(Dataset):
    def __init__(self, n=64):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], data_samples=self.y[i])


def _at(spec: str):
    """'RANK:ITER' -> (rank, iteration)."""
    rank, it = spec.split(':')
    return int(rank), int(it)


class Regressor(BaseModel):
    """``nan``: (rank, iteration) whose loss is NaN; ``fail``: (rank, iteration) whose forward raises
    (a malformed batch); dropout makes the random states matter for an exact resume."""

    def __init__(self, nan=None, fail=None, dropout=0.2):
        super().__init__()
        torch.manual_seed(0)
        self.lin, self.drop = nn.Linear(4, 1), nn.Dropout(dropout)
        self.nan, self.fail, self.step = nan, fail, 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.lin(self.drop(inputs))
        if mode != 'loss':
            return out
        self.step += torch.is_grad_enabled()  # training steps: the start-up check's forward has no gradients
        if self.fail == (get_rank(), self.step):
            raise IndexError('index 7 is out of bounds for dimension 0 with size 4')
        loss = ((out - data_samples) ** 2).mean()
        return dict(loss_mse=loss * float('nan') if self.nan == (get_rank(), self.step) else loss)


class Pace(Hook):
    """Sleeps after each iteration (so a test can signal mid-run); SIGKILLs a rank at ``die``."""

    def __init__(self, sleep, die):
        self.sleep, self.die = sleep, die

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.die == (runner.rank, runner.iter + 1):
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.sleep)


def train(work_dir: str, batch: int = 2, iters: int = 6, nan=None, fail=None, die=None, sleep: float = 0.0,
          dropout: float = 0.2, resume: bool = False, save_weights=None) -> None:
    """Train the regressor (2 samples a process by default) with a checkpoint every 2 iterations."""
    runner = ResilientRunner(
        model=Regressor(nan, fail, dropout), work_dir=work_dir,
        launcher='pytorch' if 'LOCAL_RANK' in os.environ else 'none',
        train_dataloader=dict(dataset=Points(), batch_size=batch, num_workers=1,
                              sampler=dict(type='InfiniteSampler', shuffle=True, seed=0),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[Pace(sleep, die)],
        randomness=dict(seed=0), resume=resume, experiment_name=f'regressor-{time.time_ns()}',
        env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=60)))
    runner.train()
    if save_weights and runner.rank == 0:
        model = getattr(runner.model, 'module', runner.model)  # the DDP wrapper's module
        torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, save_weights)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('work_dir')
    p.add_argument('--batch', type=int, default=2, help='per process')
    p.add_argument('--iters', type=int, default=6)
    p.add_argument('--nan', type=_at), p.add_argument('--raise', dest='fail', type=_at), p.add_argument('--die', type=_at)
    p.add_argument('--sleep', type=float, default=0.0)
    p.add_argument('--dropout', type=float, default=0.2)
    p.add_argument('--resume', action='store_true')
    p.add_argument('--save-weights')
    train(**vars(p.parse_args()))


if __name__ == '__main__':
    main()
