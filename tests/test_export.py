"""tools/export.py: ONNX through the dynamo exporter, checked in onnxruntime against PyTorch."""
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import export  # noqa: E402

pytest.importorskip('onnxruntime', reason='the deploy extra (onnx, onnxruntime, onnxscript)')


def test_a_segmentor_round_trip(tmp_path, capsys):
    """The toy UPerNet (halonet26t) from a checkpoint of it: onnxruntime agrees with PyTorch; a
    tolerance nothing meets fails the check; the tool's input errors."""
    from mmengine.registry import DefaultScope, MODELS
    from gatedvision.engine.config import load_config
    config = str(ROOT / 'configs/seg/upernet_halonet26t_1xb4-120i_toyseg-128x128.py')
    cfg = load_config(config)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    ckpt = tmp_path / 'upernet.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    out = tmp_path / 'upernet.onnx'
    code = export.main([config, str(ckpt), '--out', str(out), '--input-size', '128', '128', '--check',
                        '--rtol', '0', '--atol', '1e-4'])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f'{out}: per-pixel logits, input 1x3x128x128' in printed
    diff = float(re.search(r'max abs difference ([\d.e+-]+)', printed).group(1))
    assert 0 < diff < 1e-4, printed  # 3.1e-6 measured
    # the same comparison against a tolerance below that difference: exit status 1
    assert export.check(export._Segmentor(model.eval()), out, torch.zeros(1, 3, 128, 128), [(128, 128)],
                        atol=diff / 10, rtol=0) is False
    assert 'TOO LARGE' in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r'a config needs its checkpoint'):
        export.main([config])
    with pytest.raises(SystemExit, match=r"checkpoint '.*none\.pth' does not exist"):
        export.main([config, str(tmp_path / 'none.pth')])
    with pytest.raises(SystemExit, match=r'--deploy: hornet_tiny_7x7 has no reparameterize\(\)'):
        export.main(['hornet_tiny_7x7', '--deploy'])


# one model of each family, shallow (tests/test_compile.py): OverLoCK in its deploy form
FAMILIES = ['hornet_tiny_gf', 'biformer_tiny', 'convit_tiny_dense', 'overlock_xt_reparam', 'halonet26t', 'vig_tiny']


@pytest.mark.parametrize('name', FAMILIES)
def test_every_family_exports_and_onnxruntime_agrees(name):
    from test_compile import shallow_model
    model, x = shallow_model(name)
    program = torch.onnx.export(model, (x[:1],), dynamo=True, verbose=False)
    import onnxruntime
    session = onnxruntime.InferenceSession(program.model_proto.SerializeToString(),
                                           providers=['CPUExecutionProvider'])
    got = session.run(None, {session.get_inputs()[0].name: x[:1].numpy()})[0]
    with torch.no_grad():  # after the export: the model still runs eagerly (nothing traced stays cached)
        want = model(x[:1]).numpy()
    assert got.shape == want.shape
    assert abs(got - want).max() < 1e-5 * max(1.0, abs(want).max())  # 3e-8 to 8e-7 measured
