#!/usr/bin/env bash
# On the GPU machine (issue #11 parts 2 and 8): the OpenBLAS core-type choice, T.fn on a 512x512
# matmul (reference interpreter vs the default device), and the main job's samples/s on the CPU at
# several batches and worker counts, to choose the default workers.
set -uo pipefail
echo "== cores: $(nproc); $(grep -m1 'model name' /proc/cpuinfo)"
node -e "import('./dist/src/devices/cpu/cpu-device.js').then(({CpuDevice}) => {
  const d = new CpuDevice({ notice: false }); console.log('notice:', d.notice); })"
node dist/bench/tfn-matmul.js
for b in 128 1024 4096; do
  for w in 1 2 4 8 16; do
    printf 'batch %5d workers %2d: ' $b $w
    node dist/examples/main-train.js --devices cpu --epochs 1 --train-rows 32768 --test-rows 2000 --target 0 --batch $b --workers $w --chart /tmp/c.svg 2>&1 \
      | grep -oE 'mean [0-9]+ samples/s' | tail -1
  done
done
