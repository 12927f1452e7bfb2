# HorNet-B (GF) UPerNet 160k, the authors' semantic_segmentation/configs/hornet/
# upernet_hornet_base_gf_512_160k_ade20k.py. Released: https://cloud.tsinghua.edu.cn/f/e50ecead21e4408187b7/?dl=1
# (mIoU 50.5; 50.9 with multi-scale + flip); tools/test.py takes it as it is (docs/configs.md).
_base_ = './upernet_hornet-t-7x7_8xb2-160k_ade20k-512x512.py'
# GF: the authors' segmentation filters are h, w = 24, 13 / 12, 7, what hornet_*_gf builds for img_size=384
model = dict(
    backbone=dict(model_name='hornet_base_gf', drop_path_rate=0.5, img_size=384),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512),
)
optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.9, num_layers=12))
