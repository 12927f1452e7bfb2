# Semantic FPN (mmseg's FPN neck + FPNHead) on a timm backbone through the bridge.
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
    backbone=dict(type='gatedvision.TimmBackbone', model_name='halonet26t', pretrained=True),
    neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=4),
    decode_head=dict(
        type='FPNHead', in_channels=[256, 256, 256, 256], in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32], channels=128, dropout_ratio=0.1, num_classes=150,
        norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
