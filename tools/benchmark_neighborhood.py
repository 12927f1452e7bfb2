"""Forward+backward time and peak memory of na2d_av: gatedvision's backends against OverLoCK's own
torch fallback (unfold the values, replicate-pad the window tensor, einsum).

    python tools/benchmark_neighborhood.py                       # CPU: 14/32/64 maps, k = 7 and 13
    python tools/benchmark_neighborhood.py --device cuda         # GPU check: Triton vs torch
                                                                 # (agreement, then timings)

Each CPU measurement runs in a fresh process so that its peak RSS is its own; on CUDA the peak is
``torch.cuda.max_memory_allocated``. Prints a markdown table.
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F

from gatedvision.benchmark import timed
from gatedvision.ops.neighborhood import na2d_av


def overlock_fallback(attn, value, k):
    """OverLoCK's contmix.py fallback for na2d_av at dilation 1 (k²-fold copy of the values)."""
    b, g, h, w, c = value.shape
    v = value.permute(0, 1, 4, 2, 3).reshape(b, g * c, h, w)
    win = F.unfold(v, k).reshape(b, g * c * k * k, h - k + 1, w - k + 1)
    win = F.pad(win, (k // 2,) * 4, mode='replicate').reshape(b, g, c, k * k, h, w)
    return torch.einsum('bghwk,bgckhw->bghwc', attn, win)


def run_one(impl: str, size: int, k: int, device: str, batch: int, groups: int, channels: int,
            repeats: int) -> dict:
    torch.manual_seed(0)
    attn = torch.randn(batch, groups, size, size, k * k, device=device).softmax(-1).requires_grad_()
    value = torch.randn(batch, groups, size, size, channels, device=device, requires_grad=True)
    fn = (lambda: overlock_fallback(attn, value, k)) if impl == 'overlock-unfold' else \
        (lambda: na2d_av(attn, value, k, backend=impl))

    def step():
        out = fn()
        out.backward(torch.ones_like(out))
        attn.grad = value.grad = None

    step()  # warm-up (and Triton compilation)
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = timed(step, device, 0, repeats)
    if device == 'cuda':
        peak = torch.cuda.max_memory_allocated() - base
    else:  # the warm-up already reached the peak; RSS high-water mark minus the inputs
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - _inputs_rss
    return dict(impl=impl, size=size, k=k, ms=statistics.median(times) * 1e3,
                peak_mib=max(peak, 0) / 2 ** 20)


_inputs_rss = 0


def check_agreement(device: str) -> None:
    """Every backend gives the loop backend's outputs and gradients (run before timing on CUDA)."""
    torch.manual_seed(0)
    for size, k, d in [(14, 13, 1), (32, 7, 2), (64, 13, 1)]:
        attn = torch.randn(2, 4, size, size + 3, k * k, device=device).softmax(-1).requires_grad_()
        value = torch.randn(2, 4, size, size + 3, 24, device=device, requires_grad=True)
        grad = torch.randn(2, 4, size, size + 3, 24, device=device)
        results = {}
        for impl in ['loop', 'dense', 'triton']:
            out = na2d_av(attn, value, k, d, backend=impl)
            results[impl] = (out, *torch.autograd.grad(out, (attn, value), grad))
        for impl in ['dense', 'triton']:
            for a, b in zip(results[impl], results['loop']):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    print('backends agree (outputs and gradients, tolerance 1e-4)', file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--sizes', type=int, nargs='+', default=[14, 32, 64])
    p.add_argument('--kernels', type=int, nargs='+', default=[7, 13])
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--groups', type=int, default=4)
    p.add_argument('--channels', type=int, default=32)
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--single', help=argparse.SUPPRESS)  # internal: one measurement, JSON out
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    common = dict(device=args.device, batch=args.batch, groups=args.groups,
                  channels=args.channels, repeats=args.repeats)
    if args.single:
        global _inputs_rss
        impl, size, k = args.single.split(':')
        # RSS before the op runs: interpreter, torch and the inputs
        torch.randn(args.batch, args.groups, int(size), int(size), int(k) ** 2 + args.channels)
        _inputs_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps(run_one(impl, int(size), int(k), **common)))
        return
    if args.device == 'cuda':
        check_agreement('cuda')
    impls = ['overlock-unfold', 'dense', 'loop'] + (['triton'] if args.device == 'cuda' else [])
    rows = []
    for size in args.sizes:
        for k in args.kernels:
            if k > size:
                continue
            for impl in impls:
                if args.device == 'cuda':
                    rows.append(run_one(impl, size, k, **common))
                else:
                    cmd = [sys.executable, __file__, '--single', f'{impl}:{size}:{k}',
                           *sum(([f'--{a}', str(getattr(args, a))] for a in
                                 ('batch', 'groups', 'channels', 'repeats', 'threads')), [])]
                    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                    rows.append(json.loads(out.strip().splitlines()[-1]))
                print(rows[-1], file=sys.stderr, flush=True)
    print(f'\nna2d_av fwd+bwd, {args.device}, B={args.batch} G={args.groups} C={args.channels}, '
          f'{args.threads} threads; median of {args.repeats}\n')
    print('| map | k | impl | time (ms) | peak memory (MiB) | speed-up vs unfold | memory vs unfold |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        ref = next(x for x in rows if x['size'] == r['size'] and x['k'] == r['k']
                   and x['impl'] == 'overlock-unfold')
        print(f"| {r['size']}² | {r['k']} | {r['impl']} | {r['ms']:.1f} | {r['peak_mib']:.0f} | "
              f"{ref['ms'] / r['ms']:.2f}× | {r['peak_mib'] / max(ref['peak_mib'], 1e-9):.2f} |")


if __name__ == '__main__':
    main()
