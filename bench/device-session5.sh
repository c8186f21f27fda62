#!/usr/bin/env bash
# Session 5 device calls (issue #12, GPU part). Stage "probe": where a GPU step's time goes (in-process
# breakdown, per-op profile), the worker's one-program step, PyTorch eager with and without TF32.
set -uo pipefail
stage=${1:-probe}
if [ "$stage" = probe ]; then
  echo "== in-process GPU step (float32, TF32)"
  timeout 150 node dist/bench/gpu-step.js --batches 512,8192 --steps 30 2>&1 | tail -4
  timeout 150 node dist/bench/gpu-step.js --batches 512,8192 --steps 30 --precision high 2>&1 | tail -3
  echo "== per-op profile, batch 512 (each op waits for the stream)"
  SYNK_CUDA_PROFILE=1 timeout 100 node dist/bench/gpu-step.js --batches 512 --steps 10 2>&1 | head -40
  echo "== one H200 worker through makeTrainFunction"
  timeout 200 node dist/bench/train.js --workers 1 --devices cuda --data shared --batches 512,8192 --steps 20 2>&1 | tail -5
  timeout 200 node dist/bench/train.js --workers 1 --devices cuda --data shared --batches 512,8192 --steps 20 --precision high 2>&1 | tail -5
  echo "== PyTorch eager, float32 and TF32"
  timeout 200 python3 bench/train_torch.py --no-cpu --no-compile --tf32 --batches 512,8192 --steps 20 2>&1 | tail -8
fi
if [ "$stage" = graphs ]; then
  for suite in devices/cuda cuda-workers extensions/train; do
    echo "== tests: $suite"
    timeout 240 node scripts/run-tests.mjs $suite > $OUT/test-${suite//\//_}.log 2>&1
    grep -E '^# (tests|pass|fail|skipped)' $OUT/test-${suite//\//_}.log | tr '\n' ' '; echo
    grep -E -A12 '^not ok|^    not ok' $OUT/test-${suite//\//_}.log | head -40
  done
  echo "== in-process GPU step: CUDA graphs on, then off"
  for p in highest high; do
    timeout 150 node dist/bench/gpu-step.js --batches 512,8192 --steps 30 --precision $p 2>&1 | tail -2
    SYNK_CUDA_GRAPHS=0 timeout 150 node dist/bench/gpu-step.js --batches 512,8192 --steps 30 --precision $p 2>&1 | tail -2
  done
  echo "== one H200 worker through makeTrainFunction (graphs on)"
  for p in highest high; do
    timeout 200 node dist/bench/train.js --workers 1 --devices cuda --data shared --batches 512,8192 --steps 20 --precision $p 2>&1 | tail -3
  done
fi
if [ "$stage" = cnn ]; then
  echo "== train-mnist-cnn's network: 16 CPU workers through makeTrainFunction"
  OPENBLAS_NUM_THREADS=1 timeout 300 node dist/bench/cnn.js --workers 16 --batches 128,1024 --steps 10 2>&1 | tail -10
  echo "== the same network in PyTorch, CPU 16 threads (and CUDA eager)"
  (unset OPENBLAS_NUM_THREADS; timeout 200 python3 bench/cnn_torch.py --threads 16 --batches 128,1024 --steps 10 2>&1 | tail -12)
fi
if [ "$stage" = final ]; then
  echo "== synkhronos: one H200 worker through makeTrainFunction (CUDA graphs), float32 and TF32"
  for p in highest high; do
    timeout 200 node dist/bench/train.js --workers 1 --devices cuda --data shared --batches 512,8192 --steps 100 --precision $p \
      --json $OUT/train-gpu-$p.json 2>&1 | tail -2
  done
  echo "== in-process GPU step (no worker), float32 and TF32"
  for p in highest high; do timeout 150 node dist/bench/gpu-step.js --batches 512,8192 --steps 50 --precision $p 2>&1 | tail -2; done
  echo "== PyTorch on the H200: eager and torch.compile, float32 and TF32"
  timeout 420 python3 bench/train_torch.py --no-cpu --tf32 --batches 512,8192 --steps 100 --json $OUT/train-torch-gpu.json 2>&1 | tail -10
  echo "== synkhronos 16 CPU workers (MLP) and dispatch"
  OPENBLAS_NUM_THREADS=1 timeout 200 node dist/bench/train.js --workers 16 --batches 512,8192 --steps 10 --json $OUT/train-cpu16.json 2>&1 | tail -3
  timeout 100 node dist/bench/dispatch.js 1,2,4,8,16 --seconds 0.5 2>&1 | tail -8
  echo "== PyTorch CPU 16 threads (MLP)"
  timeout 200 python3 bench/train_torch.py --threads 16 --batches 512,8192 --steps 10 --no-compile 2>&1 | grep "^cpu"
fi
if [ "$stage" = after ]; then
  # dist-before/: the build before this stage's merges (issue #14's refactors, the pool's wake-ups), same call.
  export OPENBLAS_NUM_THREADS=1
  for build in dist-before dist; do
    [ -d $build ] || continue
    echo "== $build: 16 CPU workers (MLP), dispatch"
    timeout 200 node $build/bench/train.js --workers 16 --batches 512,8192 --steps 10 2>&1 | tail -2
    timeout 100 node $build/bench/dispatch.js 1,2,4,8,16 --seconds 0.5 2>&1 | tail -5
    timeout 150 node $build/bench/gpu-step.js --batches 512,8192 --steps 50 --precision high 2>&1 | tail -2
  done
  echo "== event-loop lateness (dist)"
  timeout 150 node dist/bench/event-loop-lateness.js 1,8,16 --calls 10 --call-ms 200 2>&1 | tail -6
  for suite in devices/cuda cuda-workers comm/ extensions/train; do
    echo "== tests: $suite"
    timeout 240 node scripts/run-tests.mjs $suite > $OUT/test-${suite//\//_}.log 2>&1
    grep -E '^# (tests|pass|fail|skipped)' $OUT/test-${suite//\//_}.log | tr '\n' ' '; echo
    grep -E -A12 '^not ok|^    not ok' $OUT/test-${suite//\//_}.log | head -30
  done
fi
