# HorNet-T (GF) Cascade Mask R-CNN 3x, the authors' object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_tiny_gf_3x_coco_in1k.py. Released: https://cloud.tsinghua.edu.cn/f/1ca353fb6ac44b54a2d8/?dl=1
# (box / mask AP 52.4 / 45.6); tools/test.py takes it as it is (docs/configs.md, "The authors' released checkpoints").
_base_ = './cascade-mask-rcnn_hornet-t-7x7_fpn_3x_coco.py'
model = dict(
    backbone=dict(model_name='hornet_tiny_gf'),
)
