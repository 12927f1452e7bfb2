"""ConViT at any size, HaloNet through the bridge, and the simple-pyramid neck."""
import pytest
import timm
import torch

import gatedvision  # noqa: F401
from gatedvision.tasks import TimmBackbone


def _perturbed_timm(name):
    torch.manual_seed(0)
    ref = timm.create_model(name).eval()
    with torch.no_grad():  # away from the local init, so that content attention matters
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return ref


def test_convit_equals_timm_at_224():
    ref = _perturbed_timm('convit_tiny')
    ours = timm.create_model('convit_tiny_dense', pretrained=True,
                             pretrained_cfg_overlay=dict(state_dict=ref.state_dict())).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
        for a, b in zip(ours.forward_intermediates(x, indices=[2, 11], norm=True, intermediates_only=True),
                        ref.forward_intermediates(x, indices=[2, 11], norm=True, intermediates_only=True)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('h, w', [(160, 288), (320, 96), (64, 64)])
def test_convit_dense_features_at_non_square_sizes(h, w):
    model = timm.create_model('convit_tiny_dense', features_only=True, out_indices=(3, 7, 11)).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, h, w))
    assert [tuple(f.shape) for f in feats] == [(1, 192, h // 16, w // 16)] * 3
    assert all(torch.isfinite(f).all() for f in feats)


def test_convit_relative_offsets_of_a_rectangle():
    from gatedvision.backbones.convit import relative_offsets
    off = relative_offsets(2, 3, torch.device('cpu'), torch.float32)  # patches in raster order
    # from patch 0 (row 0, col 0) to patch 5 (row 1, col 2): dx = 2, dy = 1, d² = 5
    assert off[:, 0, 5].tolist() == [2.0, 1.0, 5.0]
    assert off[:, 5, 0].tolist() == [-2.0, -1.0, 5.0]


def test_convit_rejects_sizes_the_patches_do_not_divide():
    model = timm.create_model('convit_tiny_dense')
    with pytest.raises(ValueError, match='multiples of 16, got 100x96'):
        model(torch.randn(1, 3, 100, 96))


def test_halonet_segmentation_forward_at_a_non_multiple_of_256():
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0], std=[1, 1, 1]),
        backbone=dict(type='gatedvision.TimmBackbone', model_name='halonet26t'),
        decode_head=dict(type='FPNHead', in_channels=[256, 512, 1024, 2048], in_index=[0, 1, 2, 3],
                         feature_strides=[4, 8, 16, 32], channels=32, num_classes=3,
                         norm_cfg=dict(type='BN'), align_corners=False,
                         loss_decode=dict(type='CrossEntropyLoss')),
        test_cfg=dict(mode='whole'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg).eval()
    assert model.backbone.size_divisor == 256
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 200, 300), mode='tensor')
    assert logits.shape == (1, 3, 50, 75)  # stride 4 of the unpadded input: cropped back


@pytest.mark.parametrize('out_channels, expected', [(64, [64] * 4), (None, [48, 96, 192, 192])])
def test_simple_pyramid_strides_and_channels(out_channels, expected):
    from gatedvision.heads import SimplePyramid
    bb = TimmBackbone('convit_tiny_dense', size_divisor=16).eval()
    neck = SimplePyramid(bb.out_channels, out_channels).eval()
    assert neck.out_channels == expected
    with torch.no_grad():
        outs = neck(bb(torch.randn(1, 3, 128, 192)))
    assert [tuple(o.shape[1:]) for o in outs] == [(c, 128 // s, 192 // s) for c, s in zip(expected, (4, 8, 16, 32))]


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_simple_pyramid_reachable_from_openmmlab_scopes(scope):
    from importlib import import_module
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        neck = import_module(f'{scope}.registry').MODELS.build(
            dict(type='gatedvision.SimplePyramid', in_channels=192, out_channels=32, norm_cfg=dict(type='BN')))
    assert neck.out_channels == [32] * 4
