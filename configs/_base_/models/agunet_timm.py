# AGUNet-style attention-gated U-Net (gatedvision.AttentionUNetHead) on any timm backbone with a
# 4-level pyramid; MONAI Dice + CE with deep supervision at strides 1 (main), 2, 4, 8.
model = dict(
    type='gatedvision.MedSegmentor',
    data_preprocessor=dict(type='gatedvision.MedSegDataPreProcessor'),
    # in_channels = image channels x (2 * context + 1); timm adapts pretrained first convs
    backbone=dict(type='gatedvision.TimmBackbone', model_name='hornet_tiny_7x7', pretrained=True,
                  in_channels=1, drop_path_rate=0.1),
    head=dict(type='gatedvision.AttentionUNetHead', channels=(256, 128, 64, 32, 16),
              stem_channels=(16, 32), attention=True, input_pyramid=True,
              deep_supervision=(2, 4, 8)),
    num_classes=2,
    loss=dict(type='DiceCELoss', to_onehot_y=True, softmax=True, batch=True),
    deep_supervision_weights=None,  # 1, 1/2, 1/4, 1/8 normalised to sum 1
    test_cfg=dict(slice_batch=16))
