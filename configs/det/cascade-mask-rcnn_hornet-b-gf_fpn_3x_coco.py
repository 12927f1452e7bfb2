# HorNet-B (GF) Cascade Mask R-CNN 3x, the authors' object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_base_gf_3x_coco_in1k.py. Released: https://cloud.tsinghua.edu.cn/f/97d8587c8a0248fcac19/?dl=1
# (box / mask AP 54.0 / 46.9); tools/test.py takes it as it is (docs/configs.md, "The authors' released checkpoints").
_base_ = './cascade-mask-rcnn_hornet-t-7x7_fpn_3x_coco.py'
model = dict(
    backbone=dict(model_name='hornet_base_gf', drop_path_rate=0.7),
    neck=dict(in_channels=[128, 256, 512, 1024]),
)
optim_wrapper = dict(optimizer=dict(lr=0.0002), paramwise_cfg=dict(decay_rate=0.8))
