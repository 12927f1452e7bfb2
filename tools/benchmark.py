"""Parameters, GMACs, inference latency/throughput, training-step throughput and peak memory of
timm models (gatedvision's and any timm baseline) over input resolutions, with gatedvision's kernel
backends side by side. Writes OUT_DIR/benchmark.{md,csv,png} after every model, so an interrupted
run (Ctrl-C) keeps what it measured.

    python tools/benchmark.py hornet_tiny_7x7 resnet50 --resolutions 224 512
    python tools/benchmark.py 'vig_*tiny' overlock_xt --backends all        # kernel paths compared
    python tools/benchmark.py 'hornet_tiny_*' --device cuda --amp --channels-last
    python tools/benchmark.py vig_tiny biformer_tiny --compile                   # eager vs torch.compile
    python tools/benchmark.py vig_tiny biformer_tiny --onnx                      # PyTorch vs ONNX Runtime

What each number means (GMACs = FlopCounterMode FLOPs / 2; peak memory = RSS high-water mark on
CPU, max_memory_allocated on CUDA; each model and resolution in a fresh process): see
gatedvision/benchmark.py. docs/benchmarks.md holds a table from a 2-core CPU.
"""
import argparse
import shlex
import sys
from pathlib import Path

import torch

from gatedvision.benchmark import (
    BACKEND_NAMES,
    BenchSpec,
    markdown_table,
    resolve_models,
    run,
)
from gatedvision.engine.config import add_compile_argument


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('models', nargs='+', help="model names or wildcards, e.g. 'hornet_tiny_*' resnet50")
    p.add_argument('--resolutions', type=int, nargs='+', default=[224], help='square input sizes')
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    p.add_argument('--batch-size', type=int, default=8,
                   help='N of the batch-N throughput (latency is batch 1)')
    p.add_argument('--repeats', type=int, default=10, help='timed calls per measurement')
    p.add_argument('--warmup', type=int, default=3, help='untimed calls before them')
    p.add_argument('--amp', action='store_true', help='autocast bfloat16 (CPU or CUDA)')
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--backends', nargs='+', default=['auto'], choices=BACKEND_NAMES,
                   help="kernel paths of models that have them: 'auto' (the op's choice), 'all', "
                        'or names; each model runs its backends in one process')
    add_compile_argument(p, 'each model too, timed against eager at batch N in alternating calls (compile '
                            'seconds, speed-ups, output difference),')
    p.add_argument('--onnx', action='store_true',
                   help='each model exported to ONNX too, its ONNX Runtime (CPU) inference timed against PyTorch '
                        "eager at batch N in alternating calls (the 'deploy' extra)")
    p.add_argument('--out-dir', type=Path, default=Path('work_dirs/benchmark'))
    p.add_argument('--timeout', type=float, default=3600,
                   help='seconds per model and resolution before its row says "timed out"')
    p.add_argument('--mem-limit-gb', type=float, default=None,
                   help='CPU: allocation limit per worker (default 80%% of available memory)')
    args = p.parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        p.error('--device cuda, but torch sees no CUDA device')
    try:
        models = resolve_models(args.models)
    except ValueError as e:
        p.error(str(e))
    spec = BenchSpec(device=args.device, threads=args.threads, batch_size=args.batch_size,
                     repeats=args.repeats, warmup=args.warmup, amp=args.amp,
                     channels_last=args.channels_last, backends=tuple(args.backends),
                     timeout=args.timeout, mem_limit_gb=args.mem_limit_gb, compile=args.compile,
                     onnx=args.onnx)
    command = 'python tools/benchmark.py ' + ' '.join(map(shlex.quote, sys.argv[1:]))
    rows = run(models, args.resolutions, spec, args.out_dir, command)
    print('\n' + markdown_table(rows, args.batch_size))
    print(f'\nwritten: {args.out_dir}/benchmark.{{md,csv,png}}', file=sys.stderr)


if __name__ == '__main__':
    main()
