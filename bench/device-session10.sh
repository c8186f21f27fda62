#!/usr/bin/env bash
# Session 10 device calls (GPU machine: 16 cores, one H200). From the project root there:
#   source .device-carry/env.sh && bash bench/device-session10.sh <stage>
set -uo pipefail
stage=${1:-diag}
source "$(dirname "$0")/_device-tests.sh"
# diag: where the GPU worker's extra ~3 ms per ResNet-50 bf16 step goes (CPU profiles of a short and a long run, per extra step,
#       the worker through makeTrainFunction against T.fn in this thread), and the fp32 per-op profile beside PyTorch's kernels.
if [ "$stage" = diag ]; then
  for s in 4 16; do
    rm -rf /tmp/pw$s /tmp/pt$s
    node --cpu-prof --cpu-prof-dir=/tmp/pw$s dist/bench/resnet.js --model resnet50 --devices cuda --precision bf16 --batches 64 --steps $s \
      2>&1 | grep -E "^\| resnet"
    node --cpu-prof --cpu-prof-dir=/tmp/pt$s dist/bench/resnet-gpu.js --batches 64 --steps $s --precision high --policy bf16 2>&1 | tail -1
  done
  echo "== worker run, per extra call (17)"; node bench/cpuprof-diff.mjs /tmp/pw16 /tmp/pw4 17 25
  echo "== in-thread run, per extra call (12)"; node bench/cpuprof-diff.mjs /tmp/pt16 /tmp/pt4 12 25
  echo "== fp32 per-op profile, ours then PyTorch"
  SYNK_CUDA_PROFILE=1 timeout 80 node dist/bench/resnet-gpu.js --batches 64 --steps 3 --precision highest --policy fp32 > $OUT/profile-fp32.txt 2>&1
  head -45 $OUT/profile-fp32.txt
  timeout 90 python3 bench/torch_profile.py --model resnet50 --batch 64 --rows 40 > $OUT/torch-profile-fp32.txt 2>&1
  head -55 $OUT/torch-profile-fp32.txt
fi
