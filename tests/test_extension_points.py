"""gatedvision extends timm, mmengine and torch through their extension points: no module assigns
to another library's attributes, and the objects a training run uses are the libraries' own."""
import ast
import pathlib

import pytest
import timm
import torch

from gatedvision.engine import AutocastOptimWrapper
from gatedvision.engine.optim import NonFiniteGuard
from test_reliability import _Regressor, _runner, _weights

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _assignments_to_other_libraries(source: str):
    """``lib.attr = ...``, ``lib.attr[k] = ...``, ``setattr(lib, ...)`` where ``lib`` is a name
    imported from outside gatedvision."""
    tree = ast.parse(source)
    imported = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            imported |= {(a.asname or a.name).split('.')[0] for a in n.names if not a.name.startswith('gatedvision')}
        elif isinstance(n, ast.ImportFrom) and not n.level and not (n.module or '').startswith('gatedvision'):
            imported |= {a.asname or a.name for a in n.names}

    def root(e):
        while isinstance(e, (ast.Attribute, ast.Subscript)):
            e = e.value
        return e.id if isinstance(e, ast.Name) else None

    for n in ast.walk(tree):
        targets = n.targets if isinstance(n, ast.Assign) else [n.target] if isinstance(n, (ast.AugAssign, ast.AnnAssign)) else []
        for t in targets:
            if isinstance(t, (ast.Attribute, ast.Subscript)) and root(t) in imported:
                yield n.lineno, ast.unparse(t)
        if isinstance(n, ast.Call) and getattr(n.func, 'id', None) in ('setattr', 'delattr') and n.args \
                and root(n.args[0]) in imported:
            yield n.lineno, ast.unparse(n)


def test_the_scan_finds_a_patch():
    found = list(_assignments_to_other_libraries(
        'from timm.models import _builder\nimport mmengine.runner as r\nfrom x import y\n'
        '_builder.load_pretrained = f\nr.CheckpointLoader._schemes["a"] = g\nsetattr(y, "z", 1)\n'
        'local = 1\nlocal.attr = 2\n'))
    assert [line for line, _ in found] == [4, 5, 6]


def test_no_module_assigns_to_another_librarys_attributes():
    files = [*(ROOT / 'gatedvision').rglob('*.py'), *(ROOT / 'tools').glob('*.py')]
    patches = [f'{f.relative_to(ROOT)}:{line}: {what}' for f in files
               for line, what in _assignments_to_other_libraries(f.read_text())]
    assert not patches, patches


def test_the_libraries_functions_are_their_own_after_loading_and_training(tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader
    from timm.models import _builder

    from gatedvision.tasks import TimmBackbone
    path = tmp_path / 'resnet18.pth'
    torch.save(timm.create_model('resnet18').state_dict(), path)
    TimmBackbone('resnet18', checkpoint=str(path)).init_weights()
    assert _builder.load_pretrained.__module__ == 'timm.models._builder'
    assert all(f.__module__.startswith('mmengine.') for f in CheckpointLoader._schemes.values())
    runner = _runner(tmp_path / 'run', max_iters=2)
    runner.train()
    model = runner.model
    assert not {k for k in vars(model) if callable(getattr(type(model), k, None))}, 'a method patched on the model'
    assert not {k for k in vars(runner.optim_wrapper) if callable(getattr(type(runner.optim_wrapper), k, None))}


@pytest.mark.parametrize('wrapper', [dict(), dict(type='gatedvision.AutocastOptimWrapper')])
def test_the_guard_is_mixed_into_the_configured_wrapper(tmp_path, wrapper):
    runner = _runner(tmp_path, _Regressor(nan_at=2), max_iters=3, hooks=dict(nonfinite_loss=dict(policy='skip')),
                     optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05), **wrapper))
    runner.train()
    assert isinstance(runner.optim_wrapper, NonFiniteGuard)
    assert isinstance(runner.optim_wrapper, AutocastOptimWrapper) == bool(wrapper)
    assert runner.skipped_updates == 1
    one, two = _weights(tmp_path / 'iter_1.pth'), _weights(tmp_path / 'iter_2.pth')
    assert all(torch.equal(one[k], two[k]) for k in one)


def test_declared_dependencies_are_what_the_code_imports():
    """Every third-party package gatedvision and its tools import is declared in pyproject.toml
    (base, the OpenMMLab, CUDA or deploy extra), and every declared one is imported."""
    import importlib.metadata
    import re
    import sys
    import tomllib
    project = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']
    extras = project['optional-dependencies']
    declared = {re.split(r'[<>=\[ ;]', d)[0].lower() for d in
                [*project['dependencies'], *extras['mm'], *extras['cuda'], *extras['deploy']]}
    imported = set()
    for f in [*(ROOT / 'gatedvision').rglob('*.py'), *(ROOT / 'tools').glob('*.py')]:
        for n in ast.walk(ast.parse(f.read_text())):
            if isinstance(n, ast.Import):
                imported |= {a.name.split('.')[0] for a in n.names}
            elif isinstance(n, ast.ImportFrom) and not n.level and n.module:
                imported.add(n.module.split('.')[0])
    imported -= {*sys.stdlib_module_names, 'gatedvision'}
    known = {'fla': ['fla-core']}  # not installed here (a CUDA kernel)
    dists = importlib.metadata.packages_distributions()
    undeclared = {m for m in imported if not {d.lower() for d in known.get(m) or dists.get(m) or [m]} & declared}
    assert not undeclared, f'imported, not declared in pyproject.toml: {sorted(undeclared)}'
    providers = {d.lower() for m in imported for d in known.get(m) or dists.get(m) or [m]}
    # imported by mmseg / by torch.onnx's dynamo exporter: needed at run time by a library, not by
    # gatedvision's code
    not_imported = declared - providers - {'ftfy', 'regex', 'onnx', 'onnxscript'}
    assert not not_imported, f'declared in pyproject.toml, never imported: {sorted(not_imported)}'


@pytest.mark.parametrize('module, allowed', [
    ('gatedvision.tasks', set()), ('gatedvision.engine', set()),
    ('gatedvision.tasks.detection', {'mmdet'}), ('gatedvision.tasks.restoration', set()),
    ('gatedvision.tasks.medseg', {'monai', 'nibabel'}),
    ('gatedvision.tasks.segmentation', {'mmseg', 'mmdet'}),  # mmseg imports mmdet itself
])
def test_a_task_imports_only_its_own_library(module, allowed):
    import subprocess
    import sys
    libraries = ('mmdet', 'mmseg', 'monai', 'nibabel')
    code = f'import sys, {module}; print(",".join(m for m in {libraries!r} if m in sys.modules))'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert set(filter(None, out.stdout.strip().split(','))) <= allowed


def test_lazy_task_names_resolve():
    import gatedvision.tasks as tasks
    assert tasks.make_toy_seg.__module__ == 'gatedvision.tasks.segmentation.toy'
    assert tasks.ToyCocoDataset.__module__ == 'gatedvision.tasks.detection.dataset'
    with pytest.raises(AttributeError, match='no attribute'):
        tasks.NotATask
