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
