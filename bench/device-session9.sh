#!/usr/bin/env bash
# Session 9 device calls (GPU machine: 16 cores, one H200). From the project root there:
#   source .device-carry/env.sh && bash bench/device-session9.sh <stage>
# probe: what channels-last is worth to PyTorch (bf16 autocast eager, NCHW against channels_last), our ResNet-50 bf16
#        per-op profile at batch 64, and the MLP's per-op profile at batch 8192 (TF32) beside PyTorch's kernels.
set -uo pipefail
stage=${1:-probe}
source "$(dirname "$0")/_device-tests.sh"
if [ "$stage" = probe ]; then
  echo "== PyTorch ResNet-50 eager, bf16 autocast: channels_last, then NCHW"
  timeout 150 python3 bench/resnet_torch.py --model resnet50 --modes eager --settings bf16,bf16-nchw --batches 64,256 --steps 10 2>&1 | tail -6
  echo "== ours, ResNet-50 bf16 policy batch 64 in this thread, then the per-op profile"
  timeout 80 node dist/bench/resnet-gpu.js --batches 64 --steps 5 --precision high --policy bf16 2>&1 | tail -1
  SYNK_CUDA_PROFILE=1 timeout 80 node dist/bench/resnet-gpu.js --batches 64 --steps 3 --precision high --policy bf16 > $OUT/profile-bf16.txt 2>&1
  head -30 $OUT/profile-bf16.txt
  timeout 90 python3 bench/torch_profile.py --model resnet50 --batch 64 --bf16 --tf32 --rows 30 > $OUT/torch-profile-bf16.txt 2>&1
  head -40 $OUT/torch-profile-bf16.txt
  echo "== MLP batch 8192 TF32: our per-op profile, PyTorch's kernels"
  SYNK_CUDA_PROFILE=1 timeout 60 node dist/bench/gpu-step.js --batches 8192 --precision high --profile --steps 10 2>&1 | tail -30
  timeout 60 python3 bench/torch_profile.py --model mlp --batch 8192 --tf32 --rows 20 2>&1 | tail -25
fi
# cl: channels-last bfloat16 activations (planLayout): the GPU suites, then ResNet-50 in this thread with and without them,
#     the per-op profile, and through bench/resnet.ts (one GPU worker) beside PyTorch eager bf16 + channels_last.
if [ "$stage" = cl ]; then
  tests 240 bf16-storage devices/cuda ops/batchnorm extensions/resnet
  for c in 1 0; do
    SYNK_CHANNELS_LAST=$c timeout 90 node dist/bench/resnet-gpu.js --batches 64,256 --steps 5 --precision high --policy bf16 2>&1 | tail -2
  done
  SYNK_CUDA_PROFILE=1 timeout 80 node dist/bench/resnet-gpu.js --batches 64 --steps 3 --precision high --policy bf16 > $OUT/profile-cl.txt 2>&1
  head -34 $OUT/profile-cl.txt
  timeout 150 node dist/bench/resnet.js --model resnet50 --devices cuda --precision bf16 --batches 64,256 --steps 10 2>&1 | grep -E "^\| resnet|images"
  timeout 150 python3 bench/resnet_torch.py --model resnet50 --modes eager --settings bf16 --batches 64,256 --steps 10 2>&1 | tail -3
fi
# v2: vectorised channels-last batch-norm passes; cuDNN timed algorithms; the merged CPU work (h-cnn) on 16 workers beside
#     PyTorch with 16 threads; the MLP on one GPU worker (bias add + ReLU now one kernel) beside PyTorch eager.
if [ "$stage" = v2 ]; then
  tests 240 bf16-storage ops/batchnorm devices/cuda
  timeout 90 node dist/bench/resnet-gpu.js --batches 64,256 --steps 5 --precision high --policy bf16 2>&1 | tail -2
  timeout 120 node dist/bench/resnet-gpu.js --batches 64,256 --steps 5 --precision high --policy bf16 --cudnn-benchmark 2>&1 | tail -2
  timeout 150 node dist/bench/resnet.js --model resnet50 --devices cuda --precision bf16 --batches 64,256 --steps 10 2>&1 | grep -E "^\| resnet"
  for p in highest high; do
    timeout 100 node dist/bench/train.js --workers 1 --devices cuda --data shared --batches 512,8192 --steps 30 --precision $p 2>&1 | grep -E "^workers"
  done
  export OPENBLAS_NUM_THREADS=1
  timeout 100 node dist/bench/train.js --workers 16 --batches 512,8192 --steps 10 2>&1 | grep -E "^workers"
  timeout 150 python3 bench/train_torch.py --threads 16 --no-compile --tf32 --steps 20 2>&1 | tail -8
  timeout 100 node dist/bench/cnn.js --workers 16 --batches 128,1024 --steps 10 2>&1 | tail -4
  timeout 100 python3 bench/cnn_torch.py --threads 16 --batches 128,1024 --steps 10 --no-cuda 2>&1 | tail -3
  timeout 100 node dist/bench/resnet.js --model resnet18 --devices cpu --workers 16 --batches 64 --steps 3 2>&1 | grep -E "^\| resnet"
  timeout 100 python3 bench/resnet_torch.py --model resnet18 --devices cpu --threads 16 --batches 64 --steps 3 2>&1 | tail -1
fi
# final: ResNet-50 under the bf16 policy (channels-last) on one GPU worker and PyTorch eager bf16 + channels_last in the same call,
#        batch 64, 128, 256; the MLP on 16 CPU workers again beside PyTorch (the machine's CPU figures moved between calls).
if [ "$stage" = final ]; then
  timeout 200 node dist/bench/resnet.js --model resnet50 --devices cuda --precision bf16 --batches 64,128,256 --steps 10 2>&1 | grep -E "^\| resnet"
  timeout 200 python3 bench/resnet_torch.py --model resnet50 --modes eager --settings bf16 --batches 64,128,256 --steps 10 2>&1 | tail -3
  timeout 80 node dist/bench/resnet-gpu.js --batches 128 --steps 5 --precision high --policy bf16 2>&1 | tail -1
  export OPENBLAS_NUM_THREADS=1
  timeout 100 node dist/bench/train.js --workers 16 --batches 512,8192 --steps 10 2>&1 | grep -E "^workers"
  timeout 150 python3 bench/train_torch.py --threads 16 --no-compile --steps 20 2>&1 | grep -E "^\| cpu"
fi
# planes: batch norm's NCHW passes plane by plane (no 64-bit division per element); the batch-norm and storage suites,
#         then ResNet-50 fp32 and TF32 on one GPU worker beside PyTorch eager in the same call.
if [ "$stage" = planes ]; then
  tests 240 ops/batchnorm bf16-storage
  for p in highest high; do
    timeout 150 node dist/bench/resnet.js --model resnet50 --devices cuda --precision $p --batches 64,256 --steps 10 2>&1 | grep -E "^\| resnet"
  done
  timeout 200 python3 bench/resnet_torch.py --model resnet50 --modes eager --settings fp32,tf32 --batches 64,256 --steps 10 2>&1 | tail -4
fi
