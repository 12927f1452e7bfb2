# AGUNet on HorNet-T 7x7 (ImageNet-1k weights; the first conv adapted to 4 channels by timm) on
# MSD Task01 BrainTumour / nnU-Net Dataset001 (FLAIR, T1w, T1gd, T2w), axial 2-D slices.
_base_ = [
    '../_base_/models/agunet_timm.py', '../_base_/datasets/nnunet.py',
    '../_base_/runtimes/medseg.py', '../_base_/schedules/medseg_20k.py'
]
model = dict(
    backbone=dict(model_name='hornet_tiny_7x7', in_channels=4, drop_path_rate=0.2),
    num_classes=4)  # background, oedema, non-enhancing tumour, enhancing tumour
