#!/usr/bin/env bash
# Session 6 device call (issue #15 part 5, issue #12's CNN goal): the MNIST CNN's training step on CPU
# workers against PyTorch CPU, with the per-op profile of one rank's gradient. Run from the repository
# root after `node scripts/build.mjs`: `bash bench/device-cnn.sh` (about 3 minutes on 16 cores).
set -uo pipefail
workers=${WORKERS:-1,2,16}
threads=${THREADS:-1,2,16}
echo "== one rank's CNN gradient, per op (one CPU device in this thread)"
OPENBLAS_NUM_THREADS=1 timeout 120 node dist/bench/cnn-ops.js --batches 8,64 --calls 20 2>&1 | head -40
echo "== train-mnist-cnn's network through makeTrainFunction on CPU workers ($workers)"
OPENBLAS_NUM_THREADS=1 timeout 400 node dist/bench/cnn.js --workers "$workers" --batches 128,1024 --steps 20 2>&1 | tail -14
echo "== the same network in PyTorch (CPU, $threads threads)"
(unset OPENBLAS_NUM_THREADS; timeout 300 python3 bench/cnn_torch.py --threads "$threads" --batches 128,1024 --steps 20 --no-cuda 2>&1 | tail -10)
