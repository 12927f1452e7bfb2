#!/usr/bin/env bash
# Training on a slurm cluster, one task per GPU (mmengine's slurm launcher reads the ranks and the
# master address from slurm): tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [ARGS...]
# GPUS (default 8) in all, GPUS_PER_NODE (default 8, at most GPUS), CPUS_PER_TASK (default 5),
# SRUN_ARGS (extra srun options, e.g. "--quotatype=spot"), PYTHON (default python).
# Not testable without a cluster; the same runner as tools/dist_train.sh, which the tests run.
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py options...]" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
# shellcheck disable=SC2086  # SRUN_ARGS holds several options
exec srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" \
  --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="${CPUS_PER_TASK:-5}" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
  "${PYTHON:-python}" -u "$(dirname "$0")/train.py" "$CONFIG" --work-dir "$WORK_DIR" --launcher slurm "$@"
