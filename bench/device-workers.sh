#!/usr/bin/env bash
# Default-worker measurement on the GPU machine's CPU: the main job at several worker counts,
# the OpenBLAS core-type choice, and T.fn on a 512x512 matmul (reference interpreter vs default device).
set -uo pipefail
echo "== cores: $(nproc); $(grep -m1 'model name' /proc/cpuinfo)"
node -e "import('./dist/src/devices/cpu/cpu-device.js').then(({CpuDevice}) => { const d = new CpuDevice({ notice: false }); console.log('notice:', d.notice); })"
node dist/bench/tfn-matmul.js
for w in 1 2 4 8 12 14 15 16; do
  printf 'workers %2d: ' $w
  node dist/examples/main-train.js --devices cpu --quick --workers $w --chart /tmp/c.svg 2>&1 | grep -E 'samples/s' | tail -1
done
