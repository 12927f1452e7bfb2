# Mask R-CNN on hornet_tiny_7x7 from scratch on the toy COCO shapes; CPU-friendly.
_base_ = [
    '../_base_/models/mask-rcnn_timm_fpn.py', '../_base_/datasets/toycoco.py',
    '../_base_/runtimes/det.py', '../_base_/schedules/schedule_1x.py'
]
model = dict(
    backbone=dict(pretrained=False),  # no downloads: trained from scratch
    roi_head=dict(bbox_head=dict(num_classes=4), mask_head=dict(num_classes=4)))
optim_wrapper = dict(optimizer=dict(lr=3e-4))
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20)]
train_cfg = dict(max_epochs=2)
default_hooks = dict(logger=dict(interval=10))
randomness = dict(seed=0)
