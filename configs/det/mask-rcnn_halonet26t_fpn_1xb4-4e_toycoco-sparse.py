# Mask R-CNN on halonet26t trained from scratch on the sparse toy shapes (1-3 shapes apart from each
# other, 256 px). Measured on 2 CPU cores:
# bbox mAP 0.477, segm mAP 0.547 after 4 epochs (64 iterations, about 2.5 min). FPN and heads are
# slimmed to 128 channels for the CPU. It is also the shared toy detection recipe of tools/compare.py
# (docs/configs.md: why LayerNorm-output backbones once failed it).
_base_ = [
    '../_base_/models/mask-rcnn_timm_fpn.py', '../_base_/datasets/toycoco.py',
    '../_base_/runtimes/det.py', '../_base_/schedules/schedule_1x.py'
]
_toy = dict(num_images=(64, 16), image_size=256, sparse=True)
model = dict(
    backbone=dict(model_name='halonet26t', pretrained=False),  # no downloads: trained from scratch
    neck=dict(in_channels=[256, 512, 1024, 2048], out_channels=128),
    rpn_head=dict(in_channels=128, feat_channels=128),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128), mask_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=256, num_classes=4),
        mask_head=dict(in_channels=128, conv_out_channels=128, num_classes=4)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=128))))
# no rescaling: halonet26t pads every side to a multiple of 256
train_pipeline = [
    dict(type='gatedvision.LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(batch_size=4, num_workers=1, dataset=dict(pipeline=train_pipeline, **_toy))
val_dataloader = dict(dataset=_toy)
test_dataloader = val_dataloader
val_evaluator = _toy
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(lr=3e-4), clip_grad=dict(max_norm=10.0))
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30)]
train_cfg = dict(max_epochs=4, val_interval=4)
default_hooks = dict(logger=dict(interval=8), checkpoint=dict(interval=4))
randomness = dict(seed=0)
