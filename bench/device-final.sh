#!/usr/bin/env bash
# Everything the GPU machine measures in one call (16 CPU cores + one H200). From the project root
# there: `source .device-carry/env.sh && bash bench/device-final.sh` (OpenBLAS carried). Logs in $OUT.
set -u
out=${OUT:-out}; mkdir -p "$out"
source bench/device-cpu.sh                                   # picks OPENBLAS_CORETYPE, 1 BLAS thread
node dist/bench/dispatch.js 1,2,4,8,16 2>&1 | tee "$out/dispatch.txt"
# W1 and its peers in the same run (NumPy threads / processes, PyTorch threads, NumPy 1 thread)
node dist/bench/w1.js --workers 1,2,4,8,16 --calls 5 --no-local 2>&1 | tee "$out/w1.txt"
python3 bench/w1_peers.py 16 32768 5 2>&1 | tee "$out/w1-peers.txt"
# training step: ours on 16 CPU workers and on the GPU, PyTorch on the same machine
timeout 150 node dist/bench/train.js --workers 16 --batches 512,8192 --steps 8 2>&1 | tail -6 | tee "$out/train-cpu.txt"
timeout 120 node dist/bench/train.js --devices cuda --workers 1 --batches 512,8192 --steps 10 2>&1 | tail -6 | tee "$out/train-cuda.txt"
timeout 120 python3 bench/train_torch.py --threads 16 --batches 512,8192 --steps 10 --no-compile 2>&1 | tail -8 | tee "$out/train-torch.txt"
# the data-parallel runtime on GPU workers and the NCCL communicator
timeout 200 node scripts/run-tests.mjs cuda-workers 2>&1 | tail -40 | tee "$out/test-cuda-workers.txt"
timeout 120 node scripts/run-tests.mjs nccl 2>&1 | tail -40 | tee "$out/test-nccl.txt"
