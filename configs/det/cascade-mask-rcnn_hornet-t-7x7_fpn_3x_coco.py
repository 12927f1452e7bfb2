# HorNet-T (7x7) Cascade Mask R-CNN 3x, the authors' object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_tiny_7x7_3x_coco_in1k.py. Released:
# https://cloud.tsinghua.edu.cn/f/19daa3854a6b4c75bf23/?dl=1 (box / mask AP 51.7 / 44.8); tools/test.py takes it
# as it is (docs/configs.md, "The authors' released checkpoints").
_base_ = [
    '../_base_/models/cascade-mask-rcnn_timm_fpn.py', '../_base_/datasets/coco_instance_ms-crop.py',
    '../_base_/runtimes/det.py', '../_base_/schedules/schedule_3x.py'
]
model = dict(
    backbone=dict(model_name='hornet_tiny_7x7', drop_path_rate=0.4),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
# AdamW, layer-wise lr decay 0.7 over 12 layers (the authors' LearningRateDecayOptimizerConstructorHorNet)
optim_wrapper = dict(
    constructor='gatedvision.LayerDecayOptimWrapperConstructor',
    optimizer=dict(lr=0.0002, weight_decay=0.05),
    paramwise_cfg=dict(_delete_=True, decay_rate=0.7, decay_type='layer_wise', num_layers=12))
