# Penn-Fudan pedestrians (python tools/download.py --dataset pennfudan): 170 photographs, 345+
# pedestrians with instance masks, converted to COCO JSON; the torchvision tutorial's split (the
# last 50 images by name held out). Mask R-CNN on HorNet-T from its ImageNet weights, the COCO
# recipe on one GPU with batch 4. Not trained here (no GPU): docs/your-data.md says what is measured.
_base_ = ['./mask-rcnn_hornet-t-7x7_fpn_1x_coco.py']
data_root = 'data/PennFudanPed/'
metainfo = dict(classes=('person',))
model = dict(roi_head=dict(bbox_head=dict(num_classes=1), mask_head=dict(num_classes=1)))
train_dataloader = dict(batch_size=4, dataset=dict(
    data_root=data_root, metainfo=metainfo,
    ann_file='annotations/train.json', data_prefix=dict(img='PNGImages/')))
val_dataloader = dict(dataset=dict(
    data_root=data_root, metainfo=metainfo,
    ann_file='annotations/val.json', data_prefix=dict(img='PNGImages/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
