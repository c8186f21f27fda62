#!/usr/bin/env bash
# Session 13 device calls (GPU machine: 16 cores, one H100 or H200). From the project root there:
#   source .device-carry/env.sh && bash bench/device-session13.sh <stage>
set -uo pipefail
stage=${1:-ratios}
source "$(dirname "$0")/_device-tests.sh"
# diag: the batch-norm suite and one short ours ResNet-50 run with its whole log (the session-13 crash).
if [ "$stage" = diag ]; then
  tests 120 ops/batchnorm
  timeout 100 node dist/bench/resnet-gpu.js --steps 2 --batches 64 --precision highest --policy fp32 > $OUT/diag.log 2>&1; echo rc $?
  grep -v '^    at ' $OUT/diag.log | tail -40
fi
# ratios: the batch-norm kernels (NCHW: no 64-bit division per element, float FMA per element) checked on the GPU by the
#         op suites, then ResNet-50 ours and PyTorch eager in the same call: fp32, TF32, bf16 + channels-last, b64 and b256.
if [ "$stage" = ratios ]; then
  tests 120 extensions/layers ${RATIO_SUITES:-}
  for pp in "highest fp32" "high fp32" "high bf16"; do
    set -- $pp; echo "== ours precision $1 policy $2"; resnet 100 --batches 64,256 --precision $1 --policy $2
  done
  timeout 200 python3 bench/resnet_torch.py --model resnet50 --modes eager --settings fp32,tf32,bf16 --batches 64,256 --steps 10 2>&1 | tail -7
fi
# gpuprof: per-op GPU time from CUDA events (SYNK_CUDA_PROFILE=gpu) at batch 64 beside PyTorch's GPU time per step;
#          the remaining suites that run batch norm on the GPU (bf16, the ResNet extension).
if [ "$stage" = gpuprof ]; then
  for s in ${GPUPROF_SETTINGS:-fp32 tf32 bf16}; do
    flag=; policy=fp32; prec=highest
    [ $s = tf32 ] && { flag=--tf32; prec=high; }
    [ $s = bf16 ] && { flag=--bf16; prec=high; policy=bf16; }
    timeout 90 python3 bench/torch_profile.py --model resnet50 --batch 64 $flag --rows 60 > $OUT/torch-profile-$s.txt 2>&1
    grep -m1 "GPU time" $OUT/torch-profile-$s.txt
    SYNK_CUDA_PROFILE=gpu timeout 80 node dist/bench/resnet-gpu.js --batches 64 --steps 3 --precision $prec --policy $policy > $OUT/ours-gpuprof-$s.txt 2>&1
    sed -n 2,16p $OUT/ours-gpuprof-$s.txt
  done
  tests 150 bf16-gpu conv-bf16-cudnn extensions/resnet
fi
# final: batch 128 (ours and PyTorch eager, the setting the ratios stage left out), ours under SYNK_CUDA_ALLOC_FIT=loose
#        (memory held against the exact fit of the ratios stage), then torch.compile at batch 64, one
#        setting per process so a slow compilation costs only its own row.
if [ "$stage" = final ]; then
  for pp in "highest fp32" "high fp32" "high bf16"; do
    set -- $pp; echo "== ours precision $1 policy $2"; resnet 60 --batches 128 --precision $1 --policy $2
  done
  for pp in "highest fp32" "high bf16"; do
    set -- $pp; echo "== ours SYNK_CUDA_ALLOC_FIT=loose precision $1 policy $2"; SYNK_CUDA_ALLOC_FIT=loose resnet 80 --batches 64,256 --precision $1 --policy $2
  done
  timeout 90 python3 bench/resnet_torch.py --model resnet50 --modes eager --settings fp32,tf32,bf16 --batches 128 --steps 10 2>&1 | grep "eager, batch"
  for s in tf32 bf16 fp32; do
    timeout 110 python3 bench/resnet_torch.py --model resnet50 --modes compile --settings $s --batches 64 --steps 10 > $OUT/compile-$s.txt 2>&1
    echo "rc $?"; grep -E 'compile, batch|Error' $OUT/compile-$s.txt | tail -3
  done
fi
