#!/usr/bin/env bash
# Installs mmvitq's Python stack into .venv through constraints.txt; each step is skipped when already done.
# mmcv 2.1.0 is built from its sdist with compiled ops (patched for torch 2.14) and its wheel is cached
# outside the clone, keyed by torch and Python version, so later installs take seconds.
# CUDA=1 builds mmcv's ops with CUDA (FORCE_CUDA=1).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
CUDA=${CUDA:-0}
PY="$VENV/bin/python"
log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
# pip, minus this machine's "Location ... is ignored" notices about local find-links folders.
pip_q() { "$PY" -m pip "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }
PIP=(pip_q install -q -c constraints.txt)

[ -x "$PY" ] || { log "creating $VENV"; python3.11 -m venv "$VENV"; }

if ! "$PY" -c "import torch, torchvision; assert torch.__version__.startswith('2.14.1')" 2>/dev/null; then
  log "torch 2.14.1 + torchvision 0.29.1 (from local disk)"
  "${PIP[@]}" torch==2.14.1 torchvision==0.29.1
fi

log "python packages (requirements.txt without mmcv)"
grep -v '^mmcv' requirements.txt > "$VENV/requirements-no-mmcv.txt"
"${PIP[@]}" "setuptools>=77.0.3,<82" ninja wheel pytest -r "$VENV/requirements-no-mmcv.txt"

check_mmcv='import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"'
[ "$CUDA" = 1 ] && check_mmcv="$check_mmcv; assert mmcv.ops.get_compiling_cuda_version() != 'not available'"
if ! "$PY" -c "$check_mmcv" 2>/dev/null; then
  key=$("$PY" -c "import sys, torch; print(f'torch{torch.__version__}-py{sys.version_info[0]}{sys.version_info[1]}')")
  [ "$CUDA" = 1 ] && key="$key-cuda" || key="$key-cpu"
  cache="${MMVITQ_CACHE:-$HOME/.cache/mmvitq}/mmcv-2.1.0-$key"
  if ! ls "$cache"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    src=$(mktemp -d)
    log "building mmcv 2.1.0 with ops from its sdist (10-20 min on 2 cores) into $cache"
    pip_q download -q --no-deps --no-binary mmcv --no-build-isolation -d "$src" mmcv==2.1.0
    tar -xzf "$src"/mmcv-2.1.0.tar.gz -C "$src"
    # torch 2.14 headers require C++20; mmcv 2.1.0 forces -std=c++17.
    sed -i 's/c++17/c++20/g' "$src/mmcv-2.1.0/setup.py"
    mkdir -p "$cache"
    # A subshell, not `env`: pip_q is a shell function, which `env` cannot run.
    (
      export MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}"
      [ "$CUDA" = 1 ] && export FORCE_CUDA=1 CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
      pip_q wheel -q --no-build-isolation --no-deps -w "$cache" "$src/mmcv-2.1.0"
    )
    rm -rf "$src"
  fi
  log "installing mmcv from $cache"
  pip_q install -q --no-deps --force-reinstall "$cache"/mmcv-2.1.0-*.whl
  "$PY" -c "$check_mmcv"
fi
# The deepforest wheel carries the tree-crown photos; installed without dependencies, never imported.
"$PY" -c "import importlib.util as u; assert u.find_spec('deepforest')" 2>/dev/null \
  || "${PIP[@]}" --no-deps deepforest==2.1.0

# Fashion-MNIST ships as a Debian package (MIT licence); tools/data/prepare.py unpacks it.
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "Fashion-MNIST (Debian package dataset-fashion-mnist)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    log "WARNING: Fashion-MNIST is missing; as root run: apt-get update && apt-get install -y dataset-fashion-mnist"
  fi
fi
log "python stack ready"
