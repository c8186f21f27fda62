#!/usr/bin/env bash
# The GPU worker's steady-state step, before and after the batchS fast path (GPU machine: 16 cores, one H200).
# From the project root there: source .device-carry/env.sh && bash bench/device-wover.sh
# 1. each synk.fn path on one GPU worker (batchS calls now take the control block like Data calls);
# 2. what a worker adds to a bare call, and the same step in this thread against a worker (gpu-step --worker);
# 3. makeTrainFunction on one worker (the 0.9 ms/step configuration), then a CPU profile of it at 150 and 600
#    steps and their difference per extra step: what a step costs, without the run's one-time costs
#    (distributing the parameters, reading them back at close), which a single profile mixes in.
set -uo pipefail
echo "== synk.fn call paths on one GPU worker"
timeout 120 node dist/bench/call-paths.js --workers 1 --devices cuda 2>&1 | tail -5
echo "== a bare call in-process and on a worker; the MLP step in this thread and on a worker"
for sz in 1024 4096; do timeout 60 node dist/bench/worker-overhead.js --size $sz --devices cuda 2>&1 | tail -1; done
timeout 120 node dist/bench/gpu-step.js --worker --batches 512 --steps 200 --precision high 2>&1 | grep -E "batch 512"
echo "== makeTrainFunction, one GPU worker, batch 512, TF32"
for i in 1 2; do
  timeout 120 node dist/bench/train.js --workers 1 --devices cuda --data shared --batches 512 --steps 300 --precision high 2>&1 | grep -E "^workers"
done
echo "== per-step CPU profile (600 - 150 steps: 675 extra calls)"
for st in 150 600; do
  rm -rf /tmp/prof$st
  timeout 150 node --cpu-prof --cpu-prof-dir=/tmp/prof$st dist/bench/train.js --workers 1 --devices cuda --data shared --batches 512 \
    --steps $st --precision high 2>&1 | grep -E "^workers"
done
node bench/cpuprof-diff.mjs /tmp/prof600 /tmp/prof150 675 18
