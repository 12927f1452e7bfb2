#!/usr/bin/env bash
# Distributed training with PyTorch DDP through mmengine: tools/dist_train.sh CONFIG NGPUS [ARGS...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
set -euo pipefail
CONFIG=$1
GPUS=$2
shift 2
exec torchrun --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" --nproc_per_node="$GPUS" \
  "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "$@"
