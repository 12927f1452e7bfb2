"""One test over every model gatedvision registers in timm (new models join by registering)."""
import inspect
import re

import pytest
import timm
import torch
from timm.models._features import FeatureListNet
import gatedvision

MODELS = gatedvision.list_models()

# Published parameter counts (millions) with the default classifier of each model's default
# weights. A new model must add its figure here.
PUBLISHED_PARAMS = {
    'hornet_tiny_7x7': 22, 'hornet_tiny_gf': 23, 'hornet_small_7x7': 50, 'hornet_small_gf': 50,
    'hornet_base_7x7': 87, 'hornet_base_gf': 88,
    # 22k heads: 11221 classes (see hornet.py)
    'hornet_large_7x7': 209, 'hornet_large_gf': 211, 'hornet_large_gf_img384': 216,
    'biformer_tiny': 13.1, 'biformer_small': 25.5, 'biformer_base': 56.8,
    # counted in deploy form (reparameterized), as published
    'overlock_xt': 16, 'overlock_t': 33, 'overlock_s': 56, 'overlock_b': 95,
    'overlock_xt_reparam': 16, 'overlock_t_reparam': 33, 'overlock_s_reparam': 56,
    'overlock_b_reparam': 95,
    # timm's counts of the released weights (the paper rounds them to 6M / 27M / 86M)
    'convit_tiny_dense': 5.71, 'convit_small_dense': 27.78, 'convit_base_dense': 86.54,
    'vig_tiny': 6, 'vig_small': 23, 'vig_base': 89, 'vig_h_tiny': 29, 'vig_h_small': 50, 'vig_h_base': 89,
}
# forward/backward on these only for the smallest of each family would miss bugs in the others;
# the big ones run at a small input so the suite stays fast
SMALL_INPUT = 64
# bf16 keeps 8 bits of mantissa (0.4% a rounding); through a deep random-init net the logits drift
# by a few percent (measured over the registry: at most 3.2%, overlock_t_reparam)
BF16_TOL = 0.06


def _first_tag(name):
    return timm.models.get_pretrained_cfg(name)


_SIZES = {'xt', 't', 's', 'b', 'tiny', 'small', 'base', 'large'}
_VARIANTS = {'7x7', 'gf', 'reparam', 'img384'}


def _smallest_per_kind(variants=False):
    """The smallest model (by its published size) of each kind: its name without the size word
    (``variants``: keeping the block-variant words, e.g. HorNet's global-filter blocks, OverLoCK's
    deploy form): what is code of the kind, not of the size. Read from the names, so that
    collecting the suite builds nothing."""
    best = {}
    for name in MODELS:
        kind = tuple(w for w in name.split('_') if w not in _SIZES and (variants or w not in _VARIANTS))
        if kind not in best or PUBLISHED_PARAMS[name] < best[kind][0]:
            best[kind] = (PUBLISHED_PARAMS[name], name)
    return sorted(n for _, n in best.values())


def test_every_published_size_is_registered():
    assert set(MODELS) == set(PUBLISHED_PARAMS)


@pytest.mark.parametrize('name', MODELS)
def test_first_conv_and_classifier_name_real_modules(name):
    # timm adapts these by name: in_chans (first_conv) and num_classes of pretrained weights (classifier)
    cfg = _first_tag(name)
    with torch.device('meta'):
        modules = dict(timm.create_model(name).named_modules())
    for n in ([cfg.first_conv] if isinstance(cfg.first_conv, str) else cfg.first_conv):
        m = modules.get(n)
        assert isinstance(m, torch.nn.Conv2d) and m.in_channels == 3, f'{name}: first_conv {n!r} is {m}'
    for n in ([cfg.classifier] if isinstance(cfg.classifier, str) else cfg.classifier):
        m = modules.get(n)  # a Linear, or a 1x1 convolution (OverLoCK's head)
        out = getattr(m, 'out_features', getattr(m, 'out_channels', None))
        assert out == cfg.num_classes, f'{name}: classifier {n!r} is {m}'


@pytest.mark.parametrize('name', MODELS)
def test_features_only_is_the_full_models_forward_intermediates(name):
    # features_only prunes what its outputs do not need (prune_intermediate_layers): on the same weights
    # its outputs equal the unpruned model's forward_intermediates at the same indices
    torch.manual_seed(0)
    feat = timm.create_model(name, features_only=True).eval()
    params = inspect.signature(type(feat.model).__init__).parameters
    full = timm.create_model(name, **({'dense_norms': True} if 'dense_norms' in params else {})).eval()
    missing, unexpected = full.load_state_dict(feat.model.state_dict(), strict=False)
    assert not unexpected, unexpected
    kept = set(feat.model.state_dict())
    assert all(k not in kept for k in missing)
    x = torch.randn(1, 3, SMALL_INPUT, SMALL_INPUT)
    with torch.no_grad():
        ref = full.forward_intermediates(x, indices=feat.feature_info.out_indices, norm=True,
                                         intermediates_only=True)
        out = feat(x)
    assert len(out) == len(ref)
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize('name', MODELS)
def test_parameter_count_matches_paper(name):
    assert name in PUBLISHED_PARAMS, f'add the published parameter count of {name}'
    with torch.device('meta'):
        model = timm.create_model(name)
        if hasattr(model, 'reparameterize'):  # published counts are of the deploy form
            model.reparameterize()
    count = sum(p.numel() for p in model.parameters()) / 1e6
    published = PUBLISHED_PARAMS[name]
    # published figures are rounded to the unit: within 1% or within the rounding
    assert abs(count - published) <= max(0.01 * published, 0.5), f'{name}: {count:.2f}M vs {published}M'


@pytest.mark.parametrize('name', MODELS)
def test_default_cfg(name):
    cfg = _first_tag(name)
    assert cfg is not None and (cfg.url or cfg.hf_hub_id), f'{name} has no weight source'
    for key in ('num_classes', 'input_size', 'mean', 'std', 'first_conv', 'classifier', 'license'):
        assert getattr(cfg, key) is not None, f'{name}: pretrained cfg lacks {key}'
    assert 'gatedvision' not in (cfg.hf_hub_id or '')


@pytest.mark.parametrize('name', MODELS)
def test_forward_backward(name):
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=7)
    x = torch.randn(2, 3, SMALL_INPUT, SMALL_INPUT)
    out = model(x)
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f'{name}: no gradient for {missing[:5]}'


@pytest.mark.parametrize('name', _smallest_per_kind(variants=True))
def test_bf16_autocast_forward_backward_close_to_fp32(name):
    """--amp on the CPU (bf16 autocast): every kind of model (each class and block variant: the
    dtypes are code of the kind, not the size) runs forward and backward, its logits within
    BF16_TOL (relative) of fp32's, a finite gradient for every parameter."""
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=7).eval()  # eval: the same BN statistics and no drop path
    x = torch.randn(1, 3, SMALL_INPUT, SMALL_INPUT)
    with torch.no_grad():
        ref = model(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(x)
    err = ((out.float() - ref).norm() / ref.norm()).item()
    assert err < BF16_TOL, f'{name}: bf16 logits {err:.3f} away from fp32 (relative)'
    out.float().square().mean().backward()
    bad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not bad, f'{name}: no finite gradient for {bad[:5]}'


@pytest.mark.parametrize('name', MODELS)
def test_features_only_matches_feature_info(name):
    model = timm.create_model(name, features_only=True).eval()
    h, w = 64, 96
    with torch.no_grad():
        feats = model(torch.randn(1, 3, h, w))
    info = model.feature_info
    assert len(feats) == len(info.channels())
    # a pyramid, or the single stride-16 map of a plain (isotropic) model
    assert info.reduction() in ([4, 8, 16, 32], [16])
    for f, c, r in zip(feats, info.channels(), info.reduction()):
        assert f.shape == (1, c, h // r, w // r)
    # every parameter left in the feature model is used
    sum(f.sum() for f in model(torch.randn(1, 3, h, w))).backward()
    assert all(p.grad is not None for p in model.parameters())


# the checkpoint filter is code of the kind (class and block variant), not of the size: saving and
# loading hornet_large's 800 MB for it cost 19 s
@pytest.mark.parametrize('name', _smallest_per_kind(variants=True))
def test_pretrained_round_trip_in_authors_layout(name, tmp_path):
    torch.manual_seed(0)
    src = timm.create_model(name).eval()
    path = tmp_path / 'weights.pth'
    torch.save({'model': src.state_dict()}, path)  # how the authors save their checkpoints
    dst = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
    x = torch.randn(1, 3, SMALL_INPUT, SMALL_INPUT)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)


@pytest.mark.parametrize('name', MODELS)
def test_bad_input_errors(name):
    model = timm.create_model(name).eval()
    with pytest.raises(ValueError, match=r'expects \(N, 3, H, W\)'):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match=r'needs H, W >= \d+|multiples of \d+'):
        model(torch.randn(1, 3, 8, 8))


@pytest.mark.parametrize('name', MODELS)
def test_group_matcher_covers_every_parameter(name):
    from timm.models import group_parameters
    with torch.device('meta'):
        model = timm.create_model(name, pretrained=False)
    stages = group_parameters(model, model.group_matcher(coarse=True), reverse=True)
    blocks = group_parameters(model, model.group_matcher(coarse=False), reverse=True)
    names = [n for n, _ in model.named_parameters()]
    assert set(stages) == set(blocks) == set(names)
    first = names[0]  # registered first: the stem, group 0 at both grains
    assert stages[first] == blocks[first] == 0
    assert len(set(blocks.values())) >= len(set(stages.values())) > 1  # equal for isotropic models


@pytest.mark.parametrize('name', _smallest_per_kind())
def test_grad_checkpointing_is_exact(name):
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=3)
    model.eval()  # no BN statistics updates in the recompute: an exact comparison
    x = torch.randn(1, 3, SMALL_INPUT, SMALL_INPUT)
    results = []
    for enable in (False, True):
        model.zero_grad()
        model.set_grad_checkpointing(enable)
        out = model(x)
        out.square().sum().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=0, atol=0)
    assert results[0][1].keys() == results[1][1].keys()
    for n, g in results[0][1].items():
        torch.testing.assert_close(results[1][1][n], g, rtol=1e-5, atol=1e-6, msg=lambda m: f'{n}: {m}')


def test_other_feature_extractors_are_refused_naming_the_one_to_use():
    """timm's ``feature_cls='fx'`` (or 'hook', 'list', 'dict') would not give the dense backbones'
    pyramid: every family says which extractor it takes, before building anything."""
    for name in _smallest_per_kind():
        for cls in ('fx', 'hook', FeatureListNet):
            with pytest.raises(ValueError, match=rf"{name}: features_only=True takes feature_cls='getter' "
                                                 rf".*not {re.escape(repr(cls))}.*leave feature_cls out"):
                timm.create_model(name, features_only=True, feature_cls=cls)
