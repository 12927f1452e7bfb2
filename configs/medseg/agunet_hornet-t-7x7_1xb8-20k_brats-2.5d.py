# 2.5-D: each axial slice with one neighbour on either side, 4 channels x 3 slices = 12 inputs.
_base_ = [
    '../_base_/models/agunet_timm.py', '../_base_/datasets/nnunet.py',
    '../_base_/runtimes/medseg.py', '../_base_/schedules/medseg_20k.py'
]
slices = dict(axis=2, context=1, normalize='zscore')
train_dataloader = dict(dataset=dict(**slices))
val_dataloader = dict(dataset=dict(**slices))
test_dataloader = val_dataloader
model = dict(
    backbone=dict(model_name='hornet_tiny_7x7', in_channels=12, drop_path_rate=0.2),
    num_classes=4)
