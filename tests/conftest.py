import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Generated datasets go to a per-run cache unless the caller chose one, so tests never depend on
# (or pollute) the user's cache. Set before gatedvision.tasks is imported anywhere.
if 'GATEDVISION_CACHE' not in os.environ:
    os.environ['GATEDVISION_CACHE'] = tempfile.mkdtemp(prefix='gatedvision-test-cache-')
    atexit.register(shutil.rmtree, os.environ['GATEDVISION_CACHE'], ignore_errors=True)
# pytest-xdist workers share the cores: one intra-op thread each (tools run in subprocesses inherit
# it), else their OpenMP pools oversubscribe the CPU and every worker slows down several times.
if os.environ.get('PYTEST_XDIST_WORKER'):
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    os.environ.setdefault('MKL_NUM_THREADS', '1')


# Modules that train for minutes run first, so that the pytest-xdist workers finish together.
LONG_FIRST = ('test_detection.py', 'test_dense_families.py', 'test_reliability.py', 'test_segmentation.py',
              'test_compare.py', 'test_distributed.py', 'test_restoration.py', 'test_medseg.py',
              'test_authors_checkpoints.py')


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FIRST)))  # stable: keeps the rest's order


@pytest.fixture(scope='session')
def root() -> Path:
    return ROOT


def run_tool(tool: str, *args: str, cwd=None, env=None):
    """Run tools/<tool>.py in a subprocess, as a user would; returns the CompletedProcess."""
    import subprocess
    return subprocess.run([sys.executable, str(ROOT / 'tools' / f'{tool}.py'), *map(str, args)],
                          cwd=cwd or ROOT, capture_output=True, text=True, timeout=900, env=env)


_NO_NETWORK = """
import socket

def _unreachable(*args, **kwargs):
    raise socket.gaierror(-2, 'Name or service not known')

_connect = socket.socket.connect

def _local_only(self, address):  # Unix sockets (data loader workers) still connect
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _unreachable()
    return _connect(self, address)

socket.getaddrinfo = _unreachable
socket.create_connection = _unreachable
socket.socket.connect = _local_only
"""


@pytest.fixture
def offline(tmp_path_factory) -> dict:
    """The environment of a machine without a network, for ``run_tool(..., env=offline)``: every
    name lookup and connection fails as on a cluster's compute node (``sitecustomize`` on
    PYTHONPATH), the Hugging Face hub is in offline mode as such nodes set it (else it retries for
    23 s before it gives the same answer), and torch hub's and the hub's caches are empty folders
    of their own."""
    where = tmp_path_factory.mktemp('offline')
    (where / 'site').mkdir()
    (where / 'site' / 'sitecustomize.py').write_text(_NO_NETWORK)
    path = os.pathsep.join(p for p in (str(where / 'site'), os.environ.get('PYTHONPATH')) if p)
    return dict(os.environ, PYTHONPATH=path, TORCH_HOME=str(where / 'torch'), HF_HOME=str(where / 'hf'),
                HF_HUB_CACHE=str(where / 'hf' / 'hub'), HF_HUB_OFFLINE='1')


def run_dist(script: str, *args: str, port: int):
    """Run tools/<script>.sh (dist_train, dist_test: torchrun, gloo on the CPU) as a user would; each
    test its own ``port``, so that launches on two pytest-xdist workers do not meet."""
    import subprocess
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(port))
    return subprocess.run(['bash', str(ROOT / 'tools' / f'{script}.sh'), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env=env)
