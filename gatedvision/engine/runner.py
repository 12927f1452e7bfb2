"""mmengine's Runner with the guarantees long trainings need (every task's default runner).

- Checkpoints are written atomically: to a temporary file in the same folder, flushed to disk,
  then renamed, so a process killed while saving leaves the previous checkpoints intact.
- ``--resume`` without a path picks the newest checkpoint that is complete, even when the
  ``last_checkpoint`` pointer is missing or stale; ``--resume PATH`` to a truncated file falls back
  to it too. Any other truncated or foreign file (``load_from``, ``tools/test.py``) is named.
- SIGTERM or Ctrl-C during training finishes the current iteration, saves a resumable checkpoint
  and exits (a second Ctrl-C stops at once); under DDP every rank stops after the same iteration.
  When a validation was due after that iteration, the resumed run does it first, so an interrupted
  run validates at the same iterations (and keeps the same best checkpoint) as an uninterrupted one.
- An error raised by a training step names the files of the batch it happened on (and, for
  labels outside the class range, says so), under DDP too.
- Distributed runs (``tools/dist_train.sh``, ``tools/dist_test.sh``) work on any machine: NCCL on
  GPUs, gloo on the CPU (mmengine asks for NCCL and a GPU per process), with a clear error when
  more processes than GPUs are started. Only rank 0 writes checkpoints; each rank's random states
  go into them, so a resumed distributed run continues as an uninterrupted one. Buffers (BatchNorm
  statistics) are averaged over the ranks before each checkpoint and validation, so a distributed
  validation scores what testing the checkpoint scores.
- ``tools/test.py`` loads checkpoints strictly: a checkpoint of another architecture lists its
  missing and unexpected keys instead of evaluating a half-initialised model.
- A non-finite loss stops training at once, naming the iteration and the loss terms
  (``nonfinite_loss='stop'``, the default), or skips that update (``'skip'``), counting the skips;
  under DDP a non-finite loss on any rank stops (or skips on) every rank.
"""
import functools
import os
import os.path as osp
import re
import signal
import threading
from datetime import timedelta
from typing import Optional

import torch
from mmengine.dataset import worker_init_fn as seeded_worker_init
from mmengine.dist import (all_gather_object, all_reduce, all_reduce_params, barrier, get_rank, get_world_size,
                           is_distributed, is_main_process)
from mmengine.hooks import Hook, SyncBuffersHook
from mmengine.model import is_model_wrapper, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS
from mmengine.optim import OptimWrapper
from mmengine.runner import IterBasedTrainLoop, Runner

from gatedvision.engine.checkpoint import _atomic_file, check_checkpoint, checkpoint_problem, find_resumable_checkpoint
from gatedvision.registry import OPTIM_WRAPPERS, RUNNERS

def batch_files(data) -> str:
    """The files a data batch came from (img / gt / label paths in its samples' metainfo)."""
    samples = data.get('data_samples') if isinstance(data, dict) else None
    paths = []
    for sample in samples if isinstance(samples, (list, tuple)) else []:  # not a tensor of targets
        meta = getattr(sample, 'metainfo', sample if isinstance(sample, dict) else {})
        paths += [str(meta[k]) for k in ('img_path', 'seg_map_path', 'gt_path', 'lq_path',
                                          'label_path') if meta.get(k)]
    return ', '.join(paths) or 'unknown files'


def _on_any_rank(flag: bool) -> bool:
    """``flag`` or-ed over the processes of a distributed run (every rank must call it)."""
    if not is_distributed():
        return flag
    t = torch.tensor([float(flag)])
    all_reduce(t, op='max')
    return bool(t.item())


def _mean_over_ranks(log_vars: dict, flag: bool):
    """The logged loss terms averaged over the ranks of a distributed run (the logs show the
    whole batch, not rank 0's share), and ``flag`` or-ed over them; the loss itself is untouched."""
    values = torch.stack([torch.as_tensor(v).detach().float().reshape(()).cpu() for v in log_vars.values()])
    header = torch.tensor([float(len(values)), float(flag)])
    all_reduce(header, op='sum')
    if int(header[0]) != len(values) * get_world_size():
        raise RuntimeError(f'rank {get_rank()} logs the loss terms {list(log_vars)}, which the other ranks do not')
    all_reduce(values, op='mean')
    return dict(zip(log_vars, values)), bool(header[1] > 0)


def _shielded_worker_init(worker_id: int, num_workers: int, rank: int, seed: Optional[int],
                          disable_subprocess_warning: bool = False) -> None:
    """mmengine's worker seeding, in a worker moved to a process group of its own: torchrun and
    Ctrl-C signal the main process's whole group, and a worker killed by that signal would end the
    main process ("DataLoader worker is killed") before it saves its checkpoint. The loader still
    stops its workers itself, and they exit when they see the main process gone."""
    os.setpgid(0, 0)
    if seed is not None:
        seeded_worker_init(worker_id, num_workers, rank, seed, disable_subprocess_warning)


_PENDING_VAL = 'gatedvision_pending_val'  # message hub key, saved in the interrupt's checkpoint


def _validation_due(runner) -> bool:
    """Whether the iteration-based loop validates after the iteration that just ran (its test)."""
    loop, n = runner.train_loop, runner.iter + 1
    return (isinstance(loop, IterBasedTrainLoop) and runner.val_loop is not None and n >= loop.val_begin
            and (n % loop.val_interval == 0 or n == loop.max_iters))


class _InterruptHook(Hook):
    """Saves a resumable checkpoint after the iteration during which SIGTERM / SIGINT arrived;
    the run resumed from it first does the validation that iteration was due."""
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
        if not _on_any_rank(self.signum is not None):
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


class _BatchFiles(Hook):
    """Remembers the batch being trained on, so that an error raised by the training step names
    its files (a hook, not a patch of ``train_step``: under DDP the wrapper's own step runs)."""
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


class _NonFiniteGuard:
    """Mixed into the optimizer wrapper ResilientRunner builds (whatever its class: OptimWrapper,
    AmpOptimWrapper, AutocastOptimWrapper): an update whose loss is not finite, on any rank of a
    distributed run, back-propagates zero instead (every rank's gradient all-reduce still happens)
    and skips the optimizer step; :class:`_NonFiniteHook` then stops training or counts the skip."""

    nonfinite = (False, False)  # (on this rank, on any rank) for the last update
    _skip_step = False

    def update_params(self, loss, step_kwargs=None, zero_kwargs=None) -> None:
        here = not bool(torch.isfinite(loss.detach()).all())
        self.nonfinite = (here, _on_any_rank(here))
        if self.nonfinite[1]:
            self._skip_step = True  # the step that ends this accumulation window
            loss = sum(p.sum() * 0 for g in self.optimizer.param_groups for p in g['params'] if p.requires_grad)
        super().update_params(loss, step_kwargs, zero_kwargs)

    def step(self, **kwargs) -> None:
        if self._skip_step:
            self._skip_step = False
            return
        super().step(**kwargs)


@functools.lru_cache(maxsize=None)
def _guarded(cls: type) -> type:
    return type(f'Guarded{cls.__name__}', (_NonFiniteGuard, cls), {'__module__': __name__})


class _NonFiniteHook(Hook):
    """After each iteration: the logged loss terms averaged over the ranks of a distributed run (the
    logs show the whole batch, not rank 0's share); a non-finite loss on any rank stops training
    (``nonfinite_loss='stop'``), naming the iteration and the terms, or is counted as a skipped
    update (``'skip'``). The guard in the optimizer wrapper has already kept the weights intact."""
    priority = 'HIGHEST'  # before the runtime info and logger hooks read the terms, and any saving

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        log_vars = outputs if isinstance(outputs, dict) else {}
        bad = {k: float(v.detach()) for k, v in log_vars.items()
               if 'loss' in k and k != 'loss' and torch.is_tensor(v) and not torch.isfinite(v).all()}
        guard = runner.optim_wrapper if isinstance(runner.optim_wrapper, _NonFiniteGuard) else None
        total = log_vars.get('loss')
        here = guard.nonfinite[0] if guard else bool(bad) or (torch.is_tensor(total) and not torch.isfinite(total).all())
        if is_distributed() and log_vars:
            averaged, anywhere = _mean_over_ranks(log_vars, here)
            log_vars.update(averaged)
        else:
            anywhere = here
        if not anywhere:
            return
        terms = (', '.join(f'{k}={v}' for k, v in bad.items()) or f'loss={float(total.detach())}') if here else None
        if is_distributed():
            terms = '; '.join(f'rank {r}: {t}' for r, t in enumerate(all_gather_object(terms)) if t)
        if runner.nonfinite_loss == 'stop' or guard is None:  # a wrapper built elsewhere cannot skip
            raise FloatingPointError(
                f'non-finite loss at iteration {runner.iter + 1}: {terms}. Training stopped; the '
                f'checkpoints in {runner.work_dir} are intact (lower the learning rate, or set '
                f"nonfinite_loss='skip' to skip such updates)")
        runner.skipped_updates += 1
        runner.logger.warning(f'iteration {runner.iter + 1}: non-finite loss ({terms}); update '
                              f'skipped ({runner.skipped_updates} so far)')
        log_vars.update({k: torch.zeros_like(v) for k, v in log_vars.items()
                         if torch.is_tensor(v) and not torch.isfinite(v).all()})


@RUNNERS.register_module()
class ResilientRunner(Runner):
    """mmengine's Runner + atomic checkpoints, safe auto-resume, saving on SIGTERM / Ctrl-C and
    a non-finite loss guard. Config key ``nonfinite_loss``: ``'stop'`` (default) or ``'skip'``."""

    nonfinite_loss = 'stop'
    strict_load = False

    @classmethod
    def from_cfg(cls, cfg) -> 'ResilientRunner':
        runner = super().from_cfg(cfg)
        runner.nonfinite_loss = cfg.get('nonfinite_loss', 'stop')
        if runner.nonfinite_loss not in ('stop', 'skip'):
            raise ValueError(f"config key nonfinite_loss must be 'stop' or 'skip', got {runner.nonfinite_loss!r}")
        return runner

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        super().register_hooks(default_hooks, custom_hooks)
        from gatedvision.engine.checkpoint import AuthorsCheckpointHook
        self.register_hook(AuthorsCheckpointHook())  # the authors' dense checkpoints load as they are

    def build_visualizer(self, visualizer=None):
        # mmdet's and mmseg's configs name theirs 'visualizer', and mmengine hands back the first
        # instance of a name: a second runner in the same process would log into the first one's
        # folder (gone, if that run's folder was removed). A name of each run's own.
        if isinstance(visualizer, dict):
            visualizer = dict(visualizer, name=f"{visualizer.get('name', 'visualizer')}@{self._log_dir}")
        return super().build_visualizer(visualizer)

    @staticmethod
    def build_dataloader(dataloader, seed: Optional[int] = None, diff_rank_seed: bool = False):
        if isinstance(dataloader, dict) and 'worker_init_fn' not in dataloader and dataloader.get('num_workers'):
            dataloader = dict(dataloader)
            dataloader['worker_init_fn'] = dict(  # what mmengine passes its own, plus the process group
                type=_shielded_worker_init, num_workers=dataloader['num_workers'], rank=get_rank(), seed=seed,
                disable_subprocess_warning=dataloader.pop('disable_subprocess_warning', False))
        return Runner.build_dataloader(dataloader, seed, diff_rank_seed)

    def setup_env(self, env_cfg: dict) -> None:
        if self.distributed and not is_distributed() and self.launcher == 'pytorch':
            timeout = timedelta(seconds=(env_cfg.get('dist_cfg') or {}).get('timeout', 1800))
            if not torch.cuda.is_available():  # mmengine would ask for a GPU and NCCL
                torch.distributed.init_process_group(backend='gloo', timeout=timeout)
            elif int(os.environ['LOCAL_RANK']) >= torch.cuda.device_count():
                raise RuntimeError(
                    f"{os.environ.get('LOCAL_WORLD_SIZE', '?')} processes were started on this machine but it "
                    f'has {torch.cuda.device_count()} GPUs: start at most {torch.cuda.device_count()} '
                    f'(tools/dist_train.sh CONFIG {torch.cuda.device_count()}), one per GPU')
        super().setup_env(env_cfg)

    def wrap_model(self, model_wrapper_cfg, model):
        if not self.distributed or torch.cuda.is_available() or is_model_wrapper(model):
            return super().wrap_model(model_wrapper_cfg, model)
        # DDP on the CPU: mmengine gives DDP device_ids=[LOCAL_RANK], which it refuses for a CPU
        # module; and SyncBN needs GPUs, so it becomes BatchNorm with per-process statistics
        if any('SyncBatchNorm' in type(m).__name__ for m in model.modules()):
            self.logger.warning('DDP on the CPU: SyncBN layers run as BatchNorm (per-process batch statistics)')
        model = revert_sync_batchnorm(model.cpu())
        cfg = dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                   find_unused_parameters=self.cfg.get('find_unused_parameters', False))
        cfg.update(model_wrapper_cfg or {})
        return MODEL_WRAPPERS.build(cfg, default_args=dict(module=model))

    def save_checkpoint(self, out_dir: str, filename: str, *args, meta: Optional[dict] = None, **kwargs):
        # called by every rank; rank 0 writes. Each rank's random states go into the checkpoint
        # (RandomStateHook restores each rank's own on --resume)
        if is_distributed():
            from gatedvision.engine.hooks import RandomStateHook
            # BatchNorm running statistics differ per rank (no SyncBN on the CPU; broadcast_buffers
            # is off): the checkpoint, and the validation after it, get their mean over the ranks
            all_reduce_params(self.model.buffers(), op='mean')
            meta = dict(meta or {}, rng_states=all_gather_object(RandomStateHook.capture()))
        if not is_main_process():
            return
        with _atomic_file(osp.join(out_dir, filename)) as tmp:
            super().save_checkpoint(out_dir, osp.basename(tmp), *args, meta=meta, **kwargs)

    def load_checkpoint(self, filename: str, map_location='cpu', strict: bool = False,
                        revise_keys=[(r'^module.', '')]):
        if '://' not in filename:
            check_checkpoint(filename)
        checkpoint = super().load_checkpoint(filename, map_location, strict or self.strict_load, revise_keys)
        # a backbone whose pretrained weights this checkpoint replaced must find all of its own in it
        weights = checkpoint.get('state_dict', checkpoint)
        keys = {re.sub(r'^module\.', '', k) for k in weights}
        for name, backbone in self._backbones():
            if backbone.weights_provided_by:
                lacking = [k for k in backbone.state_dict() if f'{name}.{k}' not in keys]
                if lacking:
                    raise ValueError(
                        f"checkpoint '{filename}' has no weights for {len(lacking)} tensor(s) of the backbone "
                        f"{name} ({backbone.model_name}), e.g. {name}.{lacking[0]}, and its pretrained weights "
                        f"were not loaded because this checkpoint was to replace them: give load_from a "
                        f"checkpoint of the whole model, or leave load_from unset to start from the "
                        f"pretrained backbone")
        return checkpoint

    def test(self) -> dict:
        self.strict_load = True  # evaluating a partly loaded model would report wrong numbers
        if self.cfg.get('precheck', True):
            from gatedvision.engine.precheck import check_data_paths
            check_data_paths(self.cfg, ('test_dataloader',))
        self._maybe_compile('test_step')  # mmengine's train() compiles; its test() does not
        return super().test()

    def _maybe_compile(self, target: str) -> None:
        """The config's ``compile`` key compiles the model's backbones, once, for training,
        validation and testing (:func:`gatedvision.engine.bridge.compile_backbones`). mmengine's own
        compiles ``train_step`` whole, the optimizer step included: on the toy denoiser its second
        iteration compiled again (179 s after the first's 210 s; aot_eager, 2 CPU cores)."""
        from gatedvision.engine.bridge import compile_backbones
        names = compile_backbones(self.model, self.cfg.get('compile'))
        if names:
            self.logger.info(f"torch.compile({self.cfg.compile}): {', '.join(names)}; the first "
                             f"iterations of each input size compile and are slow")

    def _resolve_resume(self) -> None:
        """Which checkpoint ``--resume`` continues from (see :func:`find_resumable_checkpoint`):
        decided once, before the weights are initialised (``load_or_resume`` then finds it made)."""
        if getattr(self, '_resume_resolved', False):
            return
        self._resume_resolved = True
        problem = self._resume and self._load_from and '://' not in self._load_from \
            and checkpoint_problem(self._load_from)
        if problem and not self._has_loaded:
            found = find_resumable_checkpoint(self.work_dir)
            if found is None:
                raise ValueError(f"--resume: checkpoint '{self._load_from}' {problem}, and {self.work_dir} "
                                 f"holds no complete checkpoint to resume from")
            self.logger.warning(f"--resume: checkpoint '{self._load_from}' {problem}; resuming from the "
                                f"newest complete checkpoint in {self.work_dir} instead: {found}")
            self._load_from = found
        if self._resume and self._load_from is None and not self._has_loaded:
            found = find_resumable_checkpoint(self.work_dir)
            if found is None:
                self.logger.warning(f'--resume: no complete checkpoint in {self.work_dir}; starting afresh')
                self._resume = False
            else:
                self._load_from = found
                self.logger.info(f'Resuming from {found}')

    def _backbones(self):
        from gatedvision.engine.bridge import TimmBackbone
        model = self.model.module if is_model_wrapper(self.model) else self.model
        return [(name, m) for name, m in model.named_modules() if isinstance(m, TimmBackbone)]

    def _init_model_weights(self) -> None:
        # the checkpoint that --resume or load_from loads next has every weight: the backbones'
        # pretrained weights are not fetched for it (no download, no network needed)
        self._resolve_resume()
        if self._load_from and not self._has_loaded:
            for _, backbone in self._backbones():
                backbone.weights_provided_by = f"{'--resume' if self._resume else 'load_from'} {self._load_from}"
        super()._init_model_weights()

    def load_or_resume(self) -> None:
        self._resolve_resume()
        super().load_or_resume()

    def build_optim_wrapper(self, optim_wrapper):
        # the configured wrapper class, with the non-finite loss guard (_NonFiniteGuard) mixed in
        if isinstance(optim_wrapper, dict) and isinstance(optim_wrapper.get('optimizer'), dict):
            kind = optim_wrapper.get('type', 'OptimWrapper')
            cls = OPTIM_WRAPPERS.get(kind) if isinstance(kind, str) else kind
            if isinstance(cls, type) and issubclass(cls, OptimWrapper) and not issubclass(cls, _NonFiniteGuard):
                optim_wrapper = dict(optim_wrapper, type=_guarded(cls))
        return super().build_optim_wrapper(optim_wrapper)

    def train(self):
        self.skipped_updates = 0
        if self.cfg.get('precheck', True):  # data mistakes fail now, named (engine.precheck)
            from gatedvision.engine.precheck import StartupCheckHook, check_data_paths
            check_data_paths(self.cfg)
            if not any(isinstance(h, StartupCheckHook) for h in self.hooks):
                self.register_hook(StartupCheckHook())
        hook, batch = _InterruptHook(), _BatchFiles()
        self.register_hook(hook)
        self.register_hook(batch)
        self.register_hook(_NonFiniteHook())
        if self.distributed and not any(isinstance(h, SyncBuffersHook) for h in self.hooks):
            self.register_hook(SyncBuffersHook())  # every rank validates with the same BN statistics
        previous = {}
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            previous = {s: signal.signal(s, hook.handle) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            return super().train()
        except Exception as e:
            named = batch.named(e)
            if named is None:
                raise
            raise named from e
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
