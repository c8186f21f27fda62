// The split fit on a real GPU (skips, saying why, where none is usable): arrays of many sizes of 1 MiB and more,
// uploaded, freed and uploaded again in a shuffled order so that freed memory is cut and merged, all keep their own
// values (no two live arrays share a byte), the allocator serves later ones from memory it holds, and trim gives it back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { config } from '../../../src/devices/config.js';
import type { CudaArray } from '../../../src/devices/cuda/cuda-array.js';
import { gpu } from '../../helpers/gpu.js';

const MiB = 2 ** 20;

test('split fit: arrays cut from freed memory keep their own values', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  if (config().cudaAllocFit !== 'split') {
    t.skip(`SYNK_CUDA_ALLOC_FIT is ${config().cudaAllocFit}, not split`);
    return;
  }
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  const fill = (floats: number, tag: number) => {
    const a = new NDArray('float32', [floats]);
    for (let i = 0; i < floats; i += 997) a.data[i] = tag + i;
    a.data[floats - 1] = tag;
    return a;
  };
  const live: { arr: CudaArray; host: NDArray }[] = [];
  const check = () => {
    for (const { arr, host } of live) {
      const back = dev.download(arr);
      for (let i = 0; i < host.size; i += 997) assert.equal(back.data[i], host.data[i], `element ${i} of an array of ${host.size}`);
      assert.equal(back.data[host.size - 1], host.data[host.size - 1]);
    }
  };
  for (let round = 0; round < 6; round++) {
    for (let k = 0; k < 8; k++) {
      const floats = (MiB / 4) * (1 + (next() % 24)) + (next() % 5000);
      const host = fill(floats, round * 100 + k);
      live.push({ arr: dev.upload(host) as CudaArray, host });
    }
    check();
    for (let k = 0; k < 5; k++) dev.free(live.splice(next() % live.length, 1)[0]!.arr);
  }
  const before = dev.stats().memory;
  for (let k = 0; k < 3; k++) {
    const host = fill(MiB / 4, 9000 + k);
    live.push({ arr: dev.upload(host) as CudaArray, host });
  }
  check();
  assert.equal(dev.stats().memory.driverAllocs, before.driverAllocs, '1 MiB arrays are cut from memory already held');
  for (const { arr } of live.splice(0)) dev.free(arr);
  dev.trim();
  assert.ok(dev.stats().memory.cached < MiB, 'trim gives the whole free segments back');
});
