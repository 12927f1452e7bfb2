# HorNet-L (GF) Cascade Mask R-CNN 3x, the authors' object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_large_gf_3x_coco_in22k.py. Released: https://cloud.tsinghua.edu.cn/f/597f655fe9b84d50bffb/?dl=1
# (box / mask AP 56.0 / 48.6); tools/test.py takes it as it is (docs/configs.md, "The authors' released checkpoints").
_base_ = [
    '../_base_/models/cascade-mask-rcnn_timm_fpn.py', '../_base_/datasets/coco_instance_ms-crop.py',
    '../_base_/runtimes/det.py', '../_base_/schedules/schedule_3x.py'
]
model = dict(
    backbone=dict(model_name='hornet_large_gf', drop_path_rate=0.7, img_size=384),
    neck=dict(in_channels=[192, 384, 768, 1536]),
)
# AdamW, layer-wise lr decay 0.7 over 12 layers (the authors' LearningRateDecayOptimizerConstructorHorNet)
optim_wrapper = dict(
    constructor='gatedvision.LayerDecayOptimWrapperConstructor',
    optimizer=dict(lr=0.0001, weight_decay=0.05),
    paramwise_cfg=dict(_delete_=True, decay_rate=0.7, decay_type='layer_wise', num_layers=12))
