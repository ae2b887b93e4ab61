#!/usr/bin/env bash
# Regenerate the conformance corpus from PyTorch 1.13 (Debian's packages). npm test never runs this.
set -euo pipefail
cd "$(dirname "$0")/../.."
PKGS="python3-torch python3-torchvision python3-onnx"
if ! /usr/bin/python3 -c "import torch, torchvision, onnx" 2>/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y $PKGS || { $SUDO apt-get update && $SUDO apt-get install -y $PKGS; }
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0
exec /usr/bin/python3 test/corpus/make.py "$@"
