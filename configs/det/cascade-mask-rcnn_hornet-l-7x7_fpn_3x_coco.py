# HorNet-L (7x7) Cascade Mask R-CNN 3x, the authors' object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_large_7x7_3x_coco_in22k.py. Released:
# https://cloud.tsinghua.edu.cn/f/975af666e64840588e3e/?dl=1 (box / mask AP 55.4 / 48.0); tools/test.py takes it
# as it is (docs/configs.md, "The authors' released checkpoints").
_base_ = './cascade-mask-rcnn_hornet-t-7x7_fpn_3x_coco.py'
model = dict(
    backbone=dict(model_name='hornet_large_7x7', drop_path_rate=0.7),
    neck=dict(in_channels=[192, 384, 768, 1536]),
)
optim_wrapper = dict(optimizer=dict(lr=0.0001), paramwise_cfg=dict(decay_rate=0.7))
