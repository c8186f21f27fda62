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
  mlp_bisect 45
fi
# diag: the timed choice over the backend API's engine configurations (--cudnn-benchmark, new) in fp32, TF32 and bf16,
#       the legacy cudnnFind beside it in fp32; where the steps differ from PyTorch's: its kernel table (torch.profiler)
#       beside our per-op profile, fp32 and bf16 at batch 64; then the MPI all-reduce benchmark (#16) in the time left
#       when .mpi-carry travelled.
if [ "$stage" = diag ]; then
  for pp in "highest fp32" "high fp32" "high bf16"; do
    set -- $pp; echo "== ours precision $1 policy $2, timed graph-API choice"; resnet 100 --precision $1 --policy $2 --cudnn-benchmark
  done
  echo "== ours fp32, legacy timed (cudnnFind)"; SYNK_CUDNN_API=legacy resnet 100 --precision highest --policy fp32 --cudnn-benchmark
  for s in fp32 bf16; do
    flag=; [ $s = bf16 ] && flag=--bf16
    timeout 90 python3 bench/torch_profile.py --model resnet50 --batch 64 $flag --rows 45 > $OUT/torch-profile-$s.txt 2>&1
    head -3 $OUT/torch-profile-$s.txt
    policy=fp32; prec=highest; [ $s = bf16 ] && { policy=bf16; prec=high; }
    SYNK_CUDA_PROFILE=1 timeout 80 node dist/bench/resnet-gpu.js --batches 64 --steps 3 --precision $prec --policy $policy > $OUT/ours-profile-$s.txt 2>&1
    head -12 $OUT/ours-profile-$s.txt
  done
  if [ -d .mpi-carry ]; then
    left=$((560 - SECONDS)); echo "== MPI, ${left} s left"
    [ $left -gt 60 ] && source bench/mpi-env.sh && MPI_BENCH_BUDGET_S=$left bash bench/device-mpi.sh 2>&1 | tail -60
  fi
fi
# gpuprof: our per-op GPU time from CUDA events (SYNK_CUDA_PROFILE=gpu, no wait per op) beside torch.profiler's kernel
#          table, ResNet-50 batch 64 in fp32, TF32 and bf16 + channels-last; the plain step time of each beside it.
if [ "$stage" = gpuprof ]; then
  for s in fp32 tf32 bf16; do
    flag=; policy=fp32; prec=highest
    [ $s = tf32 ] && { flag=--tf32; prec=high; }
    [ $s = bf16 ] && { flag=--bf16; prec=high; policy=bf16; }
    timeout 90 python3 bench/torch_profile.py --model resnet50 --batch 64 $flag --rows 60 > $OUT/torch-profile-$s.txt 2>&1
    grep -m1 "GPU time" $OUT/torch-profile-$s.txt
    echo "== ours $s plain"; timeout 80 node dist/bench/resnet-gpu.js --batches 64 --steps 5 --precision $prec --policy $policy 2>&1 | tail -1
    SYNK_CUDA_PROFILE=gpu timeout 80 node dist/bench/resnet-gpu.js --batches 64 --steps 3 --precision $prec --policy $policy > $OUT/ours-gpuprof-$s.txt 2>&1
    sed -n 2,16p $OUT/ours-gpuprof-$s.txt
  done
fi
