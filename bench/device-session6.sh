#!/usr/bin/env bash
# Session 6 device calls. Stage "probe": cuDNN on the GPU (issue #15: its suite, the 3x3 convolution against PyTorch),
# the CPU shared-state step with and without the WebAssembly SIMD kernels on 16 workers (issue #12), dispatch.
set -uo pipefail
stage=${1:-probe}
tests() {
  for suite in "$@"; do
    echo "== tests: $suite"
    timeout 240 node scripts/run-tests.mjs $suite > $OUT/test-${suite//\//_}.log 2>&1
    grep -E '^# (tests|pass|fail|skipped)' $OUT/test-${suite//\//_}.log | tr '\n' ' '; echo
    grep -E -A14 '^not ok|^    not ok' $OUT/test-${suite//\//_}.log | head -50
  done
}
if [ "$stage" = probe ]; then
  tests cudnn
  echo "== conv2d 3x3 64ch 64x56x56: im2col, cuDNN, PyTorch"
  timeout 200 node dist/bench/cuda.js --out $OUT 2>&1 | grep -iE "conv|error" | head -20
  export OPENBLAS_NUM_THREADS=1
  echo "== 16 CPU workers MLP: SIMD step kernels fast / off"
  for k in fast off; do
    timeout 150 node dist/bench/train.js --workers 16 --batches 512,8192 --steps 10 --update-kernels $k 2>&1 | tail -3
  done
  timeout 150 node dist/bench/train.js --workers 8 --batches 512,8192 --steps 10 2>&1 | tail -2
  timeout 60 node dist/bench/dispatch.js 1,2,4,8,16 --seconds 0.5 2>&1 | tail -5
  echo "== PyTorch CPU 16 threads (MLP)"
  (unset OPENBLAS_NUM_THREADS; timeout 150 python3 bench/train_torch.py --threads 16 --batches 512,8192 --steps 10 --no-compile 2>&1 | grep -E "^cpu|rror")
fi
if [ "$stage" = verify ]; then
  tests cudnn test/ops devices/cuda
  echo "== conv2d 3x3: im2col, cuDNN heuristics, cuDNN timed, PyTorch"
  timeout 200 node dist/bench/cuda.js --out $OUT 2>&1 | grep -E "^\| conv|rror" | head -20
  echo "== one H200 worker, makeTrainFunction, graphs log, breakdown"
  for p in highest high; do
    SYNK_CUDA_GRAPHS_LOG=1 timeout 200 node dist/bench/train.js --workers 1 --devices cuda --data shared --batches 512,8192 --steps 30 \
      --precision $p 2>&1 | tail -8
  done
  timeout 150 node dist/bench/gpu-step.js --worker --batches 512,8192 --steps 30 --precision high 2>&1 | tail -6
fi
if [ "$stage" = gpuprobe ]; then
  echo "== what a worker adds to a call"
  for sz in 256 1024; do OPENBLAS_NUM_THREADS=1 timeout 60 node dist/bench/worker-overhead.js --size $sz --devices cpu 2>&1 | tail -1; done
  for sz in 1024 4096; do timeout 60 node dist/bench/worker-overhead.js --size $sz --devices cuda 2>&1 | tail -1; done
  echo "== where a GPU worker's step goes: GC events, CPU profile of every thread"
  node --trace-gc dist/bench/gpu-step.js --worker --batches 512 --steps 200 --precision high > /tmp/gc.log 2>&1
  grep -E "one program|GPU worker" /tmp/gc.log; echo "mark-compact: $(grep -c Mark-Compact /tmp/gc.log), scavenge: $(grep -c Scavenge /tmp/gc.log)"
  timeout 200 node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/train.js --workers 1 --devices cuda --data shared --batches 512 --steps 300 \
    --precision high 2>&1 | grep -E "^workers"
  node bench/cpuprof-top.mjs /tmp/prof 22
fi
