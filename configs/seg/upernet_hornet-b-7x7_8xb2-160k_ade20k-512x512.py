# HorNet-B (7x7) UPerNet 160k, the authors' semantic_segmentation/configs/hornet/
# upernet_hornet_base_7x7_512_160k_ade20k.py. Released: https://cloud.tsinghua.edu.cn/f/98288e9023c2425a880c/?dl=1
# (mIoU 50.0; 50.5 with multi-scale + flip); tools/test.py takes it as it is (docs/configs.md).
_base_ = './upernet_hornet-t-7x7_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(model_name='hornet_base_7x7'),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512),
)
optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.9, num_layers=12))
