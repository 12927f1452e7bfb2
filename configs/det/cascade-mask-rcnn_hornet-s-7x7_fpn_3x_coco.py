# HorNet-S (7x7) Cascade Mask R-CNN 3x, the authors' object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_small_7x7_3x_coco_in1k.py. Released:
# https://cloud.tsinghua.edu.cn/f/6af0439735dc473f8646/?dl=1 (box / mask AP 52.7 / 45.6); tools/test.py takes it
# as it is (docs/configs.md, "The authors' released checkpoints").
_base_ = './cascade-mask-rcnn_hornet-t-7x7_fpn_3x_coco.py'
model = dict(
    backbone=dict(model_name='hornet_small_7x7', drop_path_rate=0.6),
    neck=dict(in_channels=[96, 192, 384, 768]),
)
