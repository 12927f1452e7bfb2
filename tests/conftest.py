import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Generated datasets go to a per-run cache unless the caller chose one, so tests never depend on
# (or pollute) the user's cache. Set before gatedvision.tasks is imported anywhere.
os.environ.setdefault('GATEDVISION_CACHE', tempfile.mkdtemp(prefix='gatedvision-test-cache-'))


@pytest.fixture(scope='session')
def root() -> Path:
    return ROOT


def run_tool(tool: str, *args: str, cwd=None):
    """Run tools/<tool>.py in a subprocess, as a user would; returns the CompletedProcess."""
    import subprocess
    return subprocess.run([sys.executable, str(ROOT / 'tools' / f'{tool}.py'), *map(str, args)],
                          cwd=cwd or ROOT, capture_output=True, text=True, timeout=900)
