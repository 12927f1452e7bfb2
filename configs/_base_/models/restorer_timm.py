# A gated backbone + the NAFNet-style U-decoder, global residual, L1 loss; images larger than
# 512 px are restored in overlapping tiles.
model = dict(
    type='Restorer',
    backbone=dict(type='TimmBackbone', model_name='hornet_tiny_7x7', pretrained=True,
                  size_divisor='auto'),
    decode_head=dict(type='RestorationDecoder', channels=(64, 128, 256, 256),
                     shallow_channels=(32, 48), num_blocks=(1, 1, 1, 1, 1)),
    pixel_loss=dict(type='L1Loss'),
    test_cfg=dict(tile=512, tile_overlap=32))
