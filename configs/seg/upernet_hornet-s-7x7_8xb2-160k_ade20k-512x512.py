# HorNet-S (7x7) UPerNet 160k, the authors' semantic_segmentation/configs/hornet/
# upernet_hornet_small_7x7_512_160k_ade20k.py. Released: https://cloud.tsinghua.edu.cn/f/0e488e21a88d414da90c/?dl=1
# (mIoU 49.2; 49.8 with multi-scale + flip); tools/test.py takes it as it is (docs/configs.md).
_base_ = './upernet_hornet-t-7x7_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(model_name='hornet_small_7x7', drop_path_rate=0.3),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384),
)
optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.9, num_layers=12))
