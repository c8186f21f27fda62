// synk.devices() lists what fork() would find: the CPU cores with their GEMM, and every usable
// CUDA GPU (or why there is none), without starting workers or GPU contexts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import * as synk from '../../src/index.js';
import { cudaAvailable } from '../../src/devices/cuda/ffi/driver.js';

test('devices() lists the CPU cores, the GPUs, and what auto would start', async () => {
  const found = await synk.devices();
  assert.equal(found.cpu.cores, os.availableParallelism());
  assert.match(found.cpu.gemm, /\S/);
  const cuda = cudaAvailable();
  if (cuda.ok) {
    assert.equal(found.cuda.length, cuda.deviceCount);
    found.cuda.forEach((g, i) => {
      assert.equal(g.index, i);
      assert.match(g.arch, /^sm_\d+$/);
      assert.ok(g.name.length > 0 && g.memoryBytes > 0 && g.multiprocessors > 0, JSON.stringify(g));
    });
    assert.equal(found.auto, 'cuda');
  } else {
    assert.deepEqual(found.cuda, []);
    assert.equal(found.cudaUnavailable, cuda.reason.split('\n')[0]);
    assert.equal(found.auto, 'cpu');
  }
  assert.equal(synk.isForked(), false, 'nothing was started');
});
