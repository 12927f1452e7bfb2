"""The timm -> OpenMMLab backbone bridge."""
import math

import pytest
import timm
import torch

from gatedvision.tasks import TimmBackbone


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize('name, channels, strides, divisor', [
    ('resnet18', [64, 128, 256, 512], [4, 8, 16, 32], 32),
    ('halonet26t', [256, 512, 1024, 2048], [4, 8, 16, 32], 256),
    ('convnext_atto', [40, 80, 160, 320], [4, 8, 16, 32], 32),
])
def test_channels_strides_and_divisor(name, channels, strides, divisor):
    bb = TimmBackbone(name).eval()
    assert bb.out_channels == channels
    assert bb.out_strides == strides
    assert bb.size_divisor == divisor
    x = torch.randn(1, 3, divisor, divisor)
    with torch.no_grad():
        outs = bb(x)
    assert [o.shape[1] for o in outs] == channels
    assert [o.shape[-1] for o in outs] == [divisor // s for s in strides]


def test_padding_and_crop_round_trip():
    bb = TimmBackbone('halonet26t').eval()
    h, w = 200, 300  # not multiples of 256
    x = torch.randn(1, 3, h, w)
    with torch.no_grad():
        outs = bb(x)
        # reference: the raw timm features on the zero-padded input, cropped by hand
        padded = torch.nn.functional.pad(x, (0, 512 - w, 0, 256 - h))
        ref = bb.model(padded)
    for o, r, s in zip(outs, ref, bb.out_strides):
        assert o.shape[-2:] == (math.ceil(h / s), math.ceil(w / s))
        torch.testing.assert_close(o, r[..., :o.shape[-2], :o.shape[-1]])
    # a size that needs no padding passes straight through
    with torch.no_grad():
        x = torch.randn(1, 3, 256, 512)
        for o, r in zip(bb(x), bb.model(x)):
            torch.testing.assert_close(o, r)


def test_checkpoint_loads_authors_layout(tmp_path):
    src = timm.create_model('resnet18')
    path = tmp_path / 'resnet18.pth'
    torch.save({'state_dict': src.state_dict()}, path)  # wrapped, as many releases are
    bb = TimmBackbone('resnet18', checkpoint=str(path))
    bb.init_weights()  # the pretrained weights are an initialisation, as OpenMMLab's init_cfg
    bb.eval()
    ref = timm.create_model('resnet18', features_only=True, out_indices=(1, 2, 3, 4))
    ref.load_state_dict({k: v for k, v in src.state_dict().items() if not k.startswith('fc.')})
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for o, r in zip(bb(x), ref.eval()(x)):
            torch.testing.assert_close(o, r)


def test_checkpoint_for_another_model_lists_keys(tmp_path):
    path = tmp_path / 'resnet34.pth'
    torch.save(timm.create_model('resnet34').state_dict(), path)
    with pytest.raises(ValueError, match=r"does not match resnet18: 0 missing.*96 unexpected key\(s\): layer1\.2\.conv1"):
        TimmBackbone('resnet18', checkpoint=str(path)).init_weights()


@pytest.mark.parametrize('name, other', [('hornet_tiny_7x7', 'hornet_small_7x7'), ('overlock_xt', 'overlock_t'),
                                         ('vig_h_tiny', 'vig_h_small'), ('halonet26t', 'halonet50ts')])
def test_checkpoint_loads_as_timms_features_only_and_another_size_is_named(tmp_path, name, other):
    """TimmBackbone's strict loading gives what timm's own ``features_only`` loading gives (the
    dense-only modules keep their initialisation, the pruned head and norm are no mismatch), and a
    checkpoint of another size of the family lists the keys that do not fit."""
    path = tmp_path / f'{name}.pth'
    torch.save(timm.create_model(name).state_dict(), path)
    torch.manual_seed(1)
    bb = TimmBackbone(name, checkpoint=str(path))
    bb.init_weights()
    bb.eval()
    torch.manual_seed(1)
    ref = timm.create_model(name, features_only=True, out_indices=bb.out_indices, pretrained=True,
                            pretrained_cfg_overlay=dict(file=str(path))).eval()
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        for o, r in zip(bb(x), ref(x)):
            torch.testing.assert_close(o, r, rtol=0, atol=0)
    wrong = tmp_path / f'{other}.pth'
    torch.save(timm.create_model(other).state_dict(), wrong)
    with pytest.raises(ValueError, match=rf"'{wrong}' does not match {name}: \d+ (missing key|tensor\(s\) of other shapes)"):
        TimmBackbone(name, checkpoint=str(wrong)).init_weights()


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothere.pth'):
        TimmBackbone('resnet18', checkpoint=str(tmp_path / 'nothere.pth'))


def test_unknown_model_name_suggests_close_ones():
    with pytest.raises(ValueError, match=r"unknown model name 'halonet26'.*halonet26t"):
        TimmBackbone('halonet26')


def test_out_indices_out_of_range():
    with pytest.raises(ValueError, match=r'out_indices \(1, 5\) out of range for resnet18.*0\.\.4'):
        TimmBackbone('resnet18', out_indices=(1, 5))


def test_negative_out_indices_and_wrong_channels():
    bb = TimmBackbone('resnet18', out_indices=(-2, -1))
    assert bb.out_strides == [16, 32]
    with pytest.raises(ValueError, match=r'resnet18 expects \(N, 3, H, W\).*\(1, 1, 64, 64\)'):
        bb(torch.randn(1, 1, 64, 64))


def test_frozen_stages_and_norm_eval():
    bb = TimmBackbone('resnet18', frozen_stages=1)
    frozen = {n for n, p in bb.model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(('conv1', 'bn1', 'layer1')) for n in frozen)
    assert any(n.startswith('layer1') for n in frozen)
    assert all(p.requires_grad for n, p in bb.model.named_parameters()
               if n.startswith(('layer2', 'layer3', 'layer4')))
    bb.train()
    assert not bb.model.bn1.training and not bb.model.layer1[0].bn1.training
    assert bb.model.layer2[0].bn1.training
    stem_only = TimmBackbone('resnet18', frozen_stages=0)
    assert {n.split('.')[0] for n, p in stem_only.model.named_parameters()
            if not p.requires_grad} == {'conv1', 'bn1'}


def _blocks(first, last):
    return [f'model.blocks.{i}.' for i in range(first, last + 1)]


# Per family, independently of its group_matcher: the stem's and each stage's parameters (by name
# prefix in the bridge's feature model), read from the architecture. Stage i holds what runs after
# output i - 1 and up to output i, its output norm included.
STAGES = {
    'hornet_tiny_7x7': (dict(), [['model.downsample_layers.0.'],
                                 *[[*([f'model.downsample_layers.{i}.'] if i else []), f'model.stages.{i}.',
                                    f'model.norm{i}.'] for i in range(4)]]),
    'biformer_tiny': (dict(), [['model.downsample_layers.0.'],
                               *[[*([f'model.downsample_layers.{i}.'] if i else []), f'model.stages.{i}.',
                                  f'model.extra_norms.{i}.'] for i in range(4)]]),
    'vig_h_tiny': (dict(), [['model.patch_embed.'],
                            *[[*([f'model.layers.{i - 1}.downsample.'] if i else []), f'model.layers.{i}.blocks.',
                               f'model.outnorm{i}.'] for i in range(4)]]),
    'overlock_xt': (dict(dense_ctx_proj=True), [
        ['model.patch_embed1.'], ['model.blocks1.', 'model.extra_norm.0.'],
        ['model.patch_embed2.', 'model.blocks2.', 'model.extra_norm.1.'],
        # the stride-16 output needs the Overview-Net (stride 32) and its context above it
        ['model.patch_embed3.', 'model.blocks3.', 'model.patch_embed4.', 'model.blocks4.', 'model.high_level_proj.',
         'model.sub_blocks3.', 'model.extra_norm.2.'],
        ['model.patch_embedx.', 'model.sub_blocks4.', 'model.extra_norm.3.', 'model.extra_norm.4.', 'model.h_proj.']]),
    'convit_tiny_dense': (dict(out_indices=(2, 5, 8, 11)), [
        ['model.patch_embed.', 'model.pos_embed', 'model.cls_token'], _blocks(0, 2), _blocks(3, 5), _blocks(6, 8),
        [*_blocks(9, 11), 'model.norm.']]),
    'vig_tiny': (dict(out_indices=(2, 5, 8, 11)), [
        ['model.patch_embed.', 'model.pos_embed'], _blocks(0, 2), _blocks(3, 5), _blocks(6, 8),
        [*_blocks(9, 11), 'model.norm.']]),
    # timm's own, through FeatureListNet (top-level Sequentials flattened: stem_conv1, stages_0, ...)
    'halonet26t': (dict(), [['stem_'], ['stages_0.'], ['stages_1.'], ['stages_2.'], ['stages_3.']]),
}


@pytest.mark.parametrize('name', list(STAGES))
def test_frozen_stages_freeze_exactly_the_stem_and_first_stages(name):
    kwargs, stages = STAGES[name]
    with torch.device('meta'):  # names and flags need no initialised weights (a ViG builds in seconds)
        all_names = [n for n, _ in TimmBackbone(name, **kwargs).model.named_parameters()]
    assigned = [n for n in all_names if any(n.startswith(p) for s in stages for p in s)]
    assert assigned == all_names, f'the test misses {set(all_names) - set(assigned)}'
    for k in range(len(stages)):
        torch.manual_seed(0)
        with torch.device('cpu' if k == 1 else 'meta'):  # k = 1 also runs forward and backward
            bb = TimmBackbone(name, frozen_stages=k, **kwargs)
        prefixes = tuple(p for s in stages[:k + 1] for p in s)
        frozen = {n for n, p in bb.model.named_parameters() if not p.requires_grad}
        assert frozen == {n for n in all_names if n.startswith(prefixes)}, f'frozen_stages={k}'
        if k not in (1, len(stages) - 1):
            continue
        bb.train()
        for mname, m in bb.model.named_modules():  # frozen norms keep their statistics
            if isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm)) and \
                    any(True for _ in m.parameters(recurse=False)):
                assert m.training == (f'{mname}.' not in {f'{n.rsplit(".", 1)[0]}.' for n in frozen}), mname
        if k == len(stages) - 1:
            continue
        outs = bb(torch.randn(2, 3, 64, 64))
        sum(o.float().mean() for o in outs).backward()
        no_grad = [n for n, p in bb.model.named_parameters() if p.requires_grad and p.grad is None]
        assert not no_grad, f'trainable parameters without a gradient: {no_grad[:5]}'


@pytest.mark.parametrize('name', list(STAGES))
def test_with_cp_gives_the_same_gradients(name):
    kwargs = STAGES[name][0]
    torch.manual_seed(0)
    plain = TimmBackbone(name, **kwargs).train()
    cp = TimmBackbone(name, with_cp=True, **kwargs).train()
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    grads, saved = [], []
    for bb in (plain, cp):
        torch.manual_seed(1)
        kept = [0]

        def pack(t):  # what autograd keeps for backward: the activations checkpointing drops
            kept[0] += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            outs = bb(x)
        sum((o.float() ** 2).mean() for o in outs).backward()
        grads.append({n: p.grad for n, p in bb.named_parameters() if p.grad is not None})
        saved.append(kept[0])
    assert saved[1] < 0.2 * saved[0], f'with_cp keeps {saved[1] / saved[0]:.0%} of the activations'
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for n, g in grads[0].items():
        torch.testing.assert_close(grads[1][n], g, rtol=1e-5, atol=1e-6, msg=lambda m: f'{n}: {m}')


@pytest.mark.parametrize('name, out_norm', [('hornet_tiny_7x7', None), ('overlock_xt', None),
                                             ('resnet18', dict(type='LN2d'))])
def test_outputs_are_contiguous_nchw_for_mmcv_ops(name, out_norm):
    # LayerNorm2d (HorNet's and OverLoCK's dense norms, out_norm='LN2d') leaves channels-last
    # strides; mmcv's CPU RoIAlign ignores strides, so RoI features from such a pyramid are
    # scrambled and Mask R-CNN cannot learn (toy detection mAP 0.004 instead of 0.3)
    from mmcv.ops import roi_align
    bb = TimmBackbone(name, out_norm=out_norm).eval()
    with torch.no_grad():
        outs = bb(torch.randn(2, 3, 64, 64))
        fpn_input = outs[0]
        conv = torch.nn.Conv2d(fpn_input.shape[1], 8, 3, padding=1)  # the FPN's first op
        feat = conv(fpn_input)
        rois = torch.tensor([[0, 1., 1., 9., 9.], [1, 2., 3., 12., 14.]])
        ours = roi_align(feat, rois, (7, 7), 0.25, 2, 'avg', True)
        ref = roi_align(feat.contiguous(), rois, (7, 7), 0.25, 2, 'avg', True)
    assert all(o.is_contiguous() for o in outs)
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def test_out_norm_ln2d():
    bb = TimmBackbone('resnet18', out_norm=dict(type='LN2d')).eval()
    with torch.no_grad():
        outs = bb(torch.randn(1, 3, 64, 64))
    for o in outs:
        torch.testing.assert_close(o.mean(1), torch.zeros_like(o.mean(1)), atol=1e-4, rtol=0)

    # the config checker leaves 'LN2d' (not a registry type) to the backbone, which knows it
    from gatedvision.engine.config import load_config
    cfg = load_config('configs/seg/upernet_halonet26t_1xb4-200i_toyseg-256x256.py',
                      {'model.backbone.out_norm': dict(type='LN2d')})
    assert cfg.model.backbone.out_norm == dict(type='LN2d')


@pytest.mark.parametrize('scope', ['mmseg', 'mmdet'])
def test_reachable_from_openmmlab_scopes(scope):
    from importlib import import_module
    registry = import_module(f'{scope}.registry').MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        bb = registry.build(dict(type='gatedvision.TimmBackbone', model_name='resnet18'))
    assert isinstance(bb, TimmBackbone)


def test_plain_backbone_gives_its_last_block_by_default():
    import gatedvision  # noqa: F401
    bb = TimmBackbone('vig_tiny').eval()
    assert bb.out_indices == (11,) and bb.out_strides == [16] and bb.out_channels == [192]
    ref = timm.create_model('vig_tiny').eval()
    ref.load_state_dict(bb.model.model.state_dict(), strict=False)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = ref.forward_intermediates(x, indices=[11], norm=True, intermediates_only=True)[0]
        torch.testing.assert_close(bb(x)[0], expected)
    with pytest.raises(ValueError, match=r'out_indices \(12,\) out of range for vig_tiny: it has 12'):
        TimmBackbone('vig_tiny', out_indices=(12,))


def test_pretrained_weights_are_fetched_by_init_weights_not_when_built(tmp_path, monkeypatch):
    """OpenMMLab's convention: building the model downloads nothing (testing and inference only
    build it); init_weights, which the Runner calls when training starts, fetches the weights into
    torch hub's cache and loads them."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    src = timm.create_model('resnet18')
    torch.save(src.state_dict(), tmp_path / 'resnet18-weights.pth')
    url = (tmp_path / 'resnet18-weights.pth').as_uri()
    bb = TimmBackbone('resnet18', pretrained=True, pretrained_cfg_overlay=dict(url=url, hf_hub_id=None, source=''))
    cached = tmp_path / 'torch' / 'hub' / 'checkpoints' / 'resnet18-weights.pth'
    assert not cached.exists()
    assert not torch.equal(bb.model.conv1.weight, src.conv1.weight)
    bb.init_weights()
    assert cached.is_file()
    torch.testing.assert_close(bb.model.layer4[1].conv2.weight, src.layer4[1].conv2.weight, rtol=0, atol=0)
    # the runner marks backbones whose weights a checkpoint (load_from, --resume) will replace
    again = TimmBackbone('resnet18', pretrained=True, pretrained_cfg_overlay=dict(url=url + '.gone', hf_hub_id=None))
    again.weights_provided_by = 'load_from run.pth'
    again.init_weights()  # the missing file is never asked for


@pytest.mark.parametrize('name, source', [
    ('hornet_tiny_7x7', r'from https://cloud\.tsinghua\.edu\.cn/\S+ \(URLError: .*Name or service not known.*\)'),
    ('halonet26t', r'from timm/halonet26t\.a1h_in1k \(\w+'),
])
def test_a_failed_download_names_the_model_the_source_and_the_fixes(tmp_path, monkeypatch, name, source):
    import socket

    import huggingface_hub

    from gatedvision.backbones._helpers import WeightsUnavailable

    def unreachable(*args, **kwargs):
        raise socket.gaierror(-2, 'Name or service not known')
    for where, attr in ((socket, 'getaddrinfo'), (socket, 'create_connection'), (socket.socket, 'connect')):
        monkeypatch.setattr(where, attr, unreachable)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    # the hub's settings are read at import; offline mode, as on most compute nodes (without it the
    # hub retries for 23 s before it gives the same answer)
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path / 'hf'))
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    bb = TimmBackbone(name, pretrained=True)  # builds without a network
    cache = r'torch/hub/checkpoints/hornet_tiny_7x7\.in1k\.pth' if name.startswith('hornet') else r'hf/models--timm--halonet26t\.a1h_in1k'
    with pytest.raises(WeightsUnavailable, match=rf'cannot download the pretrained weights of {name} {source}.*'
                                                 rf'python tools/download\.py {name}.*{cache}.*checkpoint=PATH'
                                                 r'.*pretrained=False to train from scratch'):
        bb.init_weights()


def test_pad_to_multiple_is_the_one_padding_helper():
    from gatedvision.engine.bridge import pad_to_multiple
    x = torch.arange(12.).view(1, 1, 3, 4)
    padded = pad_to_multiple(x, 4)
    assert padded.shape == (1, 1, 4, 4) and padded[..., 3, :].abs().sum() == 0
    assert pad_to_multiple(x, 1) is x
    reflected = pad_to_multiple(x, 4, mode='reflect')  # bottom row: the reflection of row 1
    torch.testing.assert_close(reflected[..., 3, :], x[..., 1, :])
    # more padding than pixels: reflection cannot, replication does
    torch.testing.assert_close(pad_to_multiple(x, 8, mode='reflect')[..., 7, :4], x[..., 2, :])


def test_compile_backbones_in_place_keeps_checkpoint_keys():
    """The config's ``compile`` key (tools' ``--compile``): every TimmBackbone of a task model is
    compiled in place, once; its state-dict keys (checkpoints) and outputs are those of eager."""
    from gatedvision.engine.bridge import compile_backbones
    torch.manual_seed(0)
    model = torch.nn.ModuleDict(dict(backbone=TimmBackbone('resnet18', out_indices=(3,)),
                                     head=torch.nn.Conv2d(512, 2, 1))).eval()
    keys = list(model.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        eager = model['backbone'](x)[0]
    assert compile_backbones(model, None) == [] and compile_backbones(model, False) == []
    assert compile_backbones(model, dict(backend='eager')) == ['backbone']
    assert compile_backbones(model, True) == []  # once
    assert list(model.state_dict()) == keys
    torch._dynamo.utils.counters.clear()
    with torch.no_grad():
        out = model['backbone'](x)[0]
    torch.testing.assert_close(out, eager)
    assert torch._dynamo.utils.counters['stats']['unique_graphs'] >= 1  # it ran through dynamo
