_base_ = [
    '../_base_/models/mask-rcnn_timm_fpn.py', '../_base_/datasets/coco_instance.py',
    '../_base_/runtimes/det.py', '../_base_/schedules/schedule_1x.py'
]
model = dict(backbone=dict(model_name='hornet_tiny_7x7', drop_path_rate=0.4))
# HorNet-T's detection recipe: AdamW lr 2e-4, layer-wise lr decay 0.7 over 12 layers
optim_wrapper = dict(
    constructor='gatedvision.LayerDecayOptimWrapperConstructor', optimizer=dict(lr=2e-4),
    paramwise_cfg=dict(_delete_=True, decay_rate=0.7, decay_type='layer_wise', num_layers=12))
