"""The authors' released detection / segmentation checkpoints (mmdet 2.x / mmseg 0.x, saved with their
own dense backbone classes) load into our configs: converted on load by ``AuthorsCheckpointHook``
(``load_from``, ``tools/test.py``) or by ``tools/convert_checkpoint.py``."""
import hashlib
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import timm
import torch
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import _load_checkpoint

from conftest import run_tool
from gatedvision.engine.checkpoint import AuthorsCheckpointHook, is_authors_dense_layout, ours_to_authors_dense

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tools'))
import convert_checkpoint  # noqa: E402

# The authors' dense backbones as their code builds them: number of tensors and sha256[:16] of the
# sorted 'name:shape' lines of their state_dict. Built from LMMMEng/OverLoCK 2c8ab3b
# (detection/models/overlock.py, segmentation/models/overlock.py) and raoyongming/HorNet ac9e210
# (object_detection/models/hornet.py, semantic_segmentation/models/hornet.py) with the arguments
# of their released configs (GF: h, w = 14, 8 / 7, 4 for detection, 24, 13 / 12, 7 for segmentation).
AUTHORS_BACKBONES = {
    'overlock_t det': (2736, 'd0c41802983707b0'),
    'overlock_t seg': (2730, 'cf4f654f165f9b7a'),
    'hornet_tiny_7x7': (564, '757eba68706dfabd'),   # the detection and segmentation files build the same
    'hornet_tiny_gf det': (644, 'd074840954ce4d6d'),
    'hornet_tiny_gf seg': (644, 'a041050966b68608'),
}
INNER = 'backbone.model.model.'  # where TimmBackbone holds the timm model

CASES = [  # config, the authors' backbone, the timm model and options of its dense path, input size
    ('configs/det/mask-rcnn_overlock-t_fpn_1x_coco.py', 'overlock_t det', ('overlock_t', dict(dense_ctx_proj=True))),
    ('configs/seg/upernet_overlock-t_8xb2-160k_ade20k-512x512.py', 'overlock_t seg', ('overlock_t', {})),
    ('configs/det/cascade-mask-rcnn_hornet-t-7x7_fpn_3x_coco.py', 'hornet_tiny_7x7', ('hornet_tiny_7x7', {})),
    ('configs/seg/upernet_hornet-t-gf_8xb2-160k_ade20k-512x512.py', 'hornet_tiny_gf seg',
     ('hornet_tiny_gf', dict(img_size=384))),
]
# HorNet-T GF's detection layout (its 14 x 8 / 7 x 4 filters), checked on its config's model only
LAYOUT_ONLY = [('configs/det/cascade-mask-rcnn_hornet-t-gf_fpn_3x_coco.py', 'hornet_tiny_gf det')]


def layout_digest(shapes: dict):
    lines = sorted(f"{k}:{'x'.join(map(str, s))}" for k, s in shapes.items())
    return len(lines), hashlib.sha256('\n'.join(lines).encode()).hexdigest()[:16]


def authors_file(model, path: Path, seed: int = 0) -> dict:
    """A checkpoint as the authors' mmdet 2.x / mmseg 0.x runs saved it, random values: the
    backbone's tensors under ``backbone.<their names>``, the neck's and heads' under mmdet's /
    mmseg's names, mmcv 1.x's meta and optimizer entries beside them."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in model.state_dict().items():
        name = 'backbone.' + k[len(INNER):] if k.startswith(INNER) else k
        state[name] = (torch.randn(v.shape, generator=gen) * 0.1 + (1.0 if k.endswith('running_var') else 0.0)
                       if v.is_floating_point() else v.clone())
    torch.save({'meta': {'mmdet_version': '2.28.2', 'CLASSES': tuple(f'class{i}' for i in range(80)),
                         'epoch': 12, 'iter': 87936},
                'state_dict': state, 'optimizer': {'state': {}, 'param_groups': []}}, path)
    return state


def load_through_hook(model, path, strict=True):
    checkpoint = _load_checkpoint(str(path), map_location='cpu')
    runner = SimpleNamespace(model=model, strict_load=strict, logger=MMLogger.get_current_instance())
    AuthorsCheckpointHook().after_load_checkpoint(runner, checkpoint)
    return checkpoint


@pytest.mark.parametrize('config, authors, dense', CASES, ids=[c[1] for c in CASES])
def test_authors_dense_checkpoint_loads_and_gives_the_dense_backbones_features(root, tmp_path, config, authors,
                                                                                 dense):
    model = convert_checkpoint.build_model(str(root / config)).eval()
    backbone = {k[len(INNER):]: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith(INNER)}
    # the layout written below is the authors' (names and shapes from their code, digest above)
    assert layout_digest(backbone) == AUTHORS_BACKBONES[authors]
    path = tmp_path / 'authors.pth'
    state = authors_file(model, path)
    assert is_authors_dense_layout(state, model)

    checkpoint = load_through_hook(model, path)
    model.load_state_dict(checkpoint['state_dict'], strict=True)  # no missing, no unexpected key
    loaded = model.state_dict()
    for name, value in state.items():  # every tensor of the file, in its place
        ours = INNER + name[len('backbone.'):] if name.startswith('backbone.') else name
        assert torch.equal(loaded[ours], value), name

    # the backbone's features equal what the same weights give through the family's own dense path
    name, kwargs = dense
    bb_file = tmp_path / 'backbone.pth'
    torch.save({k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}, bb_file)
    ref = timm.create_model(name, features_only=True, pretrained=True, pretrained_cfg_overlay=dict(file=str(bb_file)),
                            **kwargs).eval()
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        for a, b in zip(model.backbone(x), ref(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)

    # round trip: our weights written in the authors' layout and read back are the same weights
    back = tmp_path / 'back.pth'
    torch.save({'state_dict': ours_to_authors_dense(model.state_dict(), model)}, back)
    again = convert_checkpoint.build_model(str(root / config)).eval()
    again.load_state_dict(load_through_hook(again, back)['state_dict'], strict=True)
    with torch.no_grad():
        for a, b in zip(again.backbone(x), model.backbone(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_mismatch_is_named(root, tmp_path):
    config, authors, _ = CASES[3]  # HorNet-T GF UPerNet
    model = convert_checkpoint.build_model(str(root / config))
    path = tmp_path / 'authors.pth'
    state = authors_file(model, path)
    del state['backbone.norm3.weight']
    state['backbone.blocks9.0.weight'] = torch.zeros(3)
    torch.save({'state_dict': state}, path)
    with pytest.raises(ValueError, match=r"did not use: backbone\.blocks9\.0\.weight.*lacks.*"
                                         r"backbone\.model\.model\.norm3\.weight"):
        load_through_hook(model, path)
    # outside testing (fine-tuning from it) the same is a warning, and the rest loads
    load_through_hook(model, path, strict=False)


def test_convert_checkpoint_tool(root, tmp_path, capsys):
    config = str(root / CASES[3][0])  # HorNet-T GF UPerNet
    model = convert_checkpoint.build_model(config)
    src = tmp_path / 'authors.pth'
    state = authors_file(model, src)
    dst = tmp_path / 'ours.pth'
    assert convert_checkpoint.main([str(src), str(dst), '--config', config]) == 0
    converted = torch.load(dst, weights_only=True)
    assert converted['meta']['converted_from'] == 'authors.pth'
    assert not is_authors_dense_layout(converted['state_dict'], model)
    model.load_state_dict(converted['state_dict'], strict=True)
    back = tmp_path / 'back.pth'
    assert convert_checkpoint.main([str(dst), str(back), '--config', config, '--to-authors']) == 0
    back_state = torch.load(back, weights_only=True)['state_dict']
    assert back_state.keys() == state.keys() and all(torch.equal(back_state[k], v) for k, v in state.items())
    # a file in our layout is refused (nothing to convert), with the reason
    with pytest.raises(SystemExit, match='not in the authors'):
        convert_checkpoint.main([str(dst), str(tmp_path / 'x.pth'), '--config', config])
    # a tensor missing from the authors' file: named, not written
    del state['backbone.norm0.bias']
    torch.save({'state_dict': state}, src)
    assert convert_checkpoint.main([str(src), str(tmp_path / 'y.pth'), '--config', config]) == 1
    assert 'norm0.bias' in capsys.readouterr().err and not (tmp_path / 'y.pth').exists()


@pytest.mark.parametrize('config, authors', LAYOUT_ONLY)
def test_config_has_the_authors_backbone_layout(root, config, authors):
    model = convert_checkpoint.build_model(str(root / config))
    backbone = {k[len(INNER):]: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith(INNER)}
    assert layout_digest(backbone) == AUTHORS_BACKBONES[authors]


def test_every_release_names_a_config_that_names_it(root):
    import download
    assert len(download.DENSE_RELEASES) == 25  # OverLoCK 6 Mask R-CNN + 3 UPerNet, HorNet 8 + 8
    for name, release in download.DENSE_RELEASES.items():
        header = (root / release['config']).read_text().split('\n_base_ = ')[0]
        assert release['url'] in header, (name, release['config'])
        number = release['published'].split()[-1]
        assert number in header, (name, number)


def test_tools_test_py_takes_the_authors_file_as_it_is(root, tmp_path):
    """tools/test.py CONFIG <the authors' file>: converted on load, scored as the same weights in
    our layout (written by tools/convert_checkpoint.py) are; toy data, a HorNet-T UPerNet."""
    config = 'configs/seg/upernet_halonet26t_1xb4-200i_toyseg-256x256.py'
    options = {'model.backbone.model_name': 'hornet_tiny_7x7', 'model.decode_head.in_channels': [64, 128, 256, 512],
               'model.auxiliary_head.in_channels': 256}
    cli = ['--cfg-options', *(f"{k}={str(v).replace(' ', '')}" for k, v in options.items())]
    model = convert_checkpoint.build_model(str(root / config), options)
    authors = tmp_path / 'authors.pth'
    authors_file(model, authors)
    res = run_tool('test', config, authors, '--work-dir', tmp_path / 'a', *cli)
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    assert "checkpoint in the authors' dense layout" in log
    miou = float(re.findall(r'mIoU: ([\d.]+)', log)[-1])
    ours = tmp_path / 'ours.pth'
    assert convert_checkpoint.main([str(authors), str(ours), '--config', str(root / config), *cli]) == 0
    res = run_tool('test', config, ours, '--work-dir', tmp_path / 'b', *cli)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "authors' dense layout" not in res.stdout + res.stderr
    assert float(re.findall(r'mIoU: ([\d.]+)', res.stdout + res.stderr)[-1]) == miou
