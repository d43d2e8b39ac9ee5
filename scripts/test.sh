#!/usr/bin/env bash
# Sets up, lints and runs the whole test suite (the README's test command; CI runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# the ONNX export check runs where onnxruntime is installed; the modelopt backend tests where ModelOpt is
# (~25 MB of wheels, torch stays at the pin setup.sh installed first)
python3 -m pip install -q -e ".[test,export,modelopt]"
python3 -m ruff check dse problems tests
python3 -m pytest -q tests
