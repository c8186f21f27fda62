#!/usr/bin/env bash
# Sourced by the bench/device-session*.sh scripts: tests LIMIT SUITE... runs each suite with a time limit on the GPU
# machine, writes its log under $OUT and prints its counts and the first failures.
tests() {
  local limit=$1; shift
  for suite in "$@"; do
    echo "== tests: $suite"
    timeout "$limit" node scripts/run-tests.mjs $suite > $OUT/test-${suite//\//_}.log 2>&1
    grep -E '^# (tests|pass|fail|skipped)' $OUT/test-${suite//\//_}.log | tr '\n' ' '; echo
    grep -E -A14 '^not ok|^    not ok' $OUT/test-${suite//\//_}.log | head -40
  done
}
# mlp_bisect LIMIT: the CPU MLP step at batch 512 on 16 workers for every build under bisect/<commit>/dist (made by
# bench/bisect-builds.sh) and this one, two interleaved rounds.
mlp_bisect() {
  local limit=$1 round d
  export OPENBLAS_NUM_THREADS=1
  for round in 1 2; do
    for d in bisect/*/dist dist; do
      printf '%s round %s: ' "$d" "$round"
      timeout "$limit" node $d/bench/train.js --workers 16 --batches 512 --steps 20 2>&1 | grep -E "^workers|^\| *16" | tail -1
    done
  done
  unset OPENBLAS_NUM_THREADS
}
# resnet LIMIT ARGS...: one ours ResNet-50 run (bench/resnet-gpu.ts, 5 steps) with its last two lines, and the error of a crash.
resnet() { local log=$OUT/resnet-$RANDOM.log; timeout "$1" node dist/bench/resnet-gpu.js --steps 5 "${@:2}" > $log 2>&1; tail -2 $log
  grep -q '^Node.js' $log && grep -m3 -B2 -A8 'Error' $log; }
