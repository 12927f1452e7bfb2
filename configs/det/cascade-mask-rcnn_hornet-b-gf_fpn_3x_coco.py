# HorNet-B (GF) Cascade Mask R-CNN 3x, the authors' object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_base_gf_3x_coco_in1k.py. Released: https://cloud.tsinghua.edu.cn/f/97d8587c8a0248fcac19/?dl=1
# (box / mask AP 54.0 / 46.9); tools/test.py takes it as it is (docs/configs.md, "The authors' released checkpoints").
_base_ = [
    '../_base_/models/cascade-mask-rcnn_timm_fpn.py', '../_base_/datasets/coco_instance_ms-crop.py',
    '../_base_/runtimes/det.py', '../_base_/schedules/schedule_3x.py'
]
model = dict(
    backbone=dict(model_name='hornet_base_gf', drop_path_rate=0.7),
    neck=dict(in_channels=[128, 256, 512, 1024]),
)
# AdamW, layer-wise lr decay 0.8 over 12 layers (the authors' LearningRateDecayOptimizerConstructorHorNet)
optim_wrapper = dict(
    constructor='gatedvision.LayerDecayOptimWrapperConstructor',
    optimizer=dict(lr=0.0002, weight_decay=0.05),
    paramwise_cfg=dict(_delete_=True, decay_rate=0.8, decay_type='layer_wise', num_layers=12))
