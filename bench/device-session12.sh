#!/usr/bin/env bash
# Session 12 device calls (GPU machine: 16 cores, one H100 or H200). From the project root there:
#   source .device-carry/env.sh && bash bench/device-session12.sh <stage>
set -uo pipefail
stage=${1:-ratios}
source "$(dirname "$0")/_device-tests.sh"
resnet() { timeout "$1" node dist/bench/resnet-gpu.js --batches 64,256 --steps 5 "${@:2}" 2>&1 | tail -2; }
# ratios: PyTorch eager ResNet-50 and ours in the same call (fp32, TF32, bf16 + channels-last; b64 and b256), PyTorch with
#         cudnn.benchmark off beside it (is the fp32 gap the timed engine choice?), then the CPU MLP bisect.
if [ "$stage" = ratios ]; then
  timeout 200 python3 bench/resnet_torch.py --model resnet50 --modes eager --settings fp32,tf32,bf16 --batches 64,256 --steps 10 2>&1 | tail -7
  timeout 100 python3 bench/resnet_torch.py --model resnet50 --modes eager --settings fp32,tf32 --batches 64 --steps 10 --no-cudnn-benchmark 2>&1 | tail -3
  for pp in "highest fp32" "high fp32" "high bf16"; do
    set -- $pp; echo "== ours precision $1 policy $2"; resnet 100 --precision $1 --policy $2
  done
  export OPENBLAS_NUM_THREADS=1
  for round in 1 2; do
    for d in bisect/*/dist dist; do
      printf '%s round %s: ' "$d" "$round"
      timeout 45 node $d/bench/train.js --workers 16 --batches 512 --steps 20 2>&1 | grep -E "^workers|^\| *16" | tail -1
    done
  done
fi
