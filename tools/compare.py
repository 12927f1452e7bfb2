"""The leaderboard: train and evaluate every backbone family on every task under one recipe per task.

    python tools/compare.py [--families hornet biformer ...] [--tasks det seg restore medseg]
                            [--preset toy|full] [--work-dir D] [--resume] [--docs]
                            [--cfg-options key=value ...] [--dry-run] [--gpus N]

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

``--preset toy`` uses the built-in toy data of the four tasks (CPU-sized); ``--preset full`` the
full configs on the real datasets (under ``data/``, as each config's ``data_root`` says), one
``tools/dist_train.sh`` command per cell with ``--gpus N``, printed by ``--dry-run``: the family's
own config (its paper's recipe) where it has one, else a config written into the cell's folder on
the task's shared full recipe.
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
    'det': Task('det', 'configs/det/mask-rcnn_halonet26t_fpn_1xb4-4e_toycoco-sparse.py',
                'configs/det/mask-rcnn_{}_fpn_1x_coco.py', 'configs/det/mask-rcnn_halonet26t_fpn_1x_coco.py',
                'coco/bbox_mAP'),
    'seg': Task('seg', 'configs/seg/upernet_halonet26t_1xb4-200i_toyseg-256x256.py',
                'configs/seg/upernet_{}_8xb2-160k_ade20k-512x512.py',
                'configs/seg/upernet_halonet26t_8xb2-160k_ade20k-512x512.py', 'mIoU'),
    'restore': Task('restore', 'configs/restore/nafdec_hornet-t-7x7_1xb8-300i_toyrestore-sigma25.py',
                    'configs/restore/nafdec_{}_8xb8-300k_denoise-sigma25-256x256.py',
                    'configs/restore/nafdec_hornet-t-7x7_8xb8-300k_denoise-sigma25-256x256.py', 'PSNR'),
    'medseg': Task('medseg', 'configs/medseg/agunet_hornet-t-7x7-slim_1xb8-400i_toymedseg.py',
                   'configs/medseg/agunet_{}_1xb8-20k_brats-2d.py',
                   'configs/medseg/agunet_hornet-t-7x7_1xb8-20k_brats-2d.py', 'mDice'),
}
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
    return p.parse_args(argv)


def backbone_tag(family: str) -> str:
    return FAMILIES.get(family, family)


def family_model(tag: str) -> dict:
    """The backbone (and neck, head input channels) a family's full segmentation config gives."""
    from gatedvision.tasks.config import load_config
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


def cell_overrides(tag: str, task: str, base: str, toy: bool = True) -> dict:
    """The cell's model: the ``base`` config's model with the family's backbone and the input
    channels its neck and heads need. Toy cells train from scratch without drop path (a short
    from-scratch run); full cells start from the pretrained weights, as the papers do."""
    from gatedvision.tasks.config import load_config
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
    return dict(model=model)


def write_cell_config(cell_dir: Path, tag: str, task: str, base: str, toy: bool = True) -> Path:
    """The cell's config file: ``base`` (the task's shared recipe) and the backbone's overrides."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    path = cell_dir / 'config.py'
    body = (f'# {tag} on the {task} recipe {base} (written by tools/compare.py)\n'
            f"_base_ = [{str(ROOT / base)!r}]\n")
    for k, v in cell_overrides(tag, task, base, toy).items():
        body += f'{k} = {v!r}\n'
    path.write_text(body)
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


def run_cell(tag: str, task: str, args, cell_dir: Path, forward: _Forward) -> dict:
    result_file = cell_dir / 'result.json'
    if args.resume and result_file.is_file():
        return json.loads(result_file.read_text())
    config = write_cell_config(cell_dir, tag, task, TASKS[task].toy)
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
    seconds = time.time() - start
    metrics, loss = read_metrics(cell_dir)
    metric = TASKS[task].metric
    value = next((v for k, v in metrics.items() if k == metric or k.endswith('/' + metric)), None)
    result = dict(backbone=tag, task=task, metric=metric, value=value, seconds=round(seconds, 1),
                  final_loss=loss, metrics=metrics, status='ok')
    if code != 0 or value is None:
        why = error_message((cell_dir / 'log.txt').read_text()) if code else \
            f'no {metric} in the validation results'
        result.update(status='failed', error=why)
    result_file.write_text(json.dumps(result, indent=1))
    return result


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
        rows += run([name], [res], BenchSpec(batch_size=8, repeats=3, warmup=1), out_dir / name)
    by_model = {r['model']: r for r in rows}
    return {tag: {k: by_model.get(name, {}).get(k) for k in ('resolution', 'params_m', 'gmacs', 'infer_bn_img_s')}
            for tag, name in names.items()}


def write_outputs(results: list, tags, args, costs: dict, wall: float) -> Path:
    out = args.work_dir
    (out / 'plots').mkdir(parents=True, exist_ok=True)
    cols = [TASKS[t] for t in args.tasks]
    header = ['backbone'] + [f'{t.name} {t.metric}' for t in cols] + ['params (M)', 'GMACs', 'img/s', 'at']
    cell = {(r['backbone'], r['task']): r for r in results}

    def show(r):
        if r is None:
            return '–'
        if r['status'] != 'ok':
            return f"failed: {r['error']}"
        return f"{r['value']:.3f}" if abs(r['value']) < 1 else f"{r['value']:.2f}"

    table = []
    for tag in tags:
        c = costs.get(tag, {})
        table.append([tag] + [show(cell.get((tag, t.name))) for t in cols]
                     + [('' if c.get(k) is None else f'{c[k]:.{d}f}')
                        for k, d in (('params_m', 1), ('gmacs', 2), ('infer_bn_img_s', 1), ('resolution', 0))])
    with open(out / 'leaderboard.csv', 'w', newline='') as f:
        csv.writer(f).writerows([header] + table)
    machine = f'{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}'
    try:
        import torch
        machine += f', torch {torch.__version__}' + (f', {torch.cuda.get_device_name()}'
                                                      if torch.cuda.is_available() else ', CPU')
    except ImportError:
        pass
    recipes = '\n'.join(f'- **{t.name}**: `{t.toy if args.preset == "toy" else t.full}`' for t in cols)
    md = [f'# Leaderboard ({args.preset} preset)', '',
          f'Measured on {machine}; the whole run took {wall / 60:.1f} min. Every cell trains the '
          f'task\'s recipe below from scratch with the row\'s backbone '
          f'(`python tools/compare.py --preset {args.preset}`); cell times and final losses are in '
          f'`leaderboard.json`.', '', recipes, '',
          '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    md += ['| ' + ' | '.join(row) + ' |' for row in table]
    (out / 'leaderboard.md').write_text('\n'.join(md) + '\n')
    (out / 'leaderboard.json').write_text(json.dumps(
        dict(preset=args.preset, machine=machine, wall_seconds=round(wall, 1), tasks=args.tasks,
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
        if not args.dry_run:
            raise SystemExit('--preset full runs on a GPU cluster: run the commands of --dry-run '
                             '(one per cell), then tools/test.py on each checkpoint')
        print('\n'.join(commands))
        return 0
    if args.dry_run:
        for tag in tags:
            for task in args.tasks:
                print(f'python tools/train.py {args.work_dir}/cells/{tag}_{task}/config.py '
                      f'--work-dir {args.work_dir}/cells/{tag}_{task}')
        return 0
    from tqdm import tqdm
    start = time.time()
    cells = [(tag, task) for tag in tags for task in args.tasks]
    results, forward = [], _Forward()
    bar = tqdm(cells, desc='leaderboard', unit='cell', file=sys.stderr, dynamic_ncols=True)
    for tag, task in bar:
        bar.set_postfix_str(f'{tag} {task}')
        results.append(run_cell(tag, task, args, args.work_dir / 'cells' / f'{tag}_{task}', forward))
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
