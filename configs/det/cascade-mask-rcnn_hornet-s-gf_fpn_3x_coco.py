# HorNet-S (GF) Cascade Mask R-CNN 3x, the authors' object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_small_gf_3x_coco_in1k.py. Released:
# https://cloud.tsinghua.edu.cn/f/fd9a3127b18f404d8e95/?dl=1 (box / mask AP 53.3 / 46.3); tools/test.py takes it
# as it is (docs/configs.md, "The authors' released checkpoints").
_base_ = './cascade-mask-rcnn_hornet-t-7x7_fpn_3x_coco.py'
model = dict(
    backbone=dict(model_name='hornet_small_gf', drop_path_rate=0.6),
    neck=dict(in_channels=[96, 192, 384, 768]),
)
