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
  (``default_hooks.nonfinite_loss.policy='stop'``, the default), or skips that update (``'skip'``),
  counting the skips; under DDP a non-finite loss on any rank stops (or skips on) every rank.

The hooks behind these are registered as mmengine registers its own defaults: by name, beside
``runtime_info``, ``checkpoint`` and the rest (:data:`DEFAULT_HOOKS`). A config's ``default_hooks``
entry of the same name changes their options (a dict without ``type`` updates ours), replaces them
(with ``type``) or removes them (``None``).
"""
import os
import os.path as osp
import re
import signal
import threading
from datetime import timedelta
from typing import Optional

import torch
from mmengine.dataset import worker_init_fn as seeded_worker_init
from mmengine.dist import all_gather_object, all_reduce_params, get_rank, is_distributed, is_main_process
from mmengine.model import is_model_wrapper, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

from gatedvision.engine.checkpoint import _atomic_file, check_checkpoint, checkpoint_problem, find_resumable_checkpoint
from gatedvision.engine.hooks import BatchFilesHook, InterruptHook, NonFiniteLossHook, RandomStateHook
from gatedvision.engine.optim import NonFiniteGuard, guarded
from gatedvision.registry import OPTIM_WRAPPERS, RUNNERS

# The runner's own hooks, registered beside mmengine's default hooks by name (gatedvision.engine.hooks)
DEFAULT_HOOKS = dict(
    random_state=dict(type='gatedvision.RandomStateHook'),  # exact --resume: the random states in checkpoints
    interrupt=dict(type='gatedvision.InterruptHook'),  # SIGTERM / Ctrl-C: a resumable checkpoint, then stop
    batch_files=dict(type='gatedvision.BatchFilesHook'),  # a failing training step names its batch's files
    nonfinite_loss=dict(type='gatedvision.NonFiniteLossHook', policy='stop'),  # or 'skip' the update
    loss_average=dict(type='gatedvision.LossAverageHook'),  # DDP: logged loss terms averaged over the ranks
    sync_buffers=dict(type='SyncBuffersHook'),  # DDP: every rank validates with the same BN statistics
    # before the first iteration: one batch through the pipeline, model and evaluator (config key precheck)
    startup_check=dict(type='gatedvision.StartupCheckHook'),
    authors_checkpoint=dict(type='gatedvision.AuthorsCheckpointHook'),  # the authors' dense checkpoints load
)


def _shielded_worker_init(worker_id: int, num_workers: int, rank: int, seed: Optional[int],
                          disable_subprocess_warning: bool = False) -> None:
    """mmengine's worker seeding, in a worker moved to a process group of its own: torchrun and
    Ctrl-C signal the main process's whole group, and a worker killed by that signal would end the
    main process ("DataLoader worker is killed") before it saves its checkpoint. The loader still
    stops its workers itself, and they exit when they see the main process gone."""
    os.setpgid(0, 0)
    if seed is not None:
        seeded_worker_init(worker_id, num_workers, rank, seed, disable_subprocess_warning)


@RUNNERS.register_module()
class ResilientRunner(Runner):
    """mmengine's Runner + atomic checkpoints, safe auto-resume, saving on SIGTERM / Ctrl-C and
    a non-finite loss guard (the module's docstring; its hooks: :data:`DEFAULT_HOOKS`)."""

    strict_load = False

    @property
    def skipped_updates(self) -> int:
        """Updates skipped for a non-finite loss in this training (``nonfinite_loss`` policy 'skip')."""
        return next((h.skipped for h in self.hooks if isinstance(h, NonFiniteLossHook)), 0)

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        given = dict(default_hooks or {})
        hooks = {}
        for name, cfg in DEFAULT_HOOKS.items():
            mine = given.pop(name, cfg)
            if mine is None or (name == 'startup_check' and not self.cfg.get('precheck', True)):
                continue
            hooks[name] = dict(cfg, **mine) if isinstance(mine, dict) and 'type' not in mine else mine
        # a RandomStateHook among the custom hooks (configs written before it was a default hook) is
        # the default one: not registered twice
        custom = [h for h in custom_hooks or [] if not _is(h, RandomStateHook)]
        if len(custom) < len(custom_hooks or []) and 'random_state' in hooks:
            hooks['random_state'] = next(h for h in custom_hooks if _is(h, RandomStateHook))
        super().register_hooks({**given, **hooks}, custom)

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
        # the configured wrapper class, with the non-finite loss guard (NonFiniteGuard) mixed in
        if isinstance(optim_wrapper, dict) and isinstance(optim_wrapper.get('optimizer'), dict):
            kind = optim_wrapper.get('type', 'OptimWrapper')
            cls = OPTIM_WRAPPERS.get(kind) if isinstance(kind, str) else kind
            if isinstance(cls, type) and issubclass(cls, OptimWrapper) and not issubclass(cls, NonFiniteGuard):
                optim_wrapper = dict(optim_wrapper, type=guarded(cls))
        return super().build_optim_wrapper(optim_wrapper)

    def train(self):
        if self.cfg.get('precheck', True):  # missing data folders fail now, named (engine.precheck)
            from gatedvision.engine.precheck import check_data_paths
            check_data_paths(self.cfg)
        interrupt = next((h for h in self.hooks if isinstance(h, InterruptHook)), None)
        batch = next((h for h in self.hooks if isinstance(h, BatchFilesHook)), None)
        previous = {}
        # signals reach the main thread only
        if interrupt is not None and threading.current_thread() is threading.main_thread():
            previous = {s: signal.signal(s, interrupt.handle) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            return super().train()
        except Exception as e:
            named = batch.named(e) if batch is not None else None
            if named is None:
                raise
            raise named from e
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def _is(hook, cls: type) -> bool:
    """Whether a hook (or its config) is of ``cls``."""
    if isinstance(hook, dict):
        kind = hook.get('type')
        return kind is cls or (isinstance(kind, str) and kind.split('.')[-1] == cls.__name__)
    return isinstance(hook, cls)
