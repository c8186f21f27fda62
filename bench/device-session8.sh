#!/usr/bin/env bash
# Session 8 device calls (GPU machine: 16 cores, one H200). From the project root there:
#   source .device-carry/env.sh && bash bench/device-session8.sh <stage>
# probe: per-op profiles, ours (SYNK_CUDA_PROFILE=1: every op waits) beside PyTorch's kernels (bench/torch_profile.py):
#        ResNet-50 batch 64 under the bf16 policy and TF32, and the MLP at batch 8192 with TF32.
set -uo pipefail
stage=${1:-probe}
source "$(dirname "$0")/_device-tests.sh"
if [ "$stage" = probe ]; then
  echo "== ResNet-50 batch 64 in this thread: bf16 policy, TF32; then the bf16 per-op profile"
  for pol in bf16 fp32; do timeout 80 node dist/bench/resnet-gpu.js --batches 64 --steps 5 --precision high --policy $pol 2>&1 | tail -1; done
  SYNK_CUDA_PROFILE=1 timeout 80 node dist/bench/resnet-gpu.js --batches 64 --steps 3 --precision high --policy bf16 2>&1 | head -32
  echo "== PyTorch ResNet-50 batch 64 kernels: bf16 autocast + channels_last, then TF32"
  timeout 90 python3 bench/torch_profile.py --model resnet50 --batch 64 --bf16 --tf32 --rows 30
  timeout 90 python3 bench/torch_profile.py --model resnet50 --batch 64 --tf32 --rows 20
  echo "== MLP batch 8192 TF32: our per-op profile, PyTorch's kernels"
  SYNK_CUDA_PROFILE=1 timeout 60 node dist/bench/gpu-step.js --batches 8192 --precision high --profile --steps 10 2>&1 | tail -30
  timeout 60 python3 bench/torch_profile.py --model mlp --batch 8192 --tf32 --rows 20
fi
if [ "$stage" = bf16 ]; then
  tests 200 bf16-storage bf16-gpu cuda/graphs ops/batchnorm
  echo "== ResNet-50 in this thread, bf16 policy: activations in bfloat16 (default), then float32 (SYNK_BFLOAT_ACTIVATIONS=0)"
  for a in 1 0; do
    SYNK_BFLOAT_ACTIVATIONS=$a timeout 90 node dist/bench/resnet-gpu.js --batches 64,256 --steps 5 --precision high --policy bf16 2>&1 | tail -2
  done
  SYNK_CUDA_PROFILE=1 timeout 80 node dist/bench/resnet-gpu.js --batches 64 --steps 3 --precision high --policy bf16 > $OUT/profile-bf16.txt 2>&1
  head -24 $OUT/profile-bf16.txt
  echo "== ResNet-50 TF32 (bias+relu fusion change), then the MLP on one GPU worker"
  timeout 60 node dist/bench/resnet-gpu.js --batches 64 --steps 5 --precision high 2>&1 | tail -1
  for p in highest high; do
    timeout 100 node dist/bench/train.js --workers 1 --devices cuda --data shared --batches 512,8192 --steps 30 --precision $p 2>&1 | grep -E "^workers"
  done
fi
if [ "$stage" = verify ]; then
  tests 200 bf16-storage devices/cuda extensions/resnet
  echo "== ResNet-50 bf16 policy through bench/resnet.ts (one GPU worker), then PyTorch eager bf16 autocast + channels_last, same call"
  timeout 150 node dist/bench/resnet.js --model resnet50 --devices cuda --precision bf16 --batches 64,256 --steps 10 2>&1 | grep -E "^\| resnet|images"
  timeout 150 python3 bench/resnet_torch.py --model resnet50 --modes eager --settings bf16 --batches 64,256 --steps 10 2>&1 | tail -4
fi
if [ "$stage" = gemm ]; then
  tests 200 devices/cuda
  timeout 120 node dist/bench/gemm-gpu.js 2>&1 | tail -30
  timeout 120 python3 bench/gemm_torch.py 2>&1 | tail -30
  for g in cublaslt cublas; do
    SYNK_CUDA_GEMM=$g timeout 100 node dist/bench/train.js --workers 1 --devices cuda --data shared --batches 512,8192 --steps 30 \
      --precision high 2>&1 | grep -E "^workers"
  done
fi
