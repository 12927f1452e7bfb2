#!/usr/bin/env bash
# Sets up a virtual environment with torch, the OpenMMLab stack (mmcv 2.1.0 with compiled ops,
# mmdet 3.3.0, mmsegmentation 1.2.2) and gatedvision in editable mode. Idempotent: a second run
# with nothing changed only checks the environment and returns.
#
# Environment:
#   VENV                    where the environment lives (default: <repo>/.venv)
#   PYTHON                  interpreter used to create it (default: python3)
#   GATEDVISION_TORCH       pip requirement for torch (default: "torch==2.14.1 torchvision==0.29.1")
#   GATEDVISION_WHEELHOUSE  folder with prebuilt mmcv wheels to try before building from source
#   GATEDVISION_EXTRAS      extras of this package to install (default: "test")
#   GATEDVISION_FORCE_MMCV_BUILD=1  ignore cached and prebuilt wheels, build mmcv from its sdist
#   MAX_JOBS                parallel compile jobs for the mmcv build (default: nproc)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Every path the caller gives is made absolute here, relative to the caller's directory: later steps
# change directory (the mmcv build runs inside the unpacked sdist).
abspath() { realpath -m -- "$1"; }
VENV=$(abspath "${VENV:-$ROOT/.venv}")
PYTHON=${PYTHON:-python3}
if [[ $PYTHON == */* ]]; then PYTHON=$(abspath "$PYTHON"); fi  # a path, not a name to look up on PATH
if [[ -n ${GATEDVISION_WHEELHOUSE:-} ]]; then GATEDVISION_WHEELHOUSE=$(abspath "$GATEDVISION_WHEELHOUSE"); fi
TORCH_REQ=${GATEDVISION_TORCH:-"torch==2.14.1 torchvision==0.29.1"}
EXTRAS=${GATEDVISION_EXTRAS:-test}
MMCV_VERSION=2.1.0
CACHE=$(abspath "${GATEDVISION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gatedvision}")
STEP="start"

step() { STEP=$1; echo "[install] $1"; }
fail() { echo "[install] FAILED during '$STEP': $*" >&2; exit 1; }
trap 'rc=$?; fail "\`$BASH_COMMAND\` exited with status $rc (see the output above)"' ERR

PY=$VENV/bin/python
PIP=("$PY" -m pip --disable-pip-version-check)
stamp_file=$VENV/.gatedvision-install
stamp=$(cat "$ROOT/tools/install.sh" "$ROOT/pyproject.toml" <(echo "$TORCH_REQ $EXTRAS") | sha256sum | cut -c1-16)

stack_ok() {
  "$PY" - <<'PYEOF' >/dev/null 2>&1
import torch, mmcv, mmengine, mmdet, mmseg, gatedvision, gatedvision.tasks  # noqa: F401
from mmcv.ops import nms
nms(torch.tensor([[0., 0, 1, 1], [0, 0, 1, 1]]), torch.tensor([1., .5]), 0.5)
PYEOF
}

if [[ -x $PY && -f $stamp_file && $(cat "$stamp_file") == "$stamp" ]] && stack_ok; then
  echo "[install] $VENV is up to date"
  exit 0
fi

step "check python"
command -v "$PYTHON" >/dev/null || fail "no '$PYTHON' on PATH; set PYTHON=/path/to/python3.11"
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 9)' \
  || fail "$PYTHON is $("$PYTHON" -V 2>&1); Python >= 3.9 is needed (3.11 is tested)"

step "create virtual environment $VENV"
if [[ ! -x $PY ]]; then
  "$PYTHON" -m venv "$VENV" || fail "python3 -m venv failed; on Debian/Ubuntu install python3-venv"
fi

step "install torch ($TORCH_REQ) and build tools"
# setuptools<81 still ships pkg_resources, which mmcv's setup.py and mmengine import.
# shellcheck disable=SC2086
"${PIP[@]}" install -q $TORCH_REQ 'setuptools<81' wheel ninja

step "install mmengine"
"${PIP[@]}" install -q 'mmengine==0.10.7'

TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
WHEEL_CACHE=$CACHE/wheels/torch-$TORCH_VERSION

mmcv_ok() {
  "$PY" - <<PYEOF >/dev/null 2>&1
import torch, mmcv
assert mmcv.__version__ == '$MMCV_VERSION', mmcv.__version__
from mmcv.ops import nms, roi_align  # loads the compiled extension: fails on a torch ABI mismatch
nms(torch.tensor([[0., 0, 1, 1], [0, 0, 1, 1]]), torch.tensor([1., .5]), 0.5)
PYEOF
}

try_wheel() {  # install a candidate wheel and keep it only if its compiled ops load with this torch
  echo "[install]   trying $1"
  "${PIP[@]}" install -q --no-deps --force-reinstall "$1" && mmcv_ok && return 0
  echo "[install]   $1 does not work with torch $TORCH_VERSION; skipping it"
  "${PIP[@]}" uninstall -q -y mmcv >/dev/null 2>&1 || true
  return 1
}

build_mmcv() {
  command -v g++ >/dev/null || fail "mmcv must be compiled and there is no C++ compiler: install g++ (Debian/Ubuntu: apt-get install g++)"
  local tmp src log rc=0
  tmp=$(mktemp -d)
  "${PIP[@]}" download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$tmp" \
    || fail "could not download the mmcv $MMCV_VERSION source distribution from the package index"
  tar xzf "$tmp"/mmcv-$MMCV_VERSION.tar.gz -C "$tmp"
  src=$tmp/mmcv-$MMCV_VERSION
  # torch >= 2.13 headers require C++20; mmcv 2.1.0 hard-codes c++14/c++17.
  sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$src/setup.py"
  grep -q 'std=c++20' "$src/setup.py" || fail "could not patch the C++ standard in mmcv's setup.py"
  echo "[install]   compiling mmcv $MMCV_VERSION ops against torch $TORCH_VERSION (about 12 minutes on 2 cores)"
  mkdir -p "$WHEEL_CACHE"
  log=$CACHE/mmcv-$MMCV_VERSION-build.log
  echo "[install]   build log: $log"
  (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
     "${PIP[@]}" wheel --no-build-isolation --no-deps -w "$WHEEL_CACHE" .) >"$log" 2>&1 || rc=$?
  if [[ $rc != 0 ]]; then
    tail -n 40 "$log" >&2
    fail "'$PY -m pip wheel --no-build-isolation --no-deps .' in $src exited with status $rc (the last 40 lines of $log are above)"
  fi
  rm -rf "$tmp"
}

step "install mmcv $MMCV_VERSION with compiled ops"
if [[ ${GATEDVISION_FORCE_MMCV_BUILD:-0} != 1 ]] && mmcv_ok; then
  echo "[install]   already installed and working"
else
  done_mmcv=0
  if [[ ${GATEDVISION_FORCE_MMCV_BUILD:-0} != 1 ]]; then
    for whl in "$WHEEL_CACHE"/mmcv-$MMCV_VERSION-*.whl ${GATEDVISION_WHEELHOUSE:+"$GATEDVISION_WHEELHOUSE"/mmcv-$MMCV_VERSION-*.whl}; do
      [[ -f $whl ]] || continue
      if try_wheel "$whl"; then
        done_mmcv=1
        if [[ $whl != "$WHEEL_CACHE"/* ]]; then mkdir -p "$WHEEL_CACHE" && cp "$whl" "$WHEEL_CACHE"/; fi
        break
      fi
    done
  fi
  if [[ $done_mmcv == 0 ]]; then
    rm -f "$WHEEL_CACHE"/mmcv-$MMCV_VERSION-*.whl
    build_mmcv
    try_wheel "$(ls "$WHEEL_CACHE"/mmcv-$MMCV_VERSION-*.whl | head -n1)" \
      || fail "the freshly built mmcv wheel does not load; see the messages above"
  fi
fi

step "install mmdet 3.3.0, mmsegmentation 1.2.2 and gatedvision[$EXTRAS]"
# mmcv's own requirements pull opencv-python; albumentations pulls the headless build. Both are
# installed at the same version so that either one's cv2 works.
"${PIP[@]}" install -q -e "$ROOT[$EXTRAS]"

step "check the installed stack"
"$PY" - <<'PYEOF' || fail "the environment is installed but does not import; see the traceback above"
import torch, mmcv, mmengine, mmdet, mmseg, timm, gatedvision, gatedvision.tasks  # noqa: F401
print(f'[install]   torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, '
      f'mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, timm {timm.__version__}')
PYEOF
echo "$stamp" > "$stamp_file"
echo "[install] done: activate with 'source $VENV/bin/activate'"
