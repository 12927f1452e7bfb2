"""The leaderboard: train and evaluate every backbone family on every task under one recipe per task.

    python tools/compare.py [--families hornet biformer ...] [--tasks det seg restore medseg]
                            [--preset toy|full] [--work-dir D] [--resume] [--docs]
                            [--from-scratch] [--cfg-options key=value ...] [--dry-run] [--gpus N]

Every (backbone, task) cell trains the task's shared recipe (same head, schedule, input size,
augmentation and seed for every row); only the settings a backbone's paper fixes differ (they come
from the family's own full config, e.g. BiFormer's ``n_win``, a simple pyramid for plain ViTs).
Each cell runs ``tools/train.py`` in its own process under ``WORK_DIR/cells/<backbone>_<task>/``
(config, log, checkpoints, ``result.json``), so a failing cell is recorded with its error and the
others go on, and ``--resume`` skips finished cells and resumes the interrupted one from its last
checkpoint. The exit status is the number of failed cells.

Outputs in ``WORK_DIR`` (and with ``--docs`` in ``docs/leaderboard.md``): ``leaderboard.md`` and
``.csv`` (rows: backbones; columns: the task metrics, then parameters, GMACs and throughput from
``gatedvision.benchmark``), ``leaderboard.json`` with every number, and ``plots/`` (a bar chart
per task, an accuracy-vs-cost scatter per task).

``--preset toy`` uses the built-in toy data of the four tasks (CPU-sized). There each row's seg cell
trains from scratch and comes first; the row's other cells start from its backbone (a shared toy
pre-training, as the full preset starts from ImageNet weights; ``--from-scratch``: every cell from
scratch). docs/configs.md says why, with the measurements behind each toy recipe. ``--preset full`` the
full configs on the real datasets (under ``data/``, as each config's ``data_root`` says), one
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
    """One column: its shared toy recipe, the full config per backbone tag (the family's own, with
    its paper's recipe), the shared full recipe for backbones without one, the metric."""

    def __init__(self, name, toy, full, full_shared, metric):
        self.name, self.toy, self.full, self.full_shared, self.metric = name, toy, full, full_shared, metric


TASKS = {
    'det': Task('det', 'configs/det/mask-rcnn_halonet26t_fpn_1xb2-2e_toycoco-sparse.py',
                'configs/det/mask-rcnn_{}_fpn_1x_coco.py', 'configs/det/mask-rcnn_halonet26t_fpn_1x_coco.py',
                'coco/bbox_mAP'),
    'seg': Task('seg', 'configs/seg/upernet_halonet26t_1xb4-120i_toyseg-128x128.py',
                'configs/seg/upernet_{}_8xb2-160k_ade20k-512x512.py',
                'configs/seg/upernet_halonet26t_8xb2-160k_ade20k-512x512.py', 'mIoU'),
    'restore': Task('restore', 'configs/restore/nafdec_hornet-t-7x7_1xb8-80i_toyrestore-sigma25.py',
                    'configs/restore/nafdec_{}_8xb8-300k_denoise-sigma25-256x256.py',
                    'configs/restore/nafdec_hornet-t-7x7_8xb8-300k_denoise-sigma25-256x256.py', 'PSNR'),
    'medseg': Task('medseg', 'configs/medseg/agunet_hornet-t-7x7_1xb4-200i_toymedseg.py',
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
    p.add_argument('--preset', default='toy', choices=['toy', 'full'])
    p.add_argument('--work-dir', type=Path, default=Path('work_dirs/leaderboard'))
    p.add_argument('--resume', action='store_true', help='skip finished cells, resume the interrupted one')
    p.add_argument('--docs', action='store_true', help='also write docs/leaderboard.md')
    p.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                   help='passed to every cell (e.g. train_cfg.max_iters=2 for a smoke run)')
    p.add_argument('--gpus', type=int, default=1, help='--preset full: GPUs per cell (dist_train.sh)')
    p.add_argument('--dry-run', action='store_true', help='print each cell\'s command and stop')
    p.add_argument('--no-cost', action='store_true', help='skip the params / GMACs / throughput columns')
    p.add_argument('--from-scratch', action='store_true',
                   help=f'--preset toy: train every cell from scratch instead of from the row\'s '
                        f'{PRETRAIN_TASK} cell\'s backbone')
    return p.parse_args(argv)


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
    from gatedvision.engine.runner import find_resumable_checkpoint
    ckpt = find_resumable_checkpoint(str(source_dir))
    if ckpt is None:
        raise FileNotFoundError(f'no complete checkpoint in {source_dir}')
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    with torch.device('meta'):
        target = MODELS.build(dict({k: v for k, v in backbone.items() if k != '_delete_'}, pretrained=False))
    for k, want in target.state_dict().items():
        have = state.get(k)
        if have is not None and have.shape != want.shape and have.ndim == 4 and have.shape[1] == 3:
            state[k] = adapt_input_conv(want.shape[1], have)
    path = cell_dir / 'backbone_init.pth'
    cell_dir.mkdir(parents=True, exist_ok=True)
    torch.save(state, path.with_suffix('.tmp'))
    path.with_suffix('.tmp').replace(path)
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
    """SIGTERM / Ctrl-C while a cell trains: pass it to the training (which saves a checkpoint
    and stops), then stop without recording the cell; ``--resume`` continues from that checkpoint.
    The handler only signals: waiting here would contend with the main thread's ``wait``."""

    def __init__(self):
        self.child, self.signum = None, None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.handle)

    def handle(self, signum, frame):
        running = self.child is not None and self.child.poll() is None
        if not running:
            raise SystemExit(128 + signum)
        if self.signum is not None:  # a second signal: stop the training at once
            self.child.kill()
        else:
            self.child.send_signal(signal.SIGTERM)
        self.signum = signum

    def stop_if_signalled(self) -> None:
        if self.signum is not None:
            raise SystemExit(128 + self.signum)


def run_cell(tag: str, task: str, args, cell_dir: Path, forward: _Forward, pretrain: Optional[dict] = None) -> dict:
    """Train (or, with ``--resume``, finish) one cell; ``pretrain``: the result of the cell whose
    backbone this one starts from."""
    result_file = cell_dir / 'result.json'
    if args.resume and result_file.is_file():
        return json.loads(result_file.read_text())
    init = None
    if pretrain is not None:
        if pretrain['status'] != 'ok':
            return untrained(tag, task, 'failed', f"no backbone to start from: its {pretrain['task']} cell failed")
        try:
            backbone = cell_overrides(tag, task, TASKS[task].toy)['model']['backbone']
            init = pretrained_backbone(args.work_dir / 'cells' / f"{tag}_{pretrain['task']}", cell_dir, backbone)
        except Exception as e:  # recorded; the other cells go on
            return untrained(tag, task, 'failed', f'{type(e).__name__}: {e}'[:400])
    config = write_cell_config(cell_dir, tag, task, TASKS[task].toy, init=init)
    cmd = [sys.executable, str(ROOT / 'tools' / 'train.py'), str(config), '--work-dir', str(cell_dir)]
    if args.resume and any(cell_dir.glob('*.pth')):
        cmd.append('--resume')  # the interrupted cell: from its newest complete checkpoint
    options = task_options(args.cfg_options, task)
    if options:
        cmd += ['--cfg-options', *options]
    start = time.time()
    with open(cell_dir / 'log.txt', 'a') as log:
        log.write(f'$ {shlex.join(cmd)}\n')
        log.flush()
        forward.child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        code = forward.child.wait()
        forward.child = None
    forward.stop_if_signalled()
    error = error_message((cell_dir / 'log.txt').read_text()) if code else None
    result = cell_result(tag, task, cell_dir, time.time() - start, error)
    result_file.write_text(json.dumps(result, indent=1))
    return result


def untrained(tag: str, task: str, status: str, error: Optional[str] = None) -> dict:
    """The record of a cell without results: ``'failed'`` before training (``error``), ``'not run'``."""
    return dict(backbone=tag, task=task, metric=TASKS[task].metric, value=None, seconds=0.0, final_loss=None,
                metrics={}, status=status, **({'error': error} if error else {}))


def cell_result(tag: str, task: str, cell_dir: Path, seconds: float, error: Optional[str] = None) -> dict:
    """The cell's record from its logged validation metrics (``error``: why its training failed)."""
    metrics, loss = read_metrics(cell_dir)
    metric = TASKS[task].metric
    value = next((v for k, v in metrics.items() if k == metric or k.endswith('/' + metric)), None)
    result = dict(backbone=tag, task=task, metric=metric, value=value, seconds=round(seconds, 1),
                  final_loss=loss, metrics=metrics, status='ok')
    if error or value is None:
        result.update(status='failed', error=error or f'no {metric} in the validation results')
    return result


def collect_full(args, tags) -> list:
    """--preset full without --dry-run: the cells' results as far as their runs have got (each
    command of --dry-run trains and validates into its cell folder)."""
    results = []
    for tag in tags:
        for task in args.tasks:
            cell_dir = args.work_dir / 'cells' / f'{tag}_{task}'
            logged = any(cell_dir.glob('*/vis_data/scalars.json'))
            results.append(cell_result(tag, task, cell_dir, 0.0) if logged else untrained(tag, task, 'not run'))
    return results


def full_commands(args, tags) -> list:
    """One command per cell: the family's own full config (its paper's recipe) where it has one,
    else a config written into the cell folder on the task's shared full recipe."""
    rows = []
    for tag in tags:
        for task in args.tasks:
            work = args.work_dir / 'cells' / f'{tag}_{task}'
            config = TASKS[task].full.format(tag)
            if not (ROOT / config).is_file():
                config = write_cell_config(work, tag, task, TASKS[task].full_shared, toy=False)
            options = task_options(args.cfg_options, task)
            rows.append(shlex.join(['bash', 'tools/dist_train.sh', str(config), str(args.gpus),
                                    '--work-dir', str(work)] + (['--cfg-options', *options] if options else [])))
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


def write_outputs(results: list, tags, args, costs: dict, wall: float) -> Path:
    out = args.work_dir
    (out / 'plots').mkdir(parents=True, exist_ok=True)
    cols = [TASKS[t] for t in args.tasks]
    header = ['backbone'] + [f'{t.name} {t.metric}' for t in cols] + ['params (M)', 'GMACs', 'img/s', 'at']
    cell = {(r['backbone'], r['task']): r for r in results}

    def number(v):
        return f'{v:.3f}' if abs(v) < 1 else f'{v:.2f}'

    def show(r, gain=False):
        if r is None:
            return '–'
        paper = PUBLISHED.get((r['backbone'], r['task'])) if args.preset == 'full' else None
        if r['status'] == 'not run':
            text = 'not run'
        elif r['status'] != 'ok':
            text = f"failed: {r['error']}"
        else:
            text = number(r['value'])
            if gain and 'PSNR_input' in r['metrics']:  # restoration: the gain over the noisy input
                text += f" (+{r['value'] - r['metrics']['PSNR_input']:.1f} dB)"
        return text + (f' (paper {number(paper)})' if paper is not None else '')

    table, table_md = [], []
    for tag in tags:
        c = costs.get(tag, {})
        cost = [('' if c.get(k) is None else f'{c[k]:.{d}f}')
                for k, d in (('params_m', 1), ('gmacs', 2), ('infer_bn_img_s', 1), ('resolution', 0))]
        table.append([tag] + [show(cell.get((tag, t.name))) for t in cols] + cost)
        table_md.append([tag] + [show(cell.get((tag, t.name)), gain=True) for t in cols] + cost)
    with open(out / 'leaderboard.csv', 'w', newline='') as f:
        csv.writer(f).writerows([header] + table)
    times = [[tag] + [('–' if (tag, t.name) not in cell else f"{cell[tag, t.name]['seconds']:.0f}") for t in cols]
             + [f"{sum(cell[tag, t.name]['seconds'] for t in cols if (tag, t.name) in cell):.0f}"] for tag in tags]
    machine = f'{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}'
    try:
        import torch
        machine += f', torch {torch.__version__}' + (f', {torch.cuda.get_device_name()}'
                                                      if torch.cuda.is_available() else ', CPU')
    except ImportError:
        pass
    recipes = '\n'.join(f'- **{t.name}**: `{t.toy if args.preset == "toy" else t.full}`' for t in cols)
    if args.preset == 'full':
        start = 'from the authors\' ImageNet weights'
    elif args.from_scratch:
        start = 'from scratch'
    else:
        start = (f'the {PRETRAIN_TASK} cells from scratch, the others from the row\'s {PRETRAIN_TASK}-trained '
                 f'backbone (a shared toy pre-training: docs/configs.md)')
    command = ' '.join(['python tools/compare.py --preset', args.preset] + ['--from-scratch'] * args.from_scratch)
    cells_min = sum(r['seconds'] for r in results) / 60  # resumed runs: the cells of every invocation
    when = (f'Measured on {machine}: the cells took {cells_min:.1f} min in all (start-up, training and '
            f'validation; this invocation {wall / 60:.1f} min with the cost columns).' if args.preset == 'toy' else
            f'Collected from the cells\' training logs; cost columns measured on {machine}.')
    md = [f'# Leaderboard ({args.preset} preset)', '',
          f'{when} Every cell trains the '
          f'task\'s recipe below with the row\'s backbone, {start} (`{command}`); cell times and '
          f'final losses are in `leaderboard.json`.', '', recipes, '',
          '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    md += ['| ' + ' | '.join(row) + ' |' for row in table_md]
    if args.preset == 'toy':
        md += ['', 'Seconds per cell (start-up, training, validation):', '',
               '| backbone | ' + ' | '.join(t.name for t in cols) + ' | row |', '|' + '---|' * (len(cols) + 2)]
        md += ['| ' + ' | '.join(row) + ' |' for row in times]
    (out / 'leaderboard.md').write_text('\n'.join(md) + '\n')
    (out / 'leaderboard.json').write_text(json.dumps(
        dict(preset=args.preset, machine=machine, wall_seconds=round(wall, 1),
             cell_seconds=round(cells_min * 60, 1), tasks=args.tasks,
             backbones=tags, cells=results, costs=costs), indent=1))
    _plots(results, tags, cols, costs, out / 'plots')
    if args.docs:
        (ROOT / 'docs' / 'leaderboard.md').write_text((out / 'leaderboard.md').read_text())
    return out / 'leaderboard.md'


def _plots(results, tags, cols, costs, out: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    for t in cols:
        ok = [r for r in results if r['task'] == t.name and r['status'] == 'ok']
        fig, ax = plt.subplots(figsize=(max(4, len(tags)), 3))
        ax.bar([r['backbone'] for r in ok], [r['value'] for r in ok])
        ax.set_ylabel(t.metric)
        ax.set_title(f'{t.name}')
        ax.tick_params(axis='x', rotation=30)
        fig.tight_layout()
        fig.savefig(out / f'{t.name}_bar.png', dpi=100)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(4, 3))
        for r in ok:
            g = costs.get(r['backbone'], {}).get('gmacs')
            if g is not None:
                ax.scatter(g, r['value'])
                ax.annotate(r['backbone'], (g, r['value']), fontsize=7)
        ax.set_xlabel('GMACs (at the model\'s input size)')
        ax.set_ylabel(t.metric)
        ax.set_title(f'{t.name}: accuracy vs cost')
        fig.tight_layout()
        fig.savefig(out / f'{t.name}_vs_gmacs.png', dpi=100)
        plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    tags = [backbone_tag(f) for f in args.families]
    if args.preset == 'full':
        commands = full_commands(args, tags)
        if args.dry_run:
            print('\n'.join(commands))
            return 0
        # the commands run on a cluster; this gathers what they have logged so far
        start = time.time()
        results = collect_full(args, tags)
        costs = {} if args.no_cost else cost_columns(tags, args.work_dir / 'cost')
        print(write_outputs(results, tags, args, costs, time.time() - start).read_text())
        return min(sum(r['status'] != 'ok' for r in results), 125)
    if args.dry_run:
        for tag in tags:
            for task in args.tasks:
                print(f'python tools/train.py {args.work_dir}/cells/{tag}_{task}/config.py '
                      f'--work-dir {args.work_dir}/cells/{tag}_{task}')
        return 0
    from tqdm import tqdm
    start = time.time()
    pretrained = not args.from_scratch and any(t != PRETRAIN_TASK for t in args.tasks)
    order = [PRETRAIN_TASK] * (pretrained or PRETRAIN_TASK in args.tasks) + [t for t in args.tasks if t != PRETRAIN_TASK]
    cells = [(tag, task) for tag in tags for task in order]  # a row's pre-training cell first
    results, forward = [], _Forward()
    bar = tqdm(cells, desc='leaderboard', unit='cell', file=sys.stderr, dynamic_ncols=True)
    for tag, task in bar:
        bar.set_postfix_str(f'{tag} {task}')
        source = None
        if pretrained and task != PRETRAIN_TASK:
            source = next(r for r in results if r['backbone'] == tag and r['task'] == PRETRAIN_TASK)
        results.append(run_cell(tag, task, args, args.work_dir / 'cells' / f'{tag}_{task}', forward, source))
        write_outputs(results, tags, args, {}, time.time() - start)
    bar.close()
    costs = {} if args.no_cost else cost_columns(tags, args.work_dir / 'cost')
    path = write_outputs(results, tags, args, costs, time.time() - start)
    failed = [r for r in results if r['status'] != 'ok']
    print(path.read_text())
    for r in failed:
        print(f"FAILED {r['backbone']} {r['task']}: {r['error']}", file=sys.stderr)
    return min(len(failed), 125)


if __name__ == '__main__':
    sys.exit(main())
