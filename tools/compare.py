"""The leaderboard: train and evaluate every backbone family on every task under one recipe per task.

    python tools/compare.py [--families hornet biformer ...] [--tasks det seg restore medseg]
                            [--preset toy|small|full] [--seeds N] [--jobs N] [--work-dir D] [--resume] [--docs]
                            [--from-scratch] [--cfg-options key=value ...] [--dry-run] [--gpus N]

Every (backbone, task) cell trains the task's shared recipe (same head, schedule, input size,
augmentation and seed for every row); only the settings a backbone's paper fixes differ (they come
from the family's own full config, e.g. BiFormer's ``n_win``, a simple pyramid for plain ViTs).
Each cell trains ``--seeds N`` times (``randomness.seed`` 0 .. N-1; 3 by default, 1 for the full
preset), each run in its own process of ``tools/train.py`` under
``WORK_DIR/cells/<backbone>_<task>/seed<S>/`` (config, log, checkpoints, ``result.json``), so a
failing run is recorded with its error and the others go on, and ``--resume`` skips finished runs and
resumes the interrupted one from its last checkpoint. ``--jobs N`` trains N runs at once (other seeds
of the row while one trains), each with cores/N intra-op threads. The exit status is the number of
failed runs.

Each cell is reported as the mean and standard deviation over its seeds; per task, the backbones not
significantly different from the best (Welch's t-test against the best, Holm-corrected) are marked,
and the one-way ANOVA over backbones says whether the task can tell them apart at all
(``gatedvision.stats``; docs/leaderboard.md says how to read them).

Outputs in ``WORK_DIR`` (and with ``--docs`` in ``docs/leaderboard.md``): ``leaderboard.md`` and
``.csv`` (rows: backbones; columns: the task metrics, then parameters, GMACs and throughput from
``gatedvision.benchmark``), ``leaderboard.json`` with every number, and ``plots/`` (a bar chart
per task, an accuracy-vs-cost scatter per task).

``--preset toy`` uses the built-in toy data of the four tasks (CPU-sized). There each row's seg cell
trains from scratch and comes first; the row's other cells start from its backbone, seed by seed (a
shared toy pre-training, as the other presets start from ImageNet weights; ``--from-scratch``: every
cell from scratch). ``--preset small`` the real small datasets of ``tools/download.py --dataset``
(Penn-Fudan, CamVid, CBSD432/68, MSD Hippocampus), every backbone from its ImageNet weights on one
shared recipe per task (GPU-sized); like the full preset it prints its commands with ``--dry-run``
and tabulates what they logged without it. docs/configs.md says why, with the measurements behind
each toy recipe and the small preset's estimated time per run. ``--preset full`` the full configs
on the real datasets (under ``data/``, as each config's ``data_root`` says), one
``tools/dist_train.sh`` command per cell with ``--gpus N``, printed by ``--dry-run``: the family's
own config (its paper's recipe) where it has one, else a config written into the cell's folder on
the task's shared full recipe. Without ``--dry-run`` it writes the table of what those runs have
logged so far, each cell beside the authors' published number where there is one.
"""
import argparse
import csv
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]

# The default backbone of each family: the variant its full configs use (the tiny one, or the one
# nearest 25 M parameters), plus a plain timm baseline row.
FAMILIES = {
    'hornet': 'hornet-t-7x7', 'biformer': 'biformer-s', 'overlock': 'overlock-t', 'vig': 'vig-h-t',
    'convit': 'convit-s', 'halonet': 'halonet26t', 'baseline': 'resnet50',
}
# The baseline has no full configs of its own: its backbone, as the full configs would give it.
BASELINES = {'resnet50': dict(type='gatedvision.TimmBackbone', model_name='resnet50')}


class Task:
    """One column: its shared toy recipe, its shared recipe on a real small dataset, the full config
    per backbone tag (the family's own, with its paper's recipe), the shared full recipe for
    backbones without one, the metric (higher is better for every task)."""

    def __init__(self, name, toy, small, full, full_shared, metric):
        self.name, self.toy, self.small, self.full, self.full_shared, self.metric = \
            name, toy, small, full, full_shared, metric


TASKS = {
    'det': Task('det', 'configs/det/mask-rcnn_halonet26t_fpn_1xb2-2e_toycoco-sparse.py',
                'configs/det/mask-rcnn_hornet-t-7x7_fpn_1xb4-12e_pennfudan.py',
                'configs/det/mask-rcnn_{}_fpn_1x_coco.py', 'configs/det/mask-rcnn_halonet26t_fpn_1x_coco.py',
                'coco/bbox_mAP'),
    'seg': Task('seg', 'configs/seg/upernet_halonet26t_1xb4-120i_toyseg-128x128.py',
                'configs/seg/upernet_hornet-t-7x7_1xb8-8k_camvid-352x480.py',
                'configs/seg/upernet_{}_8xb2-160k_ade20k-512x512.py',
                'configs/seg/upernet_halonet26t_8xb2-160k_ade20k-512x512.py', 'mIoU'),
    'restore': Task('restore', 'configs/restore/nafdec_hornet-t-7x7_1xb8-80i_toyrestore-sigma25.py',
                    'configs/restore/nafdec_hornet-t-7x7_1xb8-20k_cbsd432-sigma25.py',
                    'configs/restore/nafdec_{}_8xb8-300k_denoise-sigma25-256x256.py',
                    'configs/restore/nafdec_hornet-t-7x7_8xb8-300k_denoise-sigma25-256x256.py', 'PSNR'),
    'medseg': Task('medseg', 'configs/medseg/agunet_hornet-t-7x7_1xb4-200i_toymedseg.py',
                   'configs/medseg/agunet_hornet-t-7x7_1xb16-4k_hippocampus.py',
                   'configs/medseg/agunet_{}_1xb8-20k_brats-2d.py',
                   'configs/medseg/agunet_hornet-t-7x7_1xb8-20k_brats-2d.py', 'mDice'),
}
# The authors' published numbers for the full preset's cells (docs/configs.md's table), in the units
# the metric is logged in: Mask R-CNN 1x COCO box AP (mmdet logs 0-1), UPerNet 160k ADE20K mIoU.
PUBLISHED = {('biformer-s', 'det'): 0.478, ('overlock-t', 'det'): 0.483,
             ('hornet-t-7x7', 'seg'): 48.1, ('biformer-s', 'seg'): 49.8, ('overlock-t', 'seg'): 50.3}
# The toy preset's shared pre-training: each row's seg cell trains its backbone from scratch on the
# toy shapes, and its other cells start from that backbone, as the full preset's start from the
# authors' ImageNet weights (``--from-scratch``: every cell from scratch). docs/configs.md: why.
PRETRAIN_TASK = 'seg'
# keys of a family's backbone that belong to the paper (kept) rather than to a training recipe
_RECIPE_KEYS = ('pretrained', 'checkpoint', 'drop_path_rate', 'frozen_stages', 'init_cfg')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train and compare backbone families on every task')
    p.add_argument('--families', nargs='+', default=list(FAMILIES),
                   help=f'families ({", ".join(FAMILIES)}) or backbone config tags (e.g. hornet-t-gf)')
    p.add_argument('--tasks', nargs='+', default=list(TASKS), choices=list(TASKS))
    p.add_argument('--preset', default='toy', choices=['toy', 'small', 'full'])
    p.add_argument('--seeds', type=_positive, default=None,
                   help='runs per cell, randomness.seed 0..N-1 (default: 3; 1 for --preset full)')
    p.add_argument('--work-dir', type=Path, default=Path('work_dirs/leaderboard'))
    p.add_argument('--resume', action='store_true', help='skip finished cells, resume the interrupted one')
    p.add_argument('--docs', action='store_true', help='also write docs/leaderboard.md')
    p.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                   help='passed to every cell (e.g. train_cfg.max_iters=2 for a smoke run)')
    p.add_argument('--gpus', type=int, default=1, help='--preset small/full: GPUs per run (dist_train.sh)')
    p.add_argument('--dry-run', action='store_true', help='print each cell\'s command and stop')
    p.add_argument('--jobs', type=_positive, default=1,
                   help='--preset toy: runs that train at once, each with cores/N threads (default 1)')
    p.add_argument('--no-cost', action='store_true', help='skip the params / GMACs / throughput columns')
    p.add_argument('--from-scratch', action='store_true',
                   help=f'--preset toy: train every cell from scratch instead of from the row\'s '
                        f'{PRETRAIN_TASK} cell\'s backbone')
    args = p.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.preset == 'full' else 3
    return args


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f'expected a whole number >= 1, got {text!r}')
    return int(text)


def backbone_tag(family: str) -> str:
    return FAMILIES.get(family, family)


def family_model(tag: str) -> dict:
    """The backbone (and neck, head input channels) a family's full segmentation config gives."""
    from gatedvision.engine.config import load_config
    if tag in BASELINES:
        return dict(backbone=dict(BASELINES[tag]))
    path = ROOT / TASKS['seg'].full.format(tag)
    if not path.is_file():
        raise SystemExit(f"no full config for backbone '{tag}' ({path.relative_to(ROOT)}); known families: "
                         f"{', '.join(FAMILIES)}")
    model = load_config(str(path)).model
    out = dict(backbone=model.backbone.to_dict())
    if model.get('neck') is not None:
        out['neck'] = model.neck.to_dict()
    return out


def _channels(backbone: dict, neck) -> list:
    """The pyramid's channels: the bridge's outputs, through the simple pyramid if there is one."""
    import torch
    from mmengine.registry import MODELS
    import gatedvision.tasks  # noqa: F401  (registers the bridge and the neck)
    with torch.device('meta'):
        bb = MODELS.build(dict({k: v for k, v in backbone.items() if k != '_delete_'}, pretrained=False))
        if neck is None:
            return list(bb.out_channels)
        return list(MODELS.build(dict(neck, in_channels=bb.out_channels[-1])).out_channels)


def cell_overrides(tag: str, task: str, base: str, toy: bool = True, init: Optional[Path] = None) -> dict:
    """The cell's model: the ``base`` config's model with the family's backbone and the input
    channels its neck and heads need. Toy cells train without drop path (a short run) from scratch,
    or from the backbone weights in ``init``; full cells start from the pretrained weights, as the
    papers do."""
    from gatedvision.engine.config import load_config
    fam = family_model(tag)
    backbone = {k: v for k, v in fam['backbone'].items() if not toy or k not in _RECIPE_KEYS}
    backbone.update(_delete_=True)
    backbone.update(dict(pretrained=False, drop_path_rate=0.0) if toy else dict(pretrained=True))
    model = dict(backbone=backbone)
    neck = fam.get('neck')
    base_model = load_config(str(ROOT / base)).model
    if task == 'medseg':
        backbone['in_channels'] = base_model.backbone.get('in_channels', 1)  # modalities x slices
    chans = _channels(backbone, neck)
    if init is not None:
        backbone['init_cfg'] = dict(type='Pretrained', checkpoint=str(init))
    if task == 'det':
        fpn = dict(base_model.neck[-1] if isinstance(base_model.neck, list) else base_model.neck)
        model['neck'] = [neck, dict(fpn, in_channels=chans)] if neck else dict(fpn, in_channels=chans)
    elif task == 'seg':
        if neck:
            model['neck'] = neck
        model['decode_head'] = dict(in_channels=chans)
        model['auxiliary_head'] = dict(in_channels=chans[base_model.auxiliary_head.get('in_index', 2)])
    elif neck:
        model['neck'] = neck
    # the newest checkpoint resumes the cell and feeds the cells that start from its backbone; the
    # older ones would fill the disk (the toy table wrote 21 GB of them)
    return dict(model=model, default_hooks=dict(checkpoint=dict(max_keep_ckpts=1)))


def write_cell_config(cell_dir: Path, tag: str, task: str, base: str, toy: bool = True,
                      init: Optional[Path] = None) -> Path:
    """The cell's config file: ``base`` (the task's shared recipe) and the backbone's overrides."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    path = cell_dir / 'config.py'
    body = (f'# {tag} on the {task} recipe {base} (written by tools/compare.py)\n'
            f"_base_ = [{str(ROOT / base)!r}]\n")
    for k, v in cell_overrides(tag, task, base, toy, init).items():
        body += f'{k} = {v!r}\n'
    path.write_text(body)
    return path


def pretrained_backbone(source_dir: Path, cell_dir: Path, backbone: dict) -> Path:
    """The backbone weights of the cell in ``source_dir`` (its newest complete checkpoint) as a
    state dict for ``backbone`` in ``cell_dir/backbone_init.pth``; a stem convolution that takes
    other input channels (medseg: 1) is adapted as timm adapts pretrained ones (summed over RGB)."""
    import torch
    from mmengine.registry import MODELS
    from timm.models import adapt_input_conv
    from gatedvision.engine.checkpoint import load_checkpoint
    from gatedvision.engine.checkpoint import atomic_torch_save, find_resumable_checkpoint
    ckpt = find_resumable_checkpoint(str(source_dir))
    if ckpt is None:
        raise FileNotFoundError(f'no complete checkpoint in {source_dir}')
    state = load_checkpoint(ckpt)['state_dict']  # the package's safe unpickler
    state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    with torch.device('meta'):
        target = MODELS.build(dict({k: v for k, v in backbone.items() if k != '_delete_'}, pretrained=False))
    for k, want in target.state_dict().items():
        have = state.get(k)
        if have is not None and have.shape != want.shape and have.ndim == 4 and have.shape[1] == 3:
            state[k] = adapt_input_conv(want.shape[1], have)
    path = cell_dir / 'backbone_init.pth'
    cell_dir.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(state, str(path))
    return path


_NOT_METRICS = ('lr', 'base_lr', 'time', 'data_time', 'iter', 'epoch', 'step', 'memory')


def read_metrics(cell_dir: Path) -> tuple:
    """The last validation metrics and the last training loss the cell's runs logged."""
    metrics, loss = {}, None
    for scalars in sorted(cell_dir.glob('*/vis_data/scalars.json')):
        for line in scalars.read_text().splitlines():
            row = json.loads(line)
            if 'loss' in row:
                loss = row['loss']
            elif any(k not in _NOT_METRICS for k in row):
                metrics = {k: v for k, v in row.items() if k not in _NOT_METRICS}
    return metrics, loss


def error_message(log: str) -> str:
    lines = [ln.strip() for ln in log.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r'^[\w.]*(Error|Exception|Exit|Interrupt)\b', ln)]
    return (errors or lines or ['no output'])[-1][:400]


def task_options(options: list, task: str) -> list:
    """``--cfg-options`` for this task's cells: plain ``key=value`` for all, ``task:key=value`` for
    that task's only."""
    out = []
    for opt in options:
        scope, sep, rest = opt.partition(':')
        if not sep or '=' in scope:
            out.append(opt)
        elif scope == task:
            out.append(rest)
        elif scope not in TASKS:
            raise SystemExit(f"--cfg-options {opt!r}: '{scope}' is not a task ({', '.join(TASKS)})")
    return out


class _Forward:
    """SIGTERM / Ctrl-C while runs train: pass it to each training (which saves a checkpoint and
    stops), then stop without recording those runs; ``--resume`` continues from their checkpoints.
    The handler only signals: waiting here would contend with the main thread's polling."""

    def __init__(self):
        self.children, self.signum = set(), None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.handle)

    def handle(self, signum, frame):
        running = [c for c in self.children if c.poll() is None]
        if not running:
            raise SystemExit(128 + signum)
        for child in running:
            if self.signum is not None:  # a second signal: stop the trainings at once
                child.kill()
            else:
                child.send_signal(signal.SIGTERM)
        self.signum = signum


def run_dir(work_dir: Path, tag: str, task: str, seed: int) -> Path:
    return work_dir / 'cells' / f'{tag}_{task}' / f'seed{seed}'


class _Run:
    """One training process: its run's key, folder, start time and ``Popen``."""

    def __init__(self, key: tuple, seed_dir: Path, proc: subprocess.Popen):
        self.key, self.seed_dir, self.proc, self.start = key, seed_dir, proc, time.time()


def start_run(tag: str, task: str, seed: int, args, pretrain: Optional[dict] = None):
    """Start one seed of one cell (with ``--resume``, finish it): a ``_Run``, or the run's record
    when there is nothing to train (finished before, or its backbone's source run failed).
    ``pretrain``: the record of the run whose backbone this one starts from. With ``--jobs N`` a
    run gets cores/N intra-op threads unless OMP_NUM_THREADS is set."""
    seed_dir = run_dir(args.work_dir, tag, task, seed)
    result_file = seed_dir / 'result.json'
    if args.resume and result_file.is_file():
        return json.loads(result_file.read_text())
    init = None
    seed_dir.mkdir(parents=True, exist_ok=True)
    if pretrain is not None:
        if pretrain['status'] != 'ok':
            return untrained(tag, task, seed, 'failed', f"no backbone to start from: its {pretrain['task']} run failed")
        try:
            backbone = cell_overrides(tag, task, TASKS[task].toy)['model']['backbone']
            init = pretrained_backbone(run_dir(args.work_dir, tag, pretrain['task'], seed), seed_dir, backbone)
        except Exception as e:  # recorded; the other cells go on
            return untrained(tag, task, seed, 'failed', f'{type(e).__name__}: {e}'[:400])
    config = write_cell_config(seed_dir, tag, task, TASKS[task].toy, init=init)
    cmd = [sys.executable, str(ROOT / 'tools' / 'train.py'), str(config), '--work-dir', str(seed_dir)]
    if args.resume and any(seed_dir.glob('*.pth')):
        cmd.append('--resume')  # the interrupted run: from its newest complete checkpoint
    cmd += ['--cfg-options', f'randomness.seed={seed}', *task_options(args.cfg_options, task)]
    env = dict(os.environ)
    if args.jobs > 1 and 'OMP_NUM_THREADS' not in env:
        env['OMP_NUM_THREADS'] = str(max(1, (os.cpu_count() or 1) // args.jobs))
    with open(seed_dir / 'log.txt', 'a') as log:
        threads = f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']} " if 'OMP_NUM_THREADS' in env else ''
        log.write(f'$ {threads}{shlex.join(cmd)}\n')
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    return _Run((tag, task, seed), seed_dir, proc)


def finish_run(run: _Run) -> dict:
    """The record of a training process that has exited, written to its ``result.json``."""
    tag, task, seed = run.key
    code = run.proc.returncode
    error = error_message((run.seed_dir / 'log.txt').read_text()) if code else None
    result = dict(cell_result(tag, task, seed, run.seed_dir, time.time() - run.start, error),
                  started=round(run.start, 1))  # Unix time: which runs shared the machine
    (run.seed_dir / 'result.json').write_text(json.dumps(result, indent=1))
    return result


def train_runs(runs: list, args, pretrained: bool, on_result) -> dict:
    """Train ``runs`` ((tag, seed, task), in order), ``args.jobs`` at a time: the first run whose
    backbone source has finished starts when a slot frees, so a row's seeds train side by side.
    ``on_result(results)`` after each finished run; returns ``{(tag, task, seed): record}``."""
    results, pending, running, forward = {}, list(runs), [], _Forward()

    def source(tag, seed, task):
        if not pretrained or task == PRETRAIN_TASK:
            return None, True
        r = results.get((tag, PRETRAIN_TASK, seed))
        return r, r is not None

    while pending or running:
        while forward.signum is None and len(running) < args.jobs:
            ready = next((r for r in pending if source(*r)[1]), None)
            if ready is None:
                break
            pending.remove(ready)
            tag, seed, task = ready
            started = start_run(tag, task, seed, args, source(*ready)[0])
            if isinstance(started, _Run):
                running.append(started)
                forward.children.add(started.proc)
            else:
                results[(tag, task, seed)] = started
                on_result(results)
        if not running:
            break
        time.sleep(0.2)
        for run in [r for r in running if r.proc.poll() is not None]:
            running.remove(run)
            forward.children.discard(run.proc)
            if forward.signum is None:
                results[run.key] = finish_run(run)
                on_result(results)
    if forward.signum is not None:  # the interrupted runs are not recorded: --resume finishes them
        raise SystemExit(128 + forward.signum)
    return results


def untrained(tag: str, task: str, seed: int, status: str, error: Optional[str] = None) -> dict:
    """The record of a run without results: ``'failed'`` before training (``error``), ``'not run'``."""
    return dict(backbone=tag, task=task, seed=seed, metric=TASKS[task].metric, value=None, seconds=0.0,
                final_loss=None, metrics={}, status=status, **({'error': error} if error else {}))


def cell_result(tag: str, task: str, seed: int, seed_dir: Path, seconds: float, error: Optional[str] = None) -> dict:
    """The run's record from its logged validation metrics (``error``: why its training failed)."""
    metrics, loss = read_metrics(seed_dir)
    metric = TASKS[task].metric
    value = next((v for k, v in metrics.items() if k == metric or k.endswith('/' + metric)), None)
    result = dict(backbone=tag, task=task, seed=seed, metric=metric, value=value, seconds=round(seconds, 1),
                  final_loss=loss, metrics=metrics, status='ok')
    if error or value is None:
        result.update(status='failed', error=error or f'no {metric} in the validation results')
    return result


def collect_logged(args, tags) -> list:
    """--preset small/full without --dry-run: the runs' results as far as they have got (each
    command of --dry-run trains and validates into its run folder)."""
    results = []
    for tag in tags:
        for task in args.tasks:
            for seed in range(args.seeds):
                seed_dir = run_dir(args.work_dir, tag, task, seed)
                logged = any(seed_dir.glob('*/vis_data/scalars.json'))
                results.append(cell_result(tag, task, seed, seed_dir, 0.0) if logged
                               else untrained(tag, task, seed, 'not run'))
    return results


def dist_commands(args, tags) -> list:
    """One ``tools/dist_train.sh`` command per run. The full preset: the family's own config (its
    paper's recipe) where it has one, else a config written into the cell folder on the task's
    shared full recipe; the small preset: the task's shared recipe for every backbone."""
    rows = []
    for tag in tags:
        for task in args.tasks:
            t = TASKS[task]
            cell = args.work_dir / 'cells' / f'{tag}_{task}'
            config = t.full.format(tag) if args.preset == 'full' else None
            if config is None or not (ROOT / config).is_file():
                config = write_cell_config(cell, tag, task, t.small if args.preset == 'small' else t.full_shared,
                                           toy=False)
            for seed in range(args.seeds):
                rows.append(shlex.join(['bash', 'tools/dist_train.sh', str(config), str(args.gpus),
                                        '--work-dir', str(cell / f'seed{seed}'), '--cfg-options',
                                        f'randomness.seed={seed}', *task_options(args.cfg_options, task)]))
    return rows


def cost_columns(tags, out_dir: Path) -> dict:
    """Parameters, GMACs and inference throughput (batch 8) of each backbone's timm model at its
    own input size (its pretrained cfg's: 224 for most, 256 for HaloNets)."""
    import timm
    from gatedvision.benchmark import BenchSpec, run
    names = {tag: family_model(tag)['backbone']['model_name'] for tag in tags}
    rows = []
    for name in sorted(set(names.values())):
        res = timm.models.get_pretrained_cfg(name).input_size[-1]
        rows += run([name], [res], BenchSpec(batch_size=8, repeats=3, warmup=1, modes=('infer_bn',)),
                    out_dir / name)
    by_model = {r['model']: r for r in rows}
    return {tag: {k: by_model.get(name, {}).get(k) for k in ('resolution', 'params_m', 'gmacs', 'infer_bn_img_s')}
            for tag, name in names.items()}


def summarize_cells(results: list, tags, tasks) -> tuple:
    """Per cell: mean, std and n over its finished seeds; per task: the rank group of the best and
    the ANOVA of the backbones (``gatedvision.stats``)."""
    from gatedvision.stats import rank_group, separation, summarize
    cells, groups, power = {}, {}, {}
    for task in tasks:
        runs = {}
        for tag in tags:
            mine = [r for r in results if r['backbone'] == tag and r['task'] == task]
            ok = [r for r in mine if r['status'] == 'ok']
            if not mine:
                continue
            cell = dict(backbone=tag, task=task, values=[r['value'] for r in ok], seeds=[r['seed'] for r in ok],
                        failed={r['seed']: r.get('error', r['status']) for r in mine if r['status'] != 'ok'},
                        seconds=sum(r['seconds'] for r in mine) / len(mine))
            if ok:
                s = summarize(cell['values'])
                cell.update(mean=s.mean, std=s.std, n=s.n)
                gains = [r['value'] - r['metrics']['PSNR_input'] for r in ok if 'PSNR_input' in r['metrics']]
                if gains:  # restoration: the gain over the noisy input
                    cell['gain'] = sum(gains) / len(gains)
                runs[tag] = cell['values']
            cells[tag, task] = cell
        group, sep = rank_group(runs), separation(runs)
        if group is not None:
            groups[task] = dict(best=group.best, tied=group.tied, p_values=group.p_values, test=group.test)
        if sep is not None:
            power[task] = dict(f=sep.f, p=sep.p, eta_squared=sep.eta_squared, within_std=sep.within_std)
    return cells, groups, power


def _number(v: float, like: Optional[float] = None) -> str:
    """Three decimals for 0-1 metrics (mAP, Dice), two for the others; ``like``: the number whose
    decimals to use (a standard deviation takes its mean's)."""
    return f'{v:.3f}' if abs(v if like is None else like) < 1 else f'{v:.2f}'


def _show(cell: Optional[dict], seeds: int, group: Optional[dict] = None, paper: Optional[float] = None) -> str:
    """A table cell: mean ± std (n when fewer runs than seeds finished), bold in the best's rank
    group, the restoration gain over the noisy input, the paper's number; or why there is none."""
    if cell is None:
        return '–'
    if 'mean' not in cell:
        errors = [e for _, e in sorted(cell['failed'].items()) if e != 'not run']
        text = f'failed: {errors[0]}' if errors else 'not run'
    else:
        text = _number(cell['mean']) + (f' ± {_number(cell["std"], cell["mean"])}' if cell['n'] > 1 else '')
        if group is not None and cell['backbone'] in group['tied']:
            text = f'**{text}**'
        if cell['n'] < seeds:
            text += f' (n={cell["n"]})'
        if 'gain' in cell:
            text += f' (+{cell["gain"]:.1f} dB)'
    return text + (f' (paper {_number(paper)})' if paper is not None else '')


def _machine() -> str:
    machine = f'{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}'
    try:
        import torch
        machine += f', torch {torch.__version__}' + (f', {torch.cuda.get_device_name()}'
                                                      if torch.cuda.is_available() else ', CPU')
    except ImportError:
        pass
    return machine


def _power_rows(tasks, cells, groups, power) -> list:
    rows = []
    for t in tasks:
        g, p = groups.get(t.name), power.get(t.name)
        ok = [c for (tag, task), c in cells.items() if task == t.name and c.get('n', 0) > 1]
        lo, hi = (min(ok, key=lambda c: c['std']), max(ok, key=lambda c: c['std'])) if ok else (None, None)
        spread = f"{_number(lo['std'], lo['mean'])}–{_number(hi['std'], hi['mean'])}" if ok else '–'
        if g is None or p is None:
            rows.append(f'| {t.name} | – | – | – | – | – | {spread} | '
                        f'needs two backbones with two or more runs each |')
            continue
        verdict = ('tells the backbones apart' if p['p'] < 0.05 else
                   'cannot tell the backbones apart: it only checks that every backbone trains')
        tied = ', '.join(g['tied'])
        rows.append(f"| {t.name} | {g['best']} | {tied} | {p['f']:.2f} | {p['p']:.2g} | {p['eta_squared']:.2f} | "
                    f"{spread} | {verdict} |")
    return rows


def write_outputs(results: list, tags, args, costs: dict, wall: float) -> Path:
    out = args.work_dir
    (out / 'plots').mkdir(parents=True, exist_ok=True)
    cols = [TASKS[t] for t in args.tasks]
    cells, groups, power = summarize_cells(results, tags, args.tasks)
    cost_header = ['params (M)', 'GMACs', 'img/s', 'at']
    header = ['backbone'] + [f'{t.name} {t.metric}' for t in cols] + cost_header
    csv_header = ['backbone'] + [f'{t.name} {t.metric}{s}' for t in cols for s in ('', ' std', ' n')] + cost_header
    table, table_md = [], []
    for tag in tags:
        c = costs.get(tag, {})
        cost = [('' if c.get(k) is None else f'{c[k]:.{d}f}')
                for k, d in (('params_m', 1), ('gmacs', 2), ('infer_bn_img_s', 1), ('resolution', 0))]
        row = [tag]
        for t in cols:  # the CSV: mean, std and n in columns of their own; a cell without runs says why
            cell = cells.get((tag, t.name))
            if cell is not None and 'mean' in cell:
                row += [_number(cell['mean']), f"{cell['std']:.3g}", str(cell['n'])]
            else:
                row += [_show(cell, args.seeds), '', '0']
        table.append(row + cost)
        paper = PUBLISHED if args.preset == 'full' else {}
        table_md.append([tag] + [_show(cells.get((tag, t.name)), args.seeds, groups.get(t.name),
                                       paper.get((tag, t.name))) for t in cols] + cost)
    with open(out / 'leaderboard.csv', 'w', newline='') as f:
        csv.writer(f).writerows([csv_header] + table)
    machine = _machine()
    recipe = {'toy': lambda t: t.toy, 'small': lambda t: t.small, 'full': lambda t: t.full}[args.preset]
    recipes = '\n'.join(f'- **{t.name}**: `{recipe(t)}`' for t in cols)
    if args.preset != 'toy':
        start = 'from the authors\' ImageNet weights'
    elif args.from_scratch:
        start = 'from scratch'
    else:
        start = (f'the {PRETRAIN_TASK} cells from scratch, the others from the same seed\'s {PRETRAIN_TASK}-trained '
                 f'backbone of the row (a shared toy pre-training: docs/configs.md)')
    command = ' '.join(['python tools/compare.py --preset', args.preset, '--seeds', str(args.seeds)]
                       + ['--from-scratch'] * args.from_scratch)
    cells_min = sum(r['seconds'] for r in results) / 60  # resumed runs: the runs of every invocation
    when = (f'Measured on {machine}: the runs took {cells_min:.1f} min in all (start-up, training and '
            f'validation; this invocation {wall / 60:.1f} min with the cost columns).' if args.preset == 'toy' else
            f'Collected from the runs\' training logs; cost columns measured on {machine}.')
    md = [f'# Leaderboard ({args.preset} preset)', '',
          f'{when} Every cell trains the task\'s recipe below with the row\'s backbone, {start}, once per seed '
          f'(`randomness.seed` 0..{args.seeds - 1}; `{command}`); run times and final losses are in '
          f'`leaderboard.json`.', '', recipes, '',
          f'Each cell: mean ± standard deviation over {args.seeds} seed{"s" * (args.seeds > 1)} (n: the runs that '
          f'finished, where fewer). **Bold**: the task\'s best and the backbones not significantly different from '
          f'it (Welch\'s t-test against the best, two-sided, Holm-corrected over the comparisons, alpha 0.05; '
          f'it assumes normally distributed, independent runs, and with few seeds it is weak: bold means *not '
          f'shown to be worse*).', '',
          '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    md += ['| ' + ' | '.join(row) + ' |' for row in table_md]
    md += ['', '## Can each task tell the backbones apart?', '',
           'One-way ANOVA of the runs over backbones: F is the variance between the backbones\' means over the '
           'variance between seeds of one backbone; p its p-value; eta² the share of the runs\' variance that '
           'the backbone explains. A task whose p is above 0.05 cannot rank the backbones with this many '
           'seeds.', '',
           '| task | best | not significantly worse (best first) | F | p | eta² | seed std per cell | verdict |',
           '|---|---|---|---|---|---|---|---|']
    md += _power_rows(cols, cells, groups, power)
    if args.preset == 'toy':
        md += ['', 'Seconds per run (start-up, training, validation; the mean over the seeds):', '',
               '| backbone | ' + ' | '.join(t.name for t in cols) + ' | row |', '|' + '---|' * (len(cols) + 2)]
        for tag in tags:
            secs = [cells[tag, t.name]['seconds'] if (tag, t.name) in cells else None for t in cols]
            md.append('| ' + ' | '.join([tag] + ['–' if v is None else f'{v:.0f}' for v in secs]
                                        + [f'{sum(v for v in secs if v is not None):.0f}']) + ' |')
    (out / 'leaderboard.md').write_text('\n'.join(md) + '\n')
    summary = [dict(c, failed={str(k): v for k, v in c['failed'].items()}) for c in cells.values()]
    (out / 'leaderboard.json').write_text(json.dumps(
        dict(preset=args.preset, seeds=args.seeds, machine=machine, wall_seconds=round(wall, 1),
             run_seconds=round(cells_min * 60, 1), tasks=args.tasks, backbones=tags, runs=results,
             cells=summary, rank_groups=groups, power=power, costs=costs), indent=1))
    _plots(cells, tags, cols, costs, out / 'plots')
    if args.docs:
        (ROOT / 'docs' / 'leaderboard.md').write_text((out / 'leaderboard.md').read_text())
    return out / 'leaderboard.md'


def _plots(cells, tags, cols, costs, out: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    for t in cols:
        ok = [cells[tag, t.name] for tag in tags if 'mean' in cells.get((tag, t.name), {})]
        fig, ax = plt.subplots(figsize=(max(4, len(tags)), 3))
        ax.bar([c['backbone'] for c in ok], [c['mean'] for c in ok], yerr=[c['std'] for c in ok], capsize=3)
        ax.set_ylabel(f'{t.metric} (mean ± std over seeds)')
        ax.set_title(f'{t.name}')
        ax.tick_params(axis='x', rotation=30)
        fig.tight_layout()
        fig.savefig(out / f'{t.name}_bar.png', dpi=100)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(4, 3))
        for c in ok:
            g = costs.get(c['backbone'], {}).get('gmacs')
            if g is not None:
                ax.errorbar(g, c['mean'], yerr=c['std'], fmt='o', capsize=3)
                ax.annotate(c['backbone'], (g, c['mean']), fontsize=7)
        ax.set_xlabel('GMACs (at the model\'s input size)')
        ax.set_ylabel(t.metric)
        ax.set_title(f'{t.name}: accuracy vs cost')
        fig.tight_layout()
        fig.savefig(out / f'{t.name}_vs_gmacs.png', dpi=100)
        plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    tags = [backbone_tag(f) for f in args.families]
    if args.preset != 'toy':
        commands = dist_commands(args, tags)
        if args.dry_run:
            print('\n'.join(commands))
            return 0
        # the commands run on a cluster; this gathers what they have logged so far
        start = time.time()
        results = collect_logged(args, tags)
        costs = {} if args.no_cost else cost_columns(tags, args.work_dir / 'cost')
        print(write_outputs(results, tags, args, costs, time.time() - start).read_text())
        return min(sum(r['status'] != 'ok' for r in results), 125)
    pretrained = not args.from_scratch and any(t != PRETRAIN_TASK for t in args.tasks)
    order = [PRETRAIN_TASK] * (pretrained or PRETRAIN_TASK in args.tasks) + [t for t in args.tasks if t != PRETRAIN_TASK]
    if args.dry_run:  # the configs are written; a run that starts from another's backbone waits for it
        for tag in tags:
            for seed in range(args.seeds):
                for task in order:
                    where = run_dir(args.work_dir, tag, task, seed)
                    if pretrained and task != PRETRAIN_TASK:
                        print(f'# {tag} {task} seed {seed} starts from the backbone that '
                              f'{run_dir(args.work_dir, tag, PRETRAIN_TASK, seed)} trains: tools/compare.py '
                              f'writes its config when that run has finished')
                        continue
                    config = write_cell_config(where, tag, task, TASKS[task].toy)
                    print(shlex.join(['python', 'tools/train.py', str(config), '--work-dir', str(where),
                                      '--cfg-options', f'randomness.seed={seed}',
                                      *task_options(args.cfg_options, task)]))
        return 0
    from tqdm import tqdm
    start = time.time()
    # a row's seeds in order, each seed's pre-training run first
    runs = [(tag, seed, task) for tag in tags for seed in range(args.seeds) for task in order]
    bar = tqdm(total=len(runs), desc='leaderboard', unit='run', file=sys.stderr, dynamic_ncols=True)

    def finished(by_key):
        bar.update(len(by_key) - bar.n)
        write_outputs([by_key[(t, k, s)] for t, s, k in runs if (t, k, s) in by_key], tags, args, {},
                      time.time() - start)

    by_key = train_runs(runs, args, pretrained, finished)
    results = [by_key[(t, k, s)] for t, s, k in runs]
    bar.close()
    costs = {} if args.no_cost else cost_columns(tags, args.work_dir / 'cost')
    path = write_outputs(results, tags, args, costs, time.time() - start)
    failed = [r for r in results if r['status'] != 'ok']
    print(path.read_text())
    for r in failed:
        print(f"FAILED {r['backbone']} {r['task']} seed {r['seed']}: {r['error']}", file=sys.stderr)
    return min(len(failed), 125)


if __name__ == '__main__':
    sys.exit(main())
