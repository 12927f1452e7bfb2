# Deraining: train on Rain13K (data/Rain13K/train/{input,target}), test on Rain100H (swap the test
# folder for Rain100L, Test100, Test1200, Test2800); PSNR / SSIM on the Y channel, as reported.
_base_ = ['./gopro.py']
train_dataloader = dict(dataset=dict(data_root='data/Rain13K/train'))
val_dataloader = dict(dataset=dict(data_root='data/Rain13K/test/Rain100H'))
test_dataloader = val_dataloader
val_evaluator = [dict(type='PSNR', convert_to='y'), dict(type='SSIM', convert_to='y')]
test_evaluator = val_evaluator
