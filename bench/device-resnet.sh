#!/usr/bin/env bash
# ResNet training throughput on the GPU machine (16 cores, one H200), ours and PyTorch's in the same
# call, then one table (bench/resnet-table.ts). From the project root there:
#   source .device-carry/env.sh && node scripts/build.mjs && bash bench/device-resnet.sh [gpu|compile|cpu]
#   gpu      (default) bench/resnet.ts on CUDA at --precision highest,high,bf16 and resnet_torch.py eager fp32, tf32, bf16
#   compile  resnet_torch.py under torch.compile (each configuration compiles afresh: about a minute each)
#   cpu      ResNet-18 on 16 CPU workers against PyTorch with 16 threads (OpenBLAS carried: device-cpu.sh picks its core type)
#   parity   our ResNet-18 and ResNet-50 against torchvision's on the same weights and input (logits, running statistics)
# RESNET_FLAGS: more flags for bench/resnet.ts (e.g. --cudnn-benchmark).
# MODEL=resnet18 for ResNet-18 on the GPU; BATCHES (default 64,128,256) and STEPS (default 10) likewise. Logs and JSON in $OUT.
set -u
out=${OUT:-out}; mkdir -p "$out"
what=${1:-gpu}
model=${MODEL:-resnet50}
batches=${BATCHES:-64,128,256}
steps=${STEPS:-10}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
case "$what" in
  gpu)
    timeout ${SYNK_TIMEOUT:-360} node dist/bench/resnet.js --model "$model" --devices cuda --precision highest,high,bf16 --batches "$batches" --steps "$steps" \
      ${RESNET_FLAGS:-} --json "$out/resnet-synk-$model.json" 2>&1 | tee "$out/resnet-synk-$model.txt"
    timeout 180 python3 bench/resnet_torch.py --model "$model" --modes eager --batches "$batches" --steps "$steps" \
      --json "$out/resnet-torch-$model.json" 2>&1 | tee "$out/resnet-torch-$model.txt"
    node dist/bench/resnet-table.js "$out/resnet-synk-$model.json" "$out/resnet-torch-$model.json" 2>&1 | tee "$out/resnet-table-$model.md"
    ;;
  compile)
    timeout 570 python3 bench/resnet_torch.py --model "$model" --modes compile --batches "${BATCHES:-256}" --steps "$steps" \
      --json "$out/resnet-torch-compile-$model.json" 2>&1 | tee "$out/resnet-torch-compile-$model.txt"
    ;;
  cpu)
    source bench/device-cpu.sh
    timeout 300 node dist/bench/resnet.js --model resnet18 --devices cpu --workers 16 --batches "${BATCHES:-64}" --steps "${STEPS:-5}" \
      --json "$out/resnet-synk-cpu.json" 2>&1 | tee "$out/resnet-synk-cpu.txt"
    timeout 200 python3 bench/resnet_torch.py --model resnet18 --devices cpu --threads 16 --batches "${BATCHES:-64}" --steps "${STEPS:-5}" \
      --json "$out/resnet-torch-cpu.json" 2>&1 | tee "$out/resnet-torch-cpu.txt"
    node dist/bench/resnet-table.js "$out/resnet-synk-cpu.json" "$out/resnet-torch-cpu.json" 2>&1 | tee "$out/resnet-table-cpu.md"
    ;;
  parity)
    for m in resnet18 resnet50; do
      node dist/bench/resnet-parity.js --model "$m" --out "/tmp/resnet-parity" 2>&1 | tee -a "$out/resnet-parity.txt"
      python3 bench/resnet_parity_torch.py --model "$m" --dir /tmp/resnet-parity 2>&1 | tee -a "$out/resnet-parity.txt"
    done
    ;;
  *) echo "device-resnet.sh: expected gpu, compile, cpu or parity, got '$what'" >&2; exit 2 ;;
esac
