"""tools/download.py: sources, caching and hash verification (offline, via file:// URLs)."""
import hashlib
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tools'))
import download  # noqa: E402

from gatedvision.backbones._helpers import download_weights  # noqa: E402


def test_list_shows_sources(capsys):
    download.main(['--list', 'halonet26t'])
    out = capsys.readouterr().out
    assert 'halonet26t.a1h_in1k' in out and 'hf-hub:timm/halonet26t.a1h_in1k' in out


def test_unknown_pattern_is_an_error():
    with pytest.raises(SystemExit, match="'nosuchnet_\\*' matches no model"):
        download.main(['--list', 'nosuchnet_*'])


def _weights(tmp_path: Path, name: str, corrupt: bool = False) -> str:
    src = tmp_path / 'tmp.pth'
    torch.save({'w': torch.arange(10.)}, src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:8]
    if corrupt:
        digest = '00000000' if digest != '00000000' else '11111111'
    dst = tmp_path / f'{name}-{digest}.pth'
    src.rename(dst)
    return dst.as_uri()


def test_url_download_is_cached_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    url = _weights(tmp_path, 'good')
    path = download_weights('url', url, check_hash=True, progress=False)
    assert Path(path).parent == tmp_path / 'torch' / 'hub' / 'checkpoints'
    assert torch.equal(torch.load(path)['w'], torch.arange(10.))
    bad = _weights(tmp_path, 'bad', corrupt=True)
    with pytest.raises(RuntimeError, match='invalid hash value'):
        download_weights('url', bad, check_hash=True, progress=False)
    assert not list((tmp_path / 'torch' / 'hub' / 'checkpoints').glob('bad-*'))


def test_dense_releases_download_and_say_how_to_test_them(tmp_path, monkeypatch, capsys):
    download.main(['--dense', '--list', 'upernet_overlock_*'])
    out = capsys.readouterr().out
    assert out.count('upernet_overlock_') == 6 and 'mIoU 50.3' in out  # name and URL for tiny/small/base
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    src = tmp_path / 'release.pth'
    torch.save({'state_dict': {}}, src)
    release = dict(download.DENSE_RELEASES['upernet_overlock_tiny_ade20k'], url=src.as_uri())
    monkeypatch.setitem(download.DENSE_RELEASES, 'upernet_overlock_tiny_ade20k', release)
    download.main(['--dense', 'upernet_overlock_tiny_ade20k'])
    cached = tmp_path / 'torch' / 'hub' / 'checkpoints' / 'upernet_overlock_tiny_ade20k.pth'
    assert cached.is_file()
    assert f"python tools/test.py {release['config']} {cached}" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="matches none of the authors' dense checkpoints"):
        download.main(['--dense', 'nosuch*'])
