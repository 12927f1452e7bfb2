# AGUNet on ViG-H-T (hierarchical gated linear attention, ImageNet-1k weights, first conv adapted
# to 4 channels) on MSD Task01 BrainTumour / nnU-Net Dataset001, axial 2-D slices.
_base_ = [
    '../_base_/models/agunet_timm.py', '../_base_/datasets/nnunet.py',
    '../_base_/runtimes/medseg.py', '../_base_/schedules/medseg_20k.py'
]
model = dict(
    backbone=dict(model_name='vig_h_tiny', in_channels=4, drop_path_rate=0.2),
    num_classes=4)
