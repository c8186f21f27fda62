#!/usr/bin/env bash
# Issue 15 part 2 (bf16 precision policy) on the GPU machine, one call, from the project root there:
#   source .device-carry/env.sh && bash bench/device-bf16.sh        (logs and JSON in $OUT)
# GPU tests of the policy (and the precision / cuDNN suites it touches), then bench/cuda.ts (gemm and conv
# rows under precision 'bf16', PyTorch autocast peers in the same run) and the MLP step (train.ts --data
# shared at highest / high / bf16, train_torch.py eager fp32 / TF32 / autocast bf16).
set -uo pipefail
out=${OUT:-out}; mkdir -p "$out"
nvidia-smi -L
for t in bf16-gpu precision cudnn-gpu; do
  echo "=== test $t"
  timeout 300 node --test --test-reporter=spec dist/test/devices/cuda/$t.test.js 2>&1 | tee "$out/test-$t.txt" \
    | grep -E "^(✔|✖|ℹ (tests|pass|fail|skipped))|error" | head -60
done
echo "=== bench/cuda.ts"
timeout 300 node dist/bench/cuda.js --out "$out" 2>&1 | tee "$out/cuda-bench.txt" | grep -E "^\| (gemm|conv)|^conv|^gemm"
echo "=== MLP step"
for p in highest high bf16; do
  timeout 150 node dist/bench/train.js --devices cuda --workers 1 --data shared --batches 512,8192 --steps 50 --precision $p 2>&1 | tail -2 | sed "s/^/$p /"
done | tee "$out/train-cuda.txt"
timeout 200 python3 bench/train_torch.py --no-cpu --tf32 --bf16 --no-compile --batches 512,8192 --steps 50 2>&1 | tail -8 | tee "$out/train-torch.txt"
