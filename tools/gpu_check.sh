#!/usr/bin/env bash
# The prepared GPU check, for a CUDA machine whose python3 has torch, triton and timm (pytest and
# pytest-xdist / pytest-timeout for the tests; fla-core for the GLA kernels, else those rows skip):
#   1. the CUDA tests: the Triton na2d_av kernel and fla-core's chunk_gla against the torch paths;
#   2. the kernel benchmarks (agreement of outputs and gradients first, then timings);
#   3. model throughput / memory of one tiny variant per family and a resnet50 baseline, bf16.
# Writes its logs and tables to OUT_DIR (default gpu_check/).  Usage: bash tools/gpu_check.sh [OUT_DIR]
set -uo pipefail
out=${1:-gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
status=0
"$py" -c 'import torch, triton, timm; print("torch", torch.__version__, "triton", triton.__version__, "timm", timm.__version__, torch.cuda.get_device_name())' \
    | tee "$out/versions.txt" || exit 1
"$py" -c 'import fla; print("fla-core", fla.__version__)' 2>&1 | tee -a "$out/versions.txt"
"$py" -m pytest -n 0 -q -p no:cacheprovider tests/test_neighborhood.py tests/test_gla.py \
    tests/test_routed_attention.py 2>&1 | tee "$out/tests.log" || status=1
"$py" tools/benchmark_neighborhood.py --device cuda 2>&1 | tee "$out/neighborhood.md" || status=1
"$py" tools/benchmark_gla.py --device cuda 2>&1 | tee "$out/gla.md" || status=1
# slowest to build last: vig_h_tiny took over 120 s on the first H100 run
"$py" tools/benchmark.py resnet50 convit_tiny halonet26t hornet_tiny_7x7 biformer_tiny overlock_xt vig_tiny \
    vig_h_tiny --device cuda --amp --resolutions 224 --batch-size 64 --timeout 120 --out-dir "$out/models" \
    2>&1 | tee "$out/models.log" || status=1
exit $status
