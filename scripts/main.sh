#!/usr/bin/env bash
# The main job: train LeNet for one epoch on Fashion-MNIST and print the test accuracy.
# Extra arguments go to `convgrad train` (e.g. --model cnn --epochs 10 --augment).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh cli
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) || true
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    (sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null) || true
  fi
  [ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || echo "Debian's dataset-fashion-mnist is not installed (run: sudo apt-get install dataset-fashion-mnist); convgrad will look in \$CONVGRAD_DATA and ~/.cache/convgrad and then try to download the files." >&2
fi
exec .venv/bin/convgrad train --data fashion-mnist --model lenet --epochs 1 --batch-size 64 --lr 0.01 \
  --optimizer sgd --momentum 0.9 --seed 0 "$@"           # into runs/lenet (runs/lenet-2, ... on later runs)
