#!/usr/bin/env bash
# Session 7 device calls (GPU machine: 16 cores, one H200). From the project root there:
#   source .device-carry/env.sh && bash bench/device-session7.sh <stage>
# first: ResNet-50 against torchvision (ours at fp32 / TF32 / bf16 policy, PyTorch eager fp32 / tf32 / bf16+channels_last),
#        then the CUDA suites that had not run on a GPU (two-pass reductions, bf16).
# probe: where a GPU worker's step goes (worker-overhead, GC, CPU profile), then the GPU-across-nodes test under Open MPI
#        (carried as .deb files: env.sh unpacks them under /tmp/carry-libs; OPAL_PREFIX relocates Open MPI there).
# bn: the batch-norm ops on the GPU and ResNet-50 again; cpu: the 16-core MLP (column split) against PyTorch, cuDNN
#     workspace, GPUs across nodes under Open MPI; final-a: GPU suites and the GPU MLP against PyTorch eager and
#     torch.compile; final-b: ResNet-50 against torchvision; cpu2: the CNN and ResNet-18 on 16 CPU workers.
set -uo pipefail
stage=${1:-first}
source "$(dirname "$0")/_device-tests.sh"
if [ "$stage" = first ]; then
  SYNK_TIMEOUT=270 STEPS=10 bash bench/device-resnet.sh gpu 2>&1 | grep -vE "^\s+at " | tail -40
  tests 90 reduce-gpu bf16-gpu
fi
if [ "$stage" = bn ]; then
  tests 200 ops/batchnorm bf16-gpu extensions/resnet
  echo "== ResNet-50 in this thread after the batch-norm ops and the pool donation: time, memory, profile"
  timeout 100 node dist/bench/resnet-gpu.js --batches 64,256 --steps 5 --precision high 2>&1 | tail -2
  SYNK_CUDA_PROFILE=1 timeout 100 node dist/bench/resnet-gpu.js --batches 64 --steps 3 --precision high 2>&1 | head -30
  SYNK_TIMEOUT=240 STEPS=10 bash bench/device-resnet.sh gpu 2>&1 | grep -vE "^\s+at " | grep -A14 "^### "
fi
if [ "$stage" = cpu ]; then
  tests 120 bf16-gpu
  echo "== ResNet-50 batch 256 TF32 in this thread: cuDNN workspace limit 256 MiB against 2 GiB"
  for mb in 256 2048; do timeout 90 node dist/bench/resnet-gpu.js --batches 256 --steps 5 --precision high --workspace-mb $mb 2>&1 | tail -1; done
  source bench/device-cpu.sh
  export OPENBLAS_NUM_THREADS=1
  echo "== 16 CPU workers MLP: column split on / off, then the split's own paired table"
  for k in on off; do timeout 150 node dist/bench/train.js --workers 16 --batches 512,8192 --steps 10 --column-split $k 2>&1 | tail -3; done
  timeout 120 node dist/bench/column-split.js --workers 16 --batches 128,256,512,1024,2048 --steps 10 2>&1 | tail -8
  echo "== PyTorch CPU 16 threads (MLP)"
  (unset OPENBLAS_NUM_THREADS; timeout 150 python3 bench/train_torch.py --threads 16 --batches 512,8192 --steps 10 --no-compile 2>&1 | grep -E "^cpu|rror")
  mkdir -p /tmp/fakessh && printf '#!/bin/sh\nexit 1\n' > /tmp/fakessh/ssh && chmod +x /tmp/fakessh/ssh
  if [ -x /tmp/carry-libs/usr/bin/orterun ]; then
    # Open MPI needs an ssh on PATH even for localhost-only jobs; this machine has none.
    export OPAL_PREFIX=/tmp/carry-libs/usr PMIX_INSTALL_PREFIX=/tmp/carry-libs/usr/lib/x86_64-linux-gnu/pmix2 PATH=/tmp/carry-libs/usr/bin:/tmp/fakessh:$PATH
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    timeout 30 mpirun.openmpi --oversubscribe -np 2 hostname 2>&1 | tail -3
    tests 200 parallel/multinode-gpu
  fi
fi
if [ "$stage" = final-a ]; then
  tests 200 devices/cuda ops/batchnorm cuda-workers
  echo "== MLP on one H200 worker (makeTrainFunction), fp32 and TF32, then PyTorch eager and torch.compile"
  for p in highest high; do
    timeout 100 node dist/bench/train.js --workers 1 --devices cuda --data shared --batches 512,8192 --steps 30 --precision $p 2>&1 | grep -E "^workers"
  done
  timeout 60 node dist/bench/worker-overhead.js --size 4096 --devices cuda 2>&1 | tail -1
  timeout 200 python3 bench/train_torch.py --no-cpu --tf32 --batches 512,8192 --steps 30 2>&1 | grep -E "^cuda|rror"
fi
if [ "$stage" = final-b ]; then
  echo "== ResNet-50 TF32 in this thread: cuDNN heuristics against timed algorithms (torch's cudnn.benchmark)"
  for f in "" --cudnn-benchmark; do timeout 80 node dist/bench/resnet-gpu.js --batches 64,256 --steps 5 --precision high $f 2>&1 | tail -2; done
  SYNK_TIMEOUT=200 STEPS=10 RESNET_FLAGS=${RESNET_FLAGS:-} bash bench/device-resnet.sh gpu 2>&1 | grep -vE "^\s+at " | grep -A14 "^### "
fi
if [ "$stage" = cpu2 ]; then
  source bench/device-cpu.sh > /dev/null
  export OPENBLAS_NUM_THREADS=1
  echo "== MNIST CNN step, 16 CPU workers, then PyTorch 16 threads"
  timeout 100 node dist/bench/cnn.js --workers 16 --batches 128,1024 --steps 10 2>&1 | tail -4
  (unset OPENBLAS_NUM_THREADS; timeout 80 python3 bench/cnn_torch.py --threads 16 --batches 128,1024 --steps 10 --no-cuda 2>&1 | tail -3)
  echo "== ResNet-18 at 224x224, batch 64, 16 CPU workers, then PyTorch 16 threads"
  timeout 150 node dist/bench/resnet.js --model resnet18 --devices cpu --workers 16 --batches 64 --steps 3 2>&1 | grep -E "^precision|^\| resnet"
  (unset OPENBLAS_NUM_THREADS
   timeout 90 python3 bench/resnet_torch.py --model resnet18 --devices cpu --threads 16 --batches 64 --steps 3 2>&1 | grep -E "^cpu")
fi
if [ "$stage" = verify ]; then
  tests 150 devices/cuda ops/batchnorm cuda-workers
  timeout 60 node dist/bench/resnet-gpu.js --batches 64 --steps 5 --precision high 2>&1 | tail -1
  SYNK_CUDA_GRAPHS=0 timeout 60 node dist/bench/resnet-gpu.js --batches 64 --steps 3 --precision high 2>&1 | tail -1
fi
if [ "$stage" = probe ]; then
  echo "== ResNet-50 in this thread: time and memory (graphs on, off), then the per-op profile"
  timeout 100 node dist/bench/resnet-gpu.js --batches 64 --steps 5 --precision high 2>&1 | tail -2
  SYNK_CUDA_GRAPHS=0 timeout 100 node dist/bench/resnet-gpu.js --batches 64 --steps 5 --precision high 2>&1 | tail -1
  SYNK_CUDA_PROFILE=1 timeout 100 node dist/bench/resnet-gpu.js --batches 64 --steps 3 --precision high 2>&1 | head -40
  echo "== what a worker adds to a call"
  for sz in 1024 4096; do timeout 60 node dist/bench/worker-overhead.js --size $sz --devices cuda 2>&1 | tail -1; done
  echo "== where a GPU worker's step goes: GC events, CPU profile of every thread"
  timeout 60 node --trace-gc dist/bench/gpu-step.js --worker --batches 512 --steps 200 --precision high > /tmp/gc.log 2>&1
  grep -E "one program|GPU worker" /tmp/gc.log; echo "mark-compact: $(grep -c Mark-Compact /tmp/gc.log), scavenge: $(grep -c Scavenge /tmp/gc.log)"
  timeout 100 node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/train.js --workers 1 --devices cuda --data shared --batches 512 --steps 300 \
    --precision high 2>&1 | grep -E "^workers"
  node bench/cpuprof-top.mjs /tmp/prof 22
  if [ -x /tmp/carry-libs/usr/bin/orterun ]; then
    export OPAL_PREFIX=/tmp/carry-libs/usr PMIX_INSTALL_PREFIX=/tmp/carry-libs/usr/lib/x86_64-linux-gnu/pmix2 PATH=/tmp/carry-libs/usr/bin:$PATH
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    echo "== Open MPI (carried): $(timeout 20 mpirun.openmpi --version 2>&1 | head -1)"
    timeout 30 mpirun.openmpi --oversubscribe -np 2 hostname 2>&1 | tail -3
    tests 200 parallel/multinode-gpu
  fi
fi
