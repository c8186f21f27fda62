#!/usr/bin/env bash
# Session 15 device calls (GPU machine: 16 cores, one H100 or H200). From the project root there:
#   source .device-carry/env.sh && bash bench/device-session15.sh <stage>
set -uo pipefail
stage=${1:-suites}
source "$(dirname "$0")/_device-tests.sh"
# all: one call for a session with little device time: the GPU suites this session's changes touch, then ResNet-50 ours
#      (split fit) and PyTorch eager fp32/bf16 b64/b128 in the same call, and ours fp32 under the loose fit for memory.
if [ "$stage" = all ]; then
  export SYNK_CUDA_ALLOC_FIT=split
  tests 200 devices/cuda/slice-views-gpu devices/cuda/arena-gpu devices/cuda/graphs-gpu devices/cuda/resident devices/cuda/cuda-device \
    devices/cuda/bf16 devices/cuda/reduce-gpu devices/cuda/conv-cudnn
  tests 150 extensions/resnet extensions/layers
  for pp in "highest fp32" "high bf16"; do
    set -- $pp; echo "== ours precision $1 policy $2"; resnet 80 --batches 64,128 --precision $1 --policy $2
  done
  timeout 120 python3 bench/resnet_torch.py --model resnet50 --modes eager --settings fp32,bf16 --batches 64,128 --steps 10 2>&1 | grep "eager, batch"
  echo "== ours SYNK_CUDA_ALLOC_FIT=loose precision highest policy fp32"
  SYNK_CUDA_ALLOC_FIT=loose resnet 60 --batches 64,128 --precision highest --policy fp32
fi
# lean: 'all' cut to about five minutes (little device time left): the suites nearest the changes, then batch 64 only.
if [ "$stage" = lean ]; then
  export SYNK_CUDA_ALLOC_FIT=split
  tests 120 devices/cuda/slice-views-gpu devices/cuda/arena-gpu devices/cuda/graphs-gpu devices/cuda/resident
  tests 100 extensions/resnet
  for pp in "highest fp32" "high bf16"; do
    set -- $pp; echo "== ours precision $1 policy $2"; resnet 50 --batches 64 --precision $1 --policy $2
  done
  timeout 70 python3 bench/resnet_torch.py --model resnet50 --modes eager --settings fp32,bf16 --batches 64 --steps 10 2>&1 | grep "eager, batch"
  echo "== ours SYNK_CUDA_ALLOC_FIT=loose precision highest policy fp32"
  SYNK_CUDA_ALLOC_FIT=loose resnet 40 --batches 64 --precision highest --policy fp32
  unset SYNK_CUDA_ALLOC_FIT
fi
# tiny: the last few minutes: the GPU suites nearest the changes, then ours at batch 64 (split fit).
if [ "$stage" = tiny ]; then
  export SYNK_CUDA_ALLOC_FIT=split
  tests 90 devices/cuda/slice-views-gpu devices/cuda/arena-gpu devices/cuda/graphs-gpu devices/cuda/resident
  for pp in "highest fp32" "high bf16"; do
    set -- $pp; echo "== ours precision $1 policy $2"; resnet 40 --batches 64 --precision $1 --policy $2
  done
fi
# suites: the GPU suites under this session's changes (contiguous slices as views; the split fit, set here):
#         every CUDA device suite, then the ResNet extension, layers and the bf16 suite.
if [ "$stage" = suites ]; then
  export SYNK_CUDA_ALLOC_FIT=split
  tests 330 devices/cuda
  tests 200 extensions/resnet extensions/layers ops/batchnorm ${SUITE_EXTRA:-}
fi
# views: ResNet-50 ours (split fit, slices as views) and PyTorch eager in the same call, fp32 and bf16, b64 and b128, then
#        ours under the loose fit of session 13 (memory held against the split fit).
if [ "$stage" = views ]; then
  export SYNK_CUDA_ALLOC_FIT=split
  for pp in "highest fp32" "high bf16"; do
    set -- $pp; echo "== ours precision $1 policy $2"; resnet 100 --batches 64,128 --precision $1 --policy $2
  done
  timeout 150 python3 bench/resnet_torch.py --model resnet50 --modes eager --settings fp32,bf16 --batches 64,128 --steps 10 2>&1 | grep "eager, batch"
  for pp in "highest fp32" "high bf16"; do
    set -- $pp; echo "== ours SYNK_CUDA_ALLOC_FIT=loose precision $1 policy $2"
    SYNK_CUDA_ALLOC_FIT=loose resnet 100 --batches 64,128 --precision $1 --policy $2
  done
fi
# mlp: where the GPU MLP step's time goes (issue #12: fp32 and TF32 at batch 512 and 8192), ours in this thread (flat, one
#      program, pipelined, on a worker) and per op from CUDA events, beside PyTorch's per-kernel GPU time and its step.
if [ "$stage" = mlp ]; then
  for prec in highest high; do
    timeout 100 node dist/bench/gpu-step.js --batches 512,8192 --steps 30 --precision $prec --worker 2>&1 | grep -v '^ *$' | tail -12
  done
  SYNK_CUDA_PROFILE=gpu timeout 60 node dist/bench/gpu-step.js --batches 8192 --steps 10 --profile > $OUT/mlp-gpuprof.txt 2>&1
  grep -A22 "one program" $OUT/mlp-gpuprof.txt | head -26
  timeout 60 python3 bench/torch_profile.py --model mlp --batch 8192 --rows 25 > $OUT/torch-mlp.txt 2>&1; head -30 $OUT/torch-mlp.txt
  timeout 120 python3 bench/train_torch.py --no-cpu --tf32 --steps 30 2>&1 | grep -E "cuda.*(eager|compile)"
fi
# conv: the fp32 ResNet-50 gap (batch 64): PyTorch's GPU time with cudnn.benchmark off and on (what its eager run uses),
#       ours per op with the heuristic choice and with the timed one (--cudnn-benchmark), convolution totals side by side.
if [ "$stage" = conv ]; then
  for b in "" --cudnn-benchmark; do
    timeout 120 python3 bench/torch_profile.py --model resnet50 --batch 64 --rows 12 $b > $OUT/torch-conv$b.txt 2>&1; head -15 $OUT/torch-conv$b.txt
    SYNK_CUDA_PROFILE=gpu timeout 120 node dist/bench/resnet-gpu.js --batches 64 --steps 3 --precision highest --policy fp32 $b \
      > $OUT/ours-conv$b.txt 2>&1; sed -n 2,14p $OUT/ours-conv$b.txt
  done
  # PyTorch's timed choice runs every configuration within all the workspace its allocator can give: so does ours here.
  echo "== ours timed, every configuration, 20 GB workspace"; resnet 200 --batches 64 --precision highest --policy fp32 --cudnn-benchmark \
    --timed-configs 1000 --workspace-mb 20000
  echo "== ours heuristic"; resnet 60 --batches 64 --precision highest --policy fp32
fi
