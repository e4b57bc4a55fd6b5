#!/usr/bin/env bash
# The lowest versions setup.cfg declares for torch, stable-baselines3, gymnasium, numpy and rl-zoo3, in a fresh
# venv, with a smoke subset of the tests: construction, training, save/load, planning, the RL Zoo hook.
# Not part of .ci/run: torch 2.8 exists on PyPI only as the CUDA build (about 3 GB with its NVIDIA
# libraries). Run it before changing a lower bound:  bash .ci/lowest_versions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-lowest}
rm -rf "$VENV"
python3 -m venv "$VENV" && . "$VENV/bin/activate"
pip install "torch==2.8.0" "numpy==1.24.4" "stable-baselines3==2.9.0" "gymnasium==1.3.0" "rl-zoo3==2.9.1"
pip install -e ".[zoo,extra]" pytest "numpy==1.24.4"  # keep the lowest numpy while the extras resolve
pip list 2>/dev/null | grep -i -E "^(torch|numpy|stable.baselines3|gymnasium|rl.zoo3|optuna) "
python -m pytest -q -p no:cacheprovider tests/test_boom.py tests/test_zoo.py tests/test_zoo_cli.py tests/test_buffers.py tests/test_planner.py tests/test_losses.py \
  -k "not dm_control and not hopper and not cuda and not dmc"
