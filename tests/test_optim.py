"""The per-paper optimizer recipes: HorNet's layer-wise learning-rate decay."""
import pytest
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope, MODELS

from gatedvision.engine.config import load_config
from gatedvision.engine.optim import layer_id


def _groups(config):
    cfg = load_config(config)
    cfg.model.backbone.pretrained = False
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for g in wrapper.optimizer.param_groups:
        for p in g['params']:
            out[names[id(p)]] = (g['lr'], g['weight_decay'])
    assert len(out) == sum(1 for p in model.parameters() if p.requires_grad)
    return out, cfg.optim_wrapper.optimizer


def test_hornet_upernet_stage_wise_decay():
    groups, opt = _groups('configs/seg/upernet_hornet-t-7x7_8xb2-160k_ade20k-512x512.py')
    lr = opt.lr
    assert lr == 1e-4 and opt.weight_decay == 0.05
    bb = 'backbone.model.model.'
    # num_layers=6: scale 0.9 ** (7 - depth); the stem and downsamplers are depth 0
    assert groups[bb + 'downsample_layers.0.0.weight'] == pytest.approx((lr * 0.9 ** 7, 0.05))
    assert groups[bb + 'stages.0.1.pwconv1.weight'] == pytest.approx((lr * 0.9 ** 6, 0.05))
    assert groups[bb + 'stages.3.1.pwconv2.weight'] == pytest.approx((lr * 0.9 ** 3, 0.05))
    assert groups[bb + 'stages.3.1.pwconv2.bias'] == pytest.approx((lr * 0.9 ** 3, 0.0))
    # the output norms, the neck and the heads train at the base lr; 1-D tensors without decay
    assert groups[bb + 'norm0.weight'] == pytest.approx((lr, 0.0))
    assert groups['decode_head.conv_seg.weight'] == pytest.approx((lr, 0.05))


def test_hornet_detection_layer_wise_decay():
    groups, opt = _groups('configs/det/retinanet_hornet-t-7x7_fpn_1x_coco.py')
    lr = opt.lr
    assert lr == 2e-4
    bb = 'backbone.model.model.'
    # num_layers=12, rate 0.7: scale 0.7 ** (13 - depth); stage 3 (blocks 0, 1) is two deep blocks
    assert groups[bb + 'stages.2.5.gnconv.dwconv.weight'][0] == pytest.approx(lr * 0.7 ** (13 - 5))
    assert groups[bb + 'stages.2.0.gnconv.dwconv.weight'][0] == pytest.approx(lr * 0.7 ** (13 - 3))
    assert groups[bb + 'downsample_layers.3.1.weight'][0] == pytest.approx(lr * 0.7)
    assert groups['bbox_head.retina_cls.weight'] == pytest.approx((lr, 0.05))


def test_layer_id_rules_and_errors():
    assert layer_id('backbone.model.stages.2.30.x.weight', 12, 'layer_wise') == 11  # capped
    assert layer_id('neck.stages.0.0.weight', 12, 'layer_wise') == 13  # not the backbone
    from gatedvision.engine.optim import LayerDecayOptimWrapperConstructor
    with pytest.raises(ValueError, match='paramwise_cfg needs decay_rate and num_layers'):
        LayerDecayOptimWrapperConstructor(
            dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)),
            dict(decay_rate=0.9, num_layer=6))(nn.Linear(2, 2))


@pytest.mark.parametrize('name', ['overlock_xt', 'vig_h_tiny', 'halonet26t'])
def test_block_wise_decay_follows_the_group_matcher(name):
    import timm
    from timm.models import group_parameters
    from gatedvision.tasks import TimmBackbone
    model = nn.ModuleDict(dict(backbone=TimmBackbone(name), neck=nn.Conv2d(4, 4, 1)))
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        constructor='gatedvision.LayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(decay_rate=0.8, decay_type='block_wise')))
    lr = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    # the reference: timm's own grouping of the model with its dense norms, by parameter name
    full = timm.create_model(name, **({} if name == 'halonet26t' else dict(dense_norms=True)))
    layer = group_parameters(full, full.group_matcher(coarse=False), reverse=True)

    def original(n):  # FeatureGetterNet: model.<name>; FeatureListNet: stages_0.x -> stages.0.x
        if n.startswith('model.'):
            return n[len('model.'):]
        head, _, rest = n.partition('.')
        return head.replace('_', '.', 1) + '.' + rest

    ours = {original(n): p for n, p in model.backbone.model.named_parameters()}
    deepest = max(layer[n] for n in ours)
    for n, p in ours.items():
        assert lr[id(p)] == pytest.approx(1e-3 * 0.8 ** (deepest + 1 - layer[n])), n
    assert lr[id(model.neck.weight)] == pytest.approx(1e-3)
    assert len({lr[id(p)] for p in ours.values()}) == deepest + 1  # one learning rate per block


def test_convnext_rule_refuses_another_layout():
    from gatedvision.tasks import TimmBackbone
    model = nn.ModuleDict(dict(backbone=TimmBackbone('overlock_xt')))
    with pytest.raises(ValueError, match="needs a backbone laid out as 'downsample_layers.i'.*block_wise"):
        build_optim_wrapper(model, dict(
            type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3),
            constructor='gatedvision.LayerDecayOptimWrapperConstructor',
            paramwise_cfg=dict(decay_rate=0.8, decay_type='layer_wise', num_layers=12)))


@pytest.mark.parametrize('name', ['hornet_tiny_7x7', 'vig_h_tiny', 'overlock_xt', 'convit_tiny_dense', 'biformer_tiny'])
def test_block_wise_scales_are_timms_layer_decay(name):
    """decay_type='block_wise' gives every backbone parameter the scale timm's
    ``param_groups_layer_decay`` gives it in the classification model (dense-only output norms join
    their block; they add no depth), and a module outside the backbone the base learning rate."""
    import timm
    from timm.optim import param_groups_layer_decay

    from gatedvision.engine import TimmBackbone
    model = nn.Module()
    model.backbone, model.neck = TimmBackbone(name), nn.Conv2d(3, 3, 1)
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
        constructor='gatedvision.LayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(decay_rate=0.9, decay_type='block_wise')))
    ours = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    full = timm.create_model(name)
    names = {id(p): n for n, p in full.named_parameters()}
    timms = {names[id(p)]: g['lr_scale'] for g in param_groups_layer_decay(full, layer_decay=0.9) for p in g['params']}
    _, original = model.backbone._full_model()
    shared = [(ours[id(p)], timms[original(n)]) for n, p in model.backbone.model.named_parameters()
              if original(n) in timms]
    assert len(shared) > 0.95 * len(list(model.backbone.parameters()))
    assert max(abs(a - b) for a, b in shared) < 1e-12
    assert ours[id(model.neck.weight)] == 1.0
