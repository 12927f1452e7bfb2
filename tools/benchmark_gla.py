"""Forward and forward+backward time of gated linear attention: the chunked torch path and the
token-by-token recurrence on CPU; on CUDA also fla-core's Triton chunk_gla, after checking that it
agrees with the torch path (the prepared GPU check).

    python tools/benchmark_gla.py                   # CPU
    python tools/benchmark_gla.py --device cuda     # GPU check: fla vs torch, then timings
"""
import argparse
import statistics
import sys

import torch
import torch.nn.functional as F

from gatedvision.benchmark import timed
from gatedvision.ops.linear_attention import gla, gla_recurrent

# (B, T, H, K, V): ViG-T at 224 (8 images x 2 directions), wider heads, a 56x56 map
SHAPES = [(16, 196, 3, 32, 64), (16, 196, 12, 32, 64), (2, 3136, 3, 32, 64)]


def inputs(shape, device, requires_grad=False):
    b, t, h, dk, dv = shape
    q, k = (torch.randn(b, t, h, dk, device=device) for _ in range(2))
    v = torch.randn(b, t, h, dv, device=device)
    g = F.logsigmoid(torch.randn(b, t, h, dk, device=device)) / 16  # ViG's gates
    return [x.requires_grad_(requires_grad) for x in (q, k, v, g)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--threads', type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    impls = {'torch chunked': lambda *x: gla(*x, backend='torch')[0]}
    if args.device == 'cuda':
        impls['fla chunk_gla'] = lambda *x: gla(*x, backend='fla')[0]
        for shape in SHAPES:
            x = inputs(shape, 'cuda')
            for reverse in (False, True):
                a = gla(*x, reverse=reverse, backend='fla')[0]
                b = gla(*x, reverse=reverse, backend='torch')[0]
                # fla-core's fp32 dots run in TF32: on an H100 its largest error against a float64
                # recurrence was 1.5e-3 of the output's largest magnitude (the torch path's: 2e-7)
                err = ((a - b).abs().max() / b.abs().max()).item()
                if not err <= 5e-3:
                    sys.exit(f'fla chunk_gla disagrees with the torch path at {shape}, reverse={reverse}: '
                             f'largest error {err:.2e} of the output scale (TF32 allows ~1.5e-3)')
        print('fla chunk_gla agrees with the torch path (fwd, both directions, within TF32 precision)',
              file=sys.stderr)
    else:
        impls['recurrence'] = lambda *x: gla_recurrent(*x)[0]
    print(f'\nGLA on {args.device} ({args.threads} threads on CPU), median of {args.repeats}\n')
    print('| B, T, H, K, V | impl | fwd (ms) | fwd+bwd (ms) |')
    print('|---|---|---|---|')
    for shape in SHAPES:
        for name, fn in impls.items():
            x = inputs(shape, args.device)
            fwd = 1e3 * statistics.median(timed(lambda fn=fn, x=x: fn(*x), args.device, 1, args.repeats))
            xg = inputs(shape, args.device, requires_grad=True)
            bwd = 1e3 * statistics.median(timed(lambda fn=fn, xg=xg: fn(*xg).sum().backward(), args.device, 1,
                                                args.repeats))
            print(f'| {shape} | {name} | {fwd:.1f} | {bwd:.1f} |', flush=True)


if __name__ == '__main__':
    main()
