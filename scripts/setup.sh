#!/usr/bin/env bash
# Installs dse and its dependencies. torch is pinned first so pip never resolves a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q "torch==2.13.0"
python3 -m pip install -q -e ".[test]"
