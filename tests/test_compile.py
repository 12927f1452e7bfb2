"""Every family under torch.compile: one graph (no breaks), forward and backward as eager's.

One model of each family, one block per stage (what dynamo traces is code of the kind, not of the
depth), on the ``aot_eager`` backend: dynamo's capture and AOTAutograd's joint graph, no code
generation (what would break a user's ``--compile`` breaks here; inductor's kernels are timed by
``tools/benchmark.py --compile``). The ONNX export of each family: tests/test_export.py.
"""
import pytest
import timm
import torch

import gatedvision  # noqa: F401

# name: (kwargs making it shallow, input size: halonet26t's halo blocks need 256 / 32 = 8 pixels)
SHALLOW = {
    'hornet_tiny_gf': (dict(depths=(1, 1, 1, 1)), 64),
    'biformer_tiny': (dict(depths=(1, 1, 1, 1)), 64),
    'convit_tiny_dense': (dict(depth=2), 64),
    'overlock_xt': (dict(depth=(1, 1, 1, 1), sub_depth=(1, 1)), 64),
    'halonet26t': (dict(), 256),
    'vig_tiny': (dict(depth=1), 64),  # ViG-H's GLA is the same op (it passes too, in 3 minutes)
}


def shallow_model(name: str) -> tuple[torch.nn.Module, torch.Tensor]:
    kwargs, size = SHALLOW[name.removesuffix('_reparam')]  # OverLoCK's deploy form: its depths too
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=5, **kwargs).eval()  # eval: no drop path, fixed BN
    return model, torch.randn(2, 3, size, size)


@pytest.mark.parametrize('name', list(SHALLOW))
def test_compiles_to_one_graph_with_eager_outputs_and_gradients(name):
    model, x = shallow_model(name)
    compiled = torch.compile(model, backend='aot_eager', fullgraph=True)  # a graph break is an error
    out, ref = compiled(x), model(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    w = torch.randn_like(ref)
    params = [p for p in model.parameters() if p.requires_grad]
    want = torch.autograd.grad((ref * w).sum(), params, allow_unused=True)
    got = torch.autograd.grad((out * w).sum(), params, allow_unused=True)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    for n, a, b in zip(names, want, got):
        assert (a is None) == (b is None), n
        if a is not None:  # relative to the gradient's size: the joint graph sums in its own order
            assert (b - a).norm() <= 1e-4 * a.norm() + 1e-7, f'{name} {n}: {(b - a).norm()} vs {a.norm()}'
