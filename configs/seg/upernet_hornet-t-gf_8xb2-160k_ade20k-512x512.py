# HorNet-T (GF) UPerNet 160k, the authors' semantic_segmentation/configs/hornet/
# upernet_hornet_tiny_gf_512_160k_ade20k.py. Released: https://cloud.tsinghua.edu.cn/f/34725e1401194786bb76/?dl=1
# (mIoU 49.2; 49.3 with multi-scale + flip); tools/test.py takes it as it is (docs/configs.md).
_base_ = './upernet_hornet-t-7x7_8xb2-160k_ade20k-512x512.py'
# GF: the authors' segmentation filters are h, w = 24, 13 / 12, 7, what hornet_*_gf builds for img_size=384
model = dict(
    backbone=dict(model_name='hornet_tiny_gf', img_size=384),
)
