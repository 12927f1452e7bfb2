# HorNet-L (GF) Cascade Mask R-CNN 3x, the authors' object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_large_gf_3x_coco_in22k.py. Released:
# https://cloud.tsinghua.edu.cn/f/597f655fe9b84d50bffb/?dl=1 (box / mask AP 56.0 / 48.6); tools/test.py takes it
# as it is (docs/configs.md, "The authors' released checkpoints").
_base_ = './cascade-mask-rcnn_hornet-t-7x7_fpn_3x_coco.py'
# the authors' h, w = 24, 13 / 12, 7: the filters hornet_large_gf builds for img_size=384
model = dict(
    backbone=dict(model_name='hornet_large_gf', drop_path_rate=0.7, img_size=384),
    neck=dict(in_channels=[192, 384, 768, 1536]),
)
optim_wrapper = dict(optimizer=dict(lr=0.0001), paramwise_cfg=dict(decay_rate=0.7))
