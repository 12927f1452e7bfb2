# HorNet-B (7x7) Cascade Mask R-CNN 3x, the authors' object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_base_7x7_3x_coco_in1k.py. Released:
# https://cloud.tsinghua.edu.cn/f/324de62466a848129e19/?dl=1 (box / mask AP 53.3 / 46.1); tools/test.py takes it
# as it is (docs/configs.md, "The authors' released checkpoints").
_base_ = './cascade-mask-rcnn_hornet-t-7x7_fpn_3x_coco.py'
model = dict(
    backbone=dict(model_name='hornet_base_7x7', drop_path_rate=0.7),
    neck=dict(in_channels=[128, 256, 512, 1024]),
)
optim_wrapper = dict(optimizer=dict(lr=0.0002), paramwise_cfg=dict(decay_rate=0.8))
