#!/usr/bin/env bash
# One device call for session 4 (issue #12): the shared-state training step on 4/8/16 CPU workers
# against PyTorch CPU with 16 threads and on the H200 (eager, torch.compile) in the same call, the
# GPU worker's step, the dispatch table and the event-loop lateness, then the training test suites.
set -uo pipefail
export OPENBLAS_NUM_THREADS=1
echo "== synkhronos CPU workers"
timeout 300 node dist/bench/train.js --workers 4,8,16 --batches 512,8192 --steps 10 --json $OUT/train-cpu.json 2>&1 | tail -14
echo "== synkhronos H200 worker"
timeout 200 node dist/bench/train.js --workers 1 --devices cuda --data shared --batches 512,8192 --steps 20 --json $OUT/train-gpu.json 2>&1 | tail -6
unset OPENBLAS_NUM_THREADS
echo "== PyTorch (CPU 16 threads, H200 eager and torch.compile)"
timeout 400 python3 bench/train_torch.py --threads 16 --batches 512,8192 --steps 10 --json $OUT/train-torch.json 2>&1 | tail -14
echo "== dispatch"
timeout 120 node dist/bench/dispatch.js 1,2,4,8,16 --seconds 0.5 2>&1 | tail -9
if [ -f dist/bench/event-loop-lateness.js ]; then echo "== event-loop lateness"; timeout 120 node dist/bench/event-loop-lateness.js 1,8,16 2>&1 | tail -12; fi
export OPENBLAS_NUM_THREADS=1
for suite in extensions/train parallel/shared-train cuda-workers; do
  echo "== tests: $suite"
  timeout 200 node scripts/run-tests.mjs $suite > $OUT/test-${suite//\//_}.log 2>&1
  grep -E '^# (tests|pass|fail|skipped)' $OUT/test-${suite//\//_}.log | tr '\n' ' '; echo
  grep -E '^not ok|^    not ok' $OUT/test-${suite//\//_}.log | head -5
done
