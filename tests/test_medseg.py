"""Medical segmentation: attention gates, deep supervision, NIfTI I/O, metrics, the nnU-Net reader's
errors, and a short CPU training on the demo volumes through the tools."""
import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from conftest import run_tool
from gatedvision.heads.attention_unet import AttentionGate, AttentionUNetHead
from gatedvision.tasks.medseg import (MedSegMetric, NnUNetSliceDataset, deep_supervision_loss,
                                      make_toy_medseg, stack_slices, volume_scores)
from gatedvision.tasks.medseg.io import load_case, read_dataset, save_label

CONFIG = 'configs/medseg/agunet_hornet-t-7x7-slim_1xb8-400i_toymedseg.py'
ITERS = 120


# ---------------------------------------------------------------- network
def test_attention_gate_coefficients_shapes_and_gradients():
    torch.manual_seed(0)
    gate = AttentionGate(gate_channels=8, skip_channels=6, inter_channels=4)
    g = torch.randn(2, 8, 10, 12, requires_grad=True)
    x = torch.randn(2, 6, 10, 12, requires_grad=True)
    alpha = gate.coefficients(g, x)
    assert alpha.shape == (2, 1, 10, 12)
    assert alpha.min() >= 0 and alpha.max() <= 1
    out = gate(g, x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, x * alpha)
    out.square().sum().backward()
    assert g.grad.abs().sum() > 0 and x.grad.abs().sum() > 0
    for name, p in gate.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize('attention,pyramid', [(True, True), (False, False)])
def test_head_outputs_full_resolution_and_deep_supervision(attention, pyramid):
    head = AttentionUNetHead([8, 16, 24, 32], image_channels=3, num_classes=4,
                             channels=(32, 16, 16, 8, 8), stem_channels=(8, 8),
                             attention=attention, input_pyramid=pyramid, deep_supervision=(2, 8))
    image = torch.randn(2, 3, 64, 96)
    feats = [torch.randn(2, c, 64 // s, 96 // s) for c, s in zip([8, 16, 24, 32], [4, 8, 16, 32])]
    outs = head(feats, image)
    assert [tuple(o.shape) for o in outs] == [(2, 4, 64, 96), (2, 4, 32, 48), (2, 4, 8, 12)]
    assert all(g is not None for g in head.gates) == attention
    sum(o.mean() for o in outs).backward()
    assert all(p.grad is not None for p in head.parameters())


def test_head_rejects_a_plain_backbone():
    with pytest.raises(ValueError, match='4-level pyramid at strides 4/8/16/32'):
        AttentionUNetHead([384], in_strides=(16,))


def test_plain_backbone_through_a_simple_pyramid_neck():
    """ConViT (one stride-16 map) feeds the U-Net head through the neck: strides 4/8/16/32 come
    from the neck's scales, and the logits are at the (padded-then-cropped) input size."""
    from mmengine.registry import MODELS, DefaultScope
    import gatedvision.tasks.medseg  # noqa: F401  (registers the model, the bridge, the neck and the head)
    with DefaultScope.overwrite_default_scope('gatedvision'):  # the medseg configs' scope (MONAI's loss)
        model = MODELS.build(dict(
            type='MedSegmentor', num_classes=3,
            backbone=dict(type='TimmBackbone', model_name='convit_tiny_dense', pretrained=False, in_channels=1),
            neck=dict(type='SimplePyramid', out_channels=None, norm_cfg=dict(type='BN')),
            head=dict(type='AttentionUNetHead', channels=(32, 16, 16, 8, 8), stem_channels=(8, 8))))
    assert model.neck.out_strides(model.backbone.out_strides) == [4, 8, 16, 32]
    assert model.head.deep_supervision  # the default supervises coarser outputs too
    outs = model._logits(torch.randn(2, 1, 48, 80))
    assert tuple(outs[0].shape) == (2, 3, 48, 80)
    sum(o.mean() for o in outs).backward()
    assert model.neck.stages[0][0].weight.grad is not None


def test_deep_supervision_weighting_known_answer():
    seen = []

    def loss_fn(logits, target):  # the mean logit, recording the target it was given
        seen.append(tuple(target.shape))
        return logits.mean()

    outputs = [torch.full((2, 3, 8, 8), 1.0), torch.full((2, 3, 4, 4), 2.0),
               torch.full((2, 3, 2, 2), 4.0)]
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    losses = deep_supervision_loss(outputs, target, loss_fn, weights=(1, 0.5, 0.25))
    # (1*1 + 0.5*2 + 0.25*4) / 1.75
    assert set(losses) == {'loss_s1', 'loss_s2', 'loss_s4'}
    torch.testing.assert_close(sum(losses.values()), torch.tensor(3 / 1.75))
    torch.testing.assert_close(losses['loss_s2'], torch.tensor(1 / 1.75))
    assert seen == [(2, 1, 8, 8), (2, 1, 4, 4), (2, 1, 2, 2)]
    with pytest.raises(ValueError, match='3 outputs but 2'):
        deep_supervision_loss(outputs, target, loss_fn, weights=(1, 1))


def test_stack_slices_25d_order_and_edges():
    vol = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # (C, X, Y, Z)
    out = stack_slices(vol, axis=2, index=[0, 3], context=1)
    assert out.shape == (2, 6, 3, 4)
    # channel-major: C0[z-1, z, z+1], C1[...]; the first slice repeats itself at the edge
    np.testing.assert_array_equal(out[0, 0], vol[0, :, :, 0])
    np.testing.assert_array_equal(out[0, 2], vol[0, :, :, 1])
    np.testing.assert_array_equal(out[1, 3], vol[1, :, :, 2])
    np.testing.assert_array_equal(out[1, 5], vol[1, :, :, 4])
    np.testing.assert_array_equal(stack_slices(torch.from_numpy(vol), 0, [1], 2).numpy(),
                                  stack_slices(vol, 0, [1], 2))


# ---------------------------------------------------------------- I/O and metrics
def _affine_permuted():
    # voxel axis i -> +y (anterior), j -> -z (inferior), k -> -x (left): a non-RAS order
    aff = np.array([[0, 0, -2.5, 40], [1.5, 0, 0, -30], [0, -2.0, 0, 25], [0, 0, 0, 1.]])
    return aff


def test_nifti_round_trip_keeps_affine_shape_and_voxels(tmp_path):
    from gatedvision.tasks.medseg.io import Case
    rng = np.random.default_rng(0)
    image = rng.normal(size=(6, 7, 8)).astype(np.float32)
    label = rng.integers(0, 3, size=(6, 7, 8)).astype(np.uint8)
    aff = _affine_permuted()
    nib.save(nib.Nifti1Image(image, aff), str(tmp_path / 'c_0000.nii.gz'))
    nib.save(nib.Nifti1Image(label, aff), str(tmp_path / 'c.nii.gz'))
    case = Case('c', [tmp_path / 'c_0000.nii.gz'], tmp_path / 'c.nii.gz')
    data = load_case(case)
    # canonical (RAS): the axes are permuted, the spacing follows them
    assert data['image'].shape == (1, 8, 6, 7) and data['label'].shape == (8, 6, 7)
    assert data['spacing'] == (2.5, 1.5, 2.0)
    np.testing.assert_array_equal(data['label'], label.transpose(2, 0, 1)[::-1, :, ::-1])
    out = save_label(data['label'], tmp_path / 'pred.nii.gz', data['affine'], data['header'])
    back = nib.load(str(out))
    assert back.shape == label.shape
    np.testing.assert_allclose(back.affine, aff)
    np.testing.assert_array_equal(np.asarray(back.dataobj), label)
    assert back.get_data_dtype() == np.uint8


def _cube(shape, start, size):
    v = np.zeros(shape, np.uint8)
    v[tuple(slice(s, s + size) for s in start)] = 1
    return v


def test_dice_and_hd95_known_answers():
    gt = _cube((24, 24, 24), (5, 5, 5), 6)
    pred = _cube((24, 24, 24), (7, 5, 5), 6)  # shifted 2 voxels along x
    dice, hd = volume_scores(pred, gt, 2, spacing=(1, 1, 1))
    np.testing.assert_allclose(dice, [4 / 6], rtol=1e-5)  # overlap 4 of 6 slabs
    np.testing.assert_allclose(hd, [2.0])
    _, hd = volume_scores(pred, gt, 2, spacing=(3, 1, 1))  # mm along the shifted axis
    np.testing.assert_allclose(hd, [6.0])
    # class 1 missed entirely, class 2 absent from the ground truth
    dice, hd = volume_scores(np.zeros_like(gt), gt, 3, spacing=(1, 1, 1))
    assert dice[0] == 0 and hd[0] == pytest.approx(np.sqrt(3 * 24 ** 2))
    assert np.isnan(dice[1]) and np.isnan(hd[1])


def test_metric_averages_over_volumes():
    gt = _cube((16, 16, 16), (4, 4, 4), 4)
    metric = MedSegMetric()
    metric.dataset_meta = dict(classes=('background', 'lesion'))
    metric.process(None, [dict(name='a', pred=gt, gt=gt, spacing=(1, 1, 1), affine=np.eye(4)),
                          dict(name='b', pred=_cube((16, 16, 16), (5, 4, 4), 4), gt=gt,
                               spacing=(1, 1, 1), affine=np.eye(4))])
    res = metric.evaluate(2)
    assert res['Dice/lesion'] == pytest.approx((1 + 0.75) / 2, abs=1e-5)
    assert res['HD95/lesion'] == pytest.approx(0.5)
    assert res['mDice'] == res['Dice/lesion']


# ---------------------------------------------------------------- dataset
@pytest.fixture(scope='module')
def small_toy(tmp_path_factory):
    return make_toy_medseg(tmp_path_factory.mktemp('toy') / 'ds', num_train=2, num_val=1)


def _copy(src, tmp_path):
    dst = tmp_path / 'ds'
    shutil.copytree(src, dst)
    return dst


def test_toy_dataset_layout_and_determinism(small_toy, tmp_path):
    info = read_dataset(small_toy)
    assert info.channel_names == ['T1'] and info.class_names == ['background', 'tumour', 'oedema']
    assert [c.name for c in info.cases] == ['lesion_000', 'lesion_001', 'lesion_002']
    again = make_toy_medseg(tmp_path / 'again', num_train=2, num_val=1)
    for case in info.cases:
        a, b = load_case(case), load_case(read_dataset(again).cases[info.cases.index(case)])
        np.testing.assert_array_equal(a['image'], b['image'])
        np.testing.assert_array_equal(a['label'], b['label'])
        assert set(np.unique(a['label'])) == {0, 1, 2}


def test_label_shape_mismatch_names_the_case(small_toy, tmp_path):
    root = _copy(small_toy, tmp_path)
    lab = root / 'labelsTr' / 'lesion_001.nii.gz'
    img = nib.load(str(lab))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:-1], img.affine), str(lab))
    with pytest.raises(ValueError, match=r"case 'lesion_001': label shape \(66, 79, 64\) differs"):
        read_dataset(root)


def test_missing_label_names_the_case(small_toy, tmp_path):
    root = _copy(small_toy, tmp_path)
    (root / 'labelsTr' / 'lesion_002.nii.gz').unlink()
    with pytest.raises(ValueError, match=r"case 'lesion_002': label file .* is missing"):
        read_dataset(root)


def test_dataset_json_disagreeing_with_files(small_toy, tmp_path):
    root = _copy(small_toy, tmp_path)
    meta = json.loads((root / 'dataset.json').read_text())
    (root / 'dataset.json').write_text(json.dumps(dict(meta, numTraining=5)))
    with pytest.raises(ValueError, match=r'numTraining=5 but imagesTr holds 3 case'):
        read_dataset(root)
    (root / 'dataset.json').write_text(json.dumps(dict(meta, channel_names={'0': 'T1', '1': 'T2'})))
    with pytest.raises(ValueError, match=r"case 'lesion_000': channel file\(s\) lesion_000_0001"):
        read_dataset(root)


def test_slice_sampling_oversamples_foreground_and_is_seeded(small_toy):
    pipeline = [dict(type='gatedvision.SampleSlice', fg_prob=1.0),
                dict(type='gatedvision.RandomCropSlice', patch_size=(48, 40)),
                dict(type='gatedvision.RandomFlipSlice'), dict(type='gatedvision.RandomIntensity'),
                dict(type='gatedvision.PackMedSegSlice')]
    ds = NnUNetSliceDataset(data_root=str(small_toy), samples_per_case=4, context=1, pipeline=pipeline)
    assert len(ds) == 8
    np.random.seed(3)
    first = [ds[i] for i in range(8)]
    for i, item in enumerate(first):
        sample = item['data_samples']
        assert item['inputs'].shape == (3, 48, 40) and sample.gt.shape == (48, 40)
        assert (sample.gt > 0).any()  # every crop holds the chosen lesion voxel
        # each sample names its case's files and slice (what an error on its batch reports)
        case = ds.cases[i % 2]
        assert sample.name == case.name and sample.label_path == str(case.label)
        assert sample.img_path == str(case.images[0]) and 0 <= sample.slice_index < ds.volumes[i % 2]['label'].shape[2]
    np.random.seed(3)
    for a, i in zip(first, range(8)):
        torch.testing.assert_close(ds[i]['inputs'], a['inputs'])
    # a training batch as the loader collates it: an error on it names its files
    from mmengine.dataset import default_collate

    from gatedvision.engine.hooks import batch_files
    named = batch_files(default_collate(first[:2]))
    assert str(ds.cases[0].images[0]) in named and str(ds.cases[1].label) in named


# ---------------------------------------------------------------- tools, end to end
@pytest.fixture(scope='session')
def trained(tmp_path_factory):
    """One short CPU training on the demo data, shared by the tool tests."""
    work = tmp_path_factory.mktemp('medseg') / 'work'
    res = run_tool('train', CONFIG, '--work-dir', work, '--cfg-options',
                   f'train_cfg.max_iters={ITERS}', f'train_cfg.val_interval={ITERS}',
                   f'default_hooks.checkpoint.interval={ITERS}',
                   f'param_scheduler.1.end={ITERS}')
    assert res.returncode == 0, res.stderr[-3000:]
    return work / f'iter_{ITERS}.pth'


def test_train_then_test_reaches_dice(trained, tmp_path):
    res = run_tool('test', CONFIG, trained, '--work-dir', tmp_path / 'test',
                   '--show-dir', tmp_path / 'pics',
                   '--cfg-options', f'test_evaluator.output_dir={tmp_path / "preds"}')
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    scores = {k: float(v) for k, v in re.findall(r'(Dice/\w+|HD95/\w+|mDice|mHD95): ([\d.]+)', log)}
    assert scores['mDice'] >= 0.7, log[-2000:]
    assert scores['HD95/tumour'] < 20, scores  # mm
    pics = sorted((tmp_path / 'pics').glob('*.png'))
    assert len(pics) >= 4 and {p.name.split('_z')[0] for p in pics} >= {'lesion_012'}
    # predictions written in each image file's grid, with its affine
    toy = make_toy_medseg()
    for name in ('lesion_012', 'lesion_015'):
        pred = nib.load(str(tmp_path / 'preds' / f'{name}.nii.gz'))
        src = nib.load(str(toy / 'imagesTr' / f'{name}_0000.nii.gz'))
        assert pred.shape == src.shape
        np.testing.assert_allclose(pred.affine, src.affine)


def test_infer_writes_nifti_with_the_original_affine(trained, tmp_path):
    src = make_toy_medseg() / 'imagesTr' / 'lesion_013_0000.nii.gz'
    res = run_tool('infer', CONFIG, trained, src, '--out-dir', tmp_path / 'out', '--device', 'cpu')
    assert res.returncode == 0, res.stderr[-3000:]
    pred = nib.load(str(tmp_path / 'out' / 'preds' / 'lesion_013.nii.gz'))
    img = nib.load(str(src))
    assert pred.shape == img.shape
    np.testing.assert_allclose(pred.affine, img.affine)
    gt = np.asarray(nib.load(str(src.parents[1] / 'labelsTr' / 'lesion_013.nii.gz')).dataobj)
    dice, _ = volume_scores(np.asarray(pred.dataobj), gt, 3)
    assert np.nanmean(dice) > 0.5  # the same model as the test above, in the file's own grid
    assert list((tmp_path / 'out' / 'vis').glob('lesion_013_z*.png'))


def test_configs_name_real_files():
    for cfg in Path(__file__).resolve().parents[1].glob('configs/medseg/*.py'):
        assert re.match(r'^agunet_[\w.-]+_1xb\d+-\d+[ki]_[\w.-]+\.py$', cfg.name), cfg.name


def test_msd_task_folder_is_read_and_a_missing_label_named(tmp_path):
    """The MSD layout (``TaskXX_Name``): ``dataset.json``'s ``training`` list, ``./``-relative paths."""
    root = tmp_path / 'Task09_Toy'
    (root / 'imagesTr').mkdir(parents=True)
    (root / 'labelsTr').mkdir()
    training = []
    for name in ('toy_001', 'toy_002'):
        img = np.random.default_rng(0).normal(size=(8, 9, 10)).astype(np.float32)
        nib.save(nib.Nifti1Image(img, np.eye(4)), root / 'imagesTr' / f'{name}.nii.gz')
        nib.save(nib.Nifti1Image((img > 1).astype(np.uint8), np.eye(4)), root / 'labelsTr' / f'{name}.nii.gz')
        training.append({'image': f'./imagesTr/{name}.nii.gz', 'label': f'./labelsTr/{name}.nii.gz'})
    meta = dict(name='Toy', modality={'0': 'MRI'}, labels={'0': 'background', '1': 'blob'},
                numTraining=2, training=training, test=[])
    (root / 'dataset.json').write_text(json.dumps(meta))
    info = read_dataset(root)
    assert [c.name for c in info.cases] == ['toy_001', 'toy_002']
    assert info.cases[0].images == [root / 'imagesTr' / 'toy_001.nii.gz']
    assert info.cases[1].label == root / 'labelsTr' / 'toy_002.nii.gz'
    assert info.channel_names == ['MRI'] and info.class_names == ['background', 'blob']
    (root / 'labelsTr' / 'toy_002.nii.gz').unlink()
    with pytest.raises(ValueError, match="case 'toy_002': label file .*toy_002.nii.gz is missing"):
        read_dataset(root)


def test_per_case_table_keeps_its_columns_apart_for_long_names():
    from gatedvision.tasks.medseg.metric import per_case_table
    results = [dict(name='case_with_a_long_identifier_001', dice=[0.91234, 0.8], hd95=[1.5, 12.25]),
               dict(name='c2', dice=[float('nan'), 0.5], hd95=[float('nan'), 3.0])]
    lines = per_case_table(['grey_matter', 'white_matter'], results).splitlines()
    assert lines[0].split() == ['case', 'Dice', 'grey_matter', 'HD95', 'grey_matter', 'Dice', 'white_matter',
                                'HD95', 'white_matter']
    # every header cell ends where its column's values end, two spaces between columns
    ends = [m.end() for m in re.finditer(r'(Dice|HD95) \w+', lines[0])]
    for line in lines[1:]:
        assert [m.end() for m in re.finditer(r'nan|\d+\.\d+', line)] == ends, line
    assert '  ' in lines[0] and lines[1].startswith('case_with_a_long_identifier_001  ')
