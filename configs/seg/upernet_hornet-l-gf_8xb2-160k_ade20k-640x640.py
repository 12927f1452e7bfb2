# HorNet-L (GF) UPerNet 160k, the authors' semantic_segmentation/configs/hornet/
# upernet_hornet_large_gf_640_160k_ade20k.py. Released: https://cloud.tsinghua.edu.cn/f/3dbb38bae1694653a666/?dl=1
# (mIoU 55.0; 55.2 with multi-scale + flip); tools/test.py takes it as it is (docs/configs.md).
_base_ = './upernet_hornet-l-7x7_8xb2-160k_ade20k-640x640.py'
# GF: the authors' segmentation filters are h, w = 24, 13 / 12, 7, what hornet_*_gf builds for img_size=384
model = dict(
    backbone=dict(model_name='hornet_large_gf', img_size=384),
)
