"""Family-specific behaviour of HorNet and BiFormer beyond the generic backbone test."""
import re

import pytest
import timm
import torch
import torch.nn.functional as F

import gatedvision  # noqa: F401
from gatedvision.backbones.hornet import GlobalLocalFilter


def _randomize(model, std=0.05):
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.normal_(0, std).add_(1.0 if 'norm' in n and n.endswith('weight') else 0.)


def test_hornet_loads_mmpretrain_layout(tmp_path):
    torch.manual_seed(0)
    src = timm.create_model('hornet_tiny_gf').eval()
    _randomize(src)
    # OpenMMLab's conversion: backbone. prefix, pws -> projs, gamma -> LayerScale.weight,
    # final norm as norm3, head.fc
    mm = {}
    for k, v in src.state_dict().items():
        if k.startswith('head.'):
            mm['head.fc.' + k[5:]] = v
            continue
        k = re.sub(r'\.pws\.', '.projs.', k)
        k = re.sub(r'\.(gamma[12])$', r'.\1.weight', k)
        k = re.sub(r'^norm\.', 'norm3.', k)
        mm['backbone.' + k] = v
    path = tmp_path / 'hornet-tiny-gf_3rdparty_in1k.pth'
    torch.save({'meta': {}, 'state_dict': mm}, path)
    dst = timm.create_model('hornet_tiny_gf', pretrained=True,
                            pretrained_cfg_overlay=dict(file=str(path))).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)


def test_hornet_gf_weights_resize_on_load_like_at_run_time(tmp_path):
    torch.manual_seed(0)
    src = timm.create_model('hornet_tiny_gf').eval()  # global filters for 224 (14x8, 7x4)
    _randomize(src)
    path = tmp_path / 'w.pth'
    torch.save({'model': src.state_dict()}, path)
    big = timm.create_model('hornet_tiny_gf', img_size=384, pretrained=True,
                            pretrained_cfg_overlay=dict(file=str(path))).eval()
    gf = [m for m in big.modules() if isinstance(m, GlobalLocalFilter)]
    assert {tuple(m.complex_weight.shape[1:3]) for m in gf} == {(24, 13), (12, 7)}
    x = torch.randn(1, 3, 384, 384)
    with torch.no_grad():
        # resized when loading == resized on the fly by the 224 model
        torch.testing.assert_close(big(x), src(x), rtol=1e-5, atol=1e-5)


def test_hornet_gf_runs_in_bf16_autocast():
    model = timm.create_model('hornet_tiny_gf').eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(torch.randn(1, 3, 96, 128))
    assert torch.isfinite(out.float()).all()


@pytest.mark.parametrize('name', ['hornet_tiny_7x7', 'biformer_tiny'])
def test_dense_norms_through_the_bridge(name):
    from gatedvision.tasks import TimmBackbone
    bb = TimmBackbone(name).eval()
    assert bb.out_channels == ([64, 128, 256, 512]) and bb.out_strides == [4, 8, 16, 32]
    with torch.no_grad():
        outs = bb(torch.randn(1, 3, 100, 75))  # sizes the models do not divide
    assert [tuple(o.shape[-2:]) for o in outs] == [(25, 19), (13, 10), (7, 5), (4, 3)]
    # the per-output channels-first LayerNorm of the original dense backbones (identity init)
    for o in outs:
        torch.testing.assert_close(o.mean(1), torch.zeros_like(o.mean(1)), atol=1e-4, rtol=0)


@pytest.mark.parametrize('n_win', [7, 8, 16])
def test_biformer_any_size_and_n_win(n_win):
    torch.manual_seed(0)
    model = timm.create_model('biformer_tiny', n_win=n_win, features_only=True).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 200, 136))
    assert [tuple(f.shape[-2:]) for f in feats] == [(50, 34), (25, 17), (13, 9), (7, 5)]
    assert all(torch.isfinite(f).all() for f in feats)


def test_biformer_n_win_is_not_in_the_weights(tmp_path):
    # detection/segmentation load classification weights with another n_win, without remapping
    torch.manual_seed(0)
    src = timm.create_model('biformer_tiny').eval()
    path = tmp_path / 'w.pth'
    torch.save({'model': src.state_dict()}, path)
    dst = timm.create_model('biformer_tiny', n_win=8, pretrained=True,
                            pretrained_cfg_overlay=dict(file=str(path))).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        b = dst(x)
        src.set_n_win(8)
        torch.testing.assert_close(src(x), b, rtol=0, atol=0)


# --- OverLoCK -------------------------------------------------------------------------------

@pytest.mark.parametrize('name, train_params', [('overlock_xt', 17.31), ('overlock_t', 34.99)])
def test_overlock_training_form_as_the_original_builds_it(name, train_params):
    with torch.device('meta'):
        model = timm.create_model(name, use_ds=True)  # with the auxiliary head
    assert abs(sum(p.numel() for p in model.parameters()) / 1e6 - train_params) < 0.01


def test_overlock_deep_supervision_in_training():
    model = timm.create_model('overlock_xt', use_ds=True, num_classes=5).train()
    out = model(torch.randn(2, 3, 64, 64))
    assert set(out) == {'main', 'aux'} and out['main'].shape == out['aux'].shape == (2, 5)
    assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 5)


def test_overlock_reparameterize_keeps_outputs(tmp_path):
    torch.manual_seed(0)
    model = timm.create_model('overlock_xt').eval()
    with torch.no_grad():  # non-trivial BN statistics so that the fusion matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.1)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        before = model(x)
        n_before = sum(p.numel() for p in model.parameters())
        model.reparameterize()
        after = model(x)
    assert sum(p.numel() for p in model.parameters()) < n_before
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    # and the merged weights load into the deploy-form model (the *_reparam checkpoints' layout)
    path = tmp_path / 'reparam.pth'
    torch.save(model.state_dict(), path)
    deploy = timm.create_model('overlock_xt_reparam', pretrained=True,
                               pretrained_cfg_overlay=dict(file=str(path))).eval()
    with torch.no_grad():
        torch.testing.assert_close(deploy(x), after, rtol=0, atol=0)


def test_overlock_dense_channels_include_the_context():
    # stages 3 and 4 concatenate the top-down context: T gives 64/128/384/640 (LMMMEng/OverLoCK#31)
    model = timm.create_model('overlock_t', features_only=True).eval()
    assert model.feature_info.channels() == [64, 128, 384, 640]
    det = timm.create_model('overlock_t', features_only=True, dense_ctx_proj=True).eval()
    with torch.no_grad():
        feats = det(torch.randn(1, 3, 128, 96))
    assert [f.shape[1] for f in feats] == [64, 128, 384, 640]


def _authors_dense_forward(m, x):
    """The authors' dense backbone (detection/ and segmentation/models/overlock.py), step by step
    over our modules: forward_pre_features, forward_base_features, forward_sub_features."""
    outs = []
    x = m.patch_embed1(x)
    for blk in m.blocks1:
        x = blk(x)
    outs.append(m.extra_norm[0](x))
    x = m.patch_embed2(x)
    for blk in m.blocks2:
        x = blk(x)
    x1 = m.extra_norm[1](x)
    outs.append(x1)
    x = m.patch_embed3(x1)  # stage 3 starts from the normalised stride-8 output
    for blk in m.blocks3:
        x = blk(x)
    ctx = m.patch_embed4(x)
    for blk in m.blocks4:
        ctx = blk(ctx)
    ctx_cls, ctx_ori = ctx, m.high_level_proj(ctx)
    ctx_up = torch.nn.functional.interpolate(ctx_ori, size=x.shape[2:], mode='bilinear', align_corners=False)
    ctx = ctx_up
    for blk in m.sub_blocks3:
        x, ctx = blk(x, ctx, ctx_up)
    outs.append(m.extra_norm[2](torch.cat([x, ctx], dim=1)))
    x, ctx = m.patch_embedx(x, ctx)
    for blk in m.sub_blocks4:
        x, ctx = blk(x, ctx, ctx_ori)
    if m.dense_ctx_proj:  # detection
        outs.append(m.extra_norm[3](x) + m.h_proj(m.extra_norm[4](ctx_cls)))
    else:  # segmentation
        outs.append(m.extra_norm[3](x))
    return outs


@pytest.mark.parametrize('ctx_proj', [False, True], ids=['segmentation', 'detection'])
def test_overlock_dense_wiring_is_the_authors(ctx_proj):
    torch.manual_seed(0)
    feat = timm.create_model('overlock_xt', features_only=True, dense_ctx_proj=ctx_proj).eval()
    m = feat.model  # the OverLoCK inside timm's feature wrapper
    with torch.no_grad():
        for n in m.extra_norm:  # trained norms: not the identity affine
            n.weight.normal_(1, 0.3)
            n.bias.normal_(0, 0.3)
        if ctx_proj:
            m.h_proj[1].weight.fill_(0.5)
        x = torch.randn(2, 3, 96, 64)
        ours = feat(x)
        ref = _authors_dense_forward(m, x)
    assert len(ours) == 4
    for level, (a, b) in enumerate(zip(ours, ref)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=lambda m: f'level {level}: {m}')


# --- ViG --------------------------------------------------------------------------------------

def test_vig_h_pyramid_through_the_bridge():
    from gatedvision.tasks import TimmBackbone
    bb = TimmBackbone('vig_h_tiny').eval()
    assert bb.out_channels == [96, 192, 384, 768] and bb.out_strides == [4, 8, 16, 32]
    with torch.no_grad():
        outs = bb(torch.randn(1, 3, 100, 70))
    assert [tuple(o.shape[-2:]) for o in outs] == [(25, 18), (13, 9), (7, 5), (4, 3)]


def test_plain_vig_eval_divides_by_four_like_the_release():
    # the released plain models ran eval with (fw + bw) / 4 and trained with / 2; the RMSNorm that
    # follows cancels the factor except through its eps
    from gatedvision.backbones.vig import GatedLinearAttention
    torch.manual_seed(0)
    attn = GatedLinearAttention(32, 2, eval_quarter=True)
    x = torch.randn(1, 16, 32)
    with torch.no_grad():
        train_out = attn.train()(x, (4, 4))
        eval_out = attn.eval()(x, (4, 4))
        attn.g_norm.eps = attn.l_norm.eps = 0.0
        torch.testing.assert_close(attn.eval()(x, (4, 4)), attn.train()(x, (4, 4)), rtol=1e-5, atol=1e-5)
    assert not torch.equal(train_out, eval_out)


def test_vig_log_sigmoid_is_logsigmoid_with_finite_gradients():
    from gatedvision.backbones.vig import log_sigmoid
    x = torch.cat([torch.linspace(-1000, 100, 20001), torch.tensor([-20., -19.999, 0., 1e-8])]).double()
    x32 = x.float().requires_grad_()
    y = log_sigmoid(x32)
    torch.testing.assert_close(y.double(), F.logsigmoid(x), rtol=1e-6, atol=2e-7)
    (g,) = torch.autograd.grad(y.sum(), x32)
    assert torch.isfinite(g).all()
    torch.testing.assert_close(g.double(), torch.sigmoid(-x), rtol=1e-5, atol=1e-6)


def test_vig_position_embedding_follows_the_input():
    model = timm.create_model('vig_tiny').eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 160, 288)).shape == (1, 1000)
        feats = model.forward_intermediates(torch.randn(1, 3, 160, 288), indices=1, intermediates_only=True)
    assert feats[0].shape == (1, 192, 10, 18)
