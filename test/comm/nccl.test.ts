// The NCCL Communicator. Without a GPU (or without libnccl) the GPU tests skip, saying why; the
// bounded-wait and bootstrap logic is tested everywhere. On a GPU machine: every collective and op
// with 1 rank, with one rank per GPU when there are several, and with 2 ranks on the SAME GPU
// (NCCL either runs it or refuses; either way the outcome must be clear and bounded, never a hang).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { cudaAvailable } from '../../src/devices/cuda/ffi/driver.js';
import { ReferenceDevice } from '../../src/devices/reference/reference-device.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { pollUntilDone } from '../../src/devices/cuda/nccl-support.js';
import { NCCL_BOOTSTRAP_BYTES, createNcclBootstrap, joinDeviceGroupOf } from '../../src/parallel/gpu-comm.js';
import { joinNcclGroup } from './fixtures/join-nccl.js';

const found = cudaAvailable();

async function ncclOrSkip(t: TestContext): Promise<boolean> {
  if (!found.ok) { t.skip(`no usable CUDA device: ${found.reason.split('\n')[0]}`); return false; }
  try {
    (await import('../../src/devices/cuda/nccl-communicator.js')).findNccl();
    return true;
  } catch (e) {
    t.skip(`libnccl not loadable: ${(e as Error).message.split('\n')[0]}`);
    return false;
  }
}

test('pollUntilDone: finished, failed, aborted by the probe, timed out', async () => {
  assert.equal(await pollUntilDone(Promise.resolve(), performance.now() + 1000, () => null), null);
  const failed = await pollUntilDone(Promise.reject(new Error('boom')), performance.now() + 1000, () => null);
  assert.equal(failed?.reason, 'boom');
  assert.equal(failed?.timedOut, false);
  const never = new Promise<void>(() => undefined);
  const probed = await pollUntilDone(never, performance.now() + 5000, () => 'communicator aborted: rank 1 died');
  assert.deepEqual(probed, { reason: 'communicator aborted: rank 1 died', timedOut: false });
  const t0 = performance.now();
  const late = await pollUntilDone(never, performance.now() + 30, () => null);
  assert.equal(late?.timedOut, true);
  assert.ok(performance.now() - t0 < 2000);
});

test('joinNcclGroup refuses a device that is not CUDA and marks the bootstrap failed by that rank', async () => {
  const bootstrap = createNcclBootstrap();
  assert.equal(bootstrap.byteLength, NCCL_BOOTSTRAP_BYTES);
  await assert.rejects(joinNcclGroup(new ReferenceDevice(), bootstrap, 1, 2), /NCCL rank 1: the device is reference, not cuda/);
  const i32 = new Int32Array(bootstrap, 0, 4);
  assert.equal(i32[0], 2);
  assert.equal(i32[2], 1);
});

test('joinDeviceGroupOf refuses a kind whose devices form no group and marks the bootstrap failed by that rank', async () => {
  const bootstrap = createNcclBootstrap();
  await assert.rejects(joinDeviceGroupOf('cpu', new ReferenceDevice(), bootstrap, 1, 2), /rank 1: devices of kind 'cpu' form no device group/);
  const i32 = new Int32Array(bootstrap, 0, 4);
  assert.equal(i32[0], 2);
  assert.equal(i32[2], 1);
});

interface RankReply { rank: number; results?: Record<string, number[] | number[][] | null>; error?: { name: string; message: string } }

/** One worker per entry of `indices` (the GPU of each rank); bounded; rejects on a hang. */
async function runRanks(indices: readonly number[], timeoutMs = 120_000): Promise<RankReply[]> {
  const bootstrap = createNcclBootstrap();
  const workers = indices.map((index, rank) => new Worker(
    new URL('./nccl-rank-worker.js', import.meta.url),
    { workerData: { rank, size: indices.length, index, bootstrap } },
  ));
  const replies = workers.map((w) => new Promise<RankReply>((resolve, reject) => {
    w.once('message', (m: RankReply) => resolve(m));
    w.once('error', reject);
  }));
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    const message = `NCCL ranks on GPUs [${indices.join(', ')}] did not finish within ${timeoutMs} ms`;
    timer = setTimeout(() => reject(new Error(message)), timeoutMs);
  });
  try {
    return await Promise.race([Promise.all(replies), hang]);
  } finally {
    clearTimeout(timer);
    await Promise.all(workers.map((w) => Promise.race([w.terminate(), new Promise((r) => setTimeout(r, 5000).unref())])));
  }
}

function checkRank(reply: RankReply, n: number): void {
  const r = reply.rank;
  assert.equal(reply.error, undefined, `rank ${r}: ${reply.error?.name}: ${reply.error?.message}`);
  const got = reply.results!;
  const v = [1, 2, 3, 4, 5];
  const fact = Array.from({ length: n }, (_, k) => k + 1).reduce((a, b) => a * b, 1);
  const tri = (n * (n + 1)) / 2;
  const expect: Record<string, unknown> = {
    'f32 sum': v.map((x) => x * tri), 'f32 avg': v.map((x) => (x * tri) / n), 'f32 prod': v.map((x) => x ** n * fact),
    'f32 max': v.map((x) => x * n), 'f32 min': v,
    'f64 sum': [(n * (n - 1)) / 2, 0.5 * n], 'i32 sum': [(n * (n - 1)) / 2, -(n * (n - 1)) / 2, 7 * n],
    'u8 max': [n - 1, 200], 'bool sum': [1, 0], 'bool prod': [n === 1 ? 1 : 0, 1],
    'reduce': r === 0 ? v.map((x) => x * tri) : v.map((x) => x * (r + 1)),
    'broadcast': [n - 1, n - 1],
    'allGather': Array.from({ length: n }, (_, k) => new Array<number>(k).fill(k)),
    'gather': r === n - 1 ? Array.from({ length: n }, (_, k) => [k * 10]) : null,
    'scatter': new Array<number>(r + 2).fill(r * 10),
    'device avg': [(n - 1) / 2, 1],
    'device allGather shape': [tri, 2],
    'device allGather': Array.from({ length: n }, (_, k) => new Array<number>(2 * (k + 1)).fill(k)).flat(),
    'device broadcast': [n - 1, 1],
  };
  for (const [key, want] of Object.entries(expect)) {
    const g = got[key];
    if (Array.isArray(want) && want.every((x) => typeof x === 'number')) {
      assert.ok(Array.isArray(g), `rank ${r} ${key}: missing`);
      (g as number[]).forEach((x, i) => assert.ok(
        Math.abs(x - (want[i] as number)) <= 1e-5 * Math.max(1, Math.abs(want[i] as number)),
        `rank ${r} ${key}[${i}]: ${x} vs ${String(want[i])}`,
      ));
      assert.equal((g as number[]).length, want.length, `rank ${r} ${key}: length`);
    } else {
      assert.deepEqual(g, want, `rank ${r} ${key}`);
    }
  }
}

test('NCCL, 1 rank: every collective, op and dtype, host and device buffers', async (t) => {
  if (!await ncclOrSkip(t)) return;
  const [reply] = await runRanks([0]);
  checkRank(reply!, 1);
});

test('NCCL, one rank per GPU: every collective with rank-dependent values', async (t) => {
  if (!await ncclOrSkip(t)) return;
  const n = found.ok ? found.deviceCount : 0;
  if (n < 2) return t.skip(`needs 2+ GPUs, found ${n}`);
  const replies = await runRanks(Array.from({ length: n }, (_, i) => i));
  for (const reply of replies) checkRank(reply, n);
});

test('NCCL, 2 ranks on the SAME GPU: runs, or is refused clearly by every rank (never hangs)', async (t) => {
  if (!await ncclOrSkip(t)) return;
  const replies = await runRanks([0, 0], 120_000);
  const errors = replies.filter((r) => r.error);
  if (errors.length === 0) {
    t.diagnostic('this NCCL runs 2 ranks on one GPU');
    for (const reply of replies) checkRank(reply, 2);
    return;
  }
  for (const { rank, error } of errors) {
    t.diagnostic(`rank ${rank}: ${error!.name}: ${error!.message}`);
    assert.match(error!.message, new RegExp(`NCCL rank ${rank}\\b`), 'the error names the rank');
    assert.match(error!.message, /ncclCommInitRank|rank \d failed before joining|NCCL reported/, 'the error says which step failed');
  }
});

test('NCCL communicator: refuses bad arguments, and every call after close() is a clear CommAbortedError', async (t) => {
  if (!await ncclOrSkip(t)) return;
  const { CudaDevice } = await import('../../src/devices/cuda/cuda-device.js');
  const device = new CudaDevice({ cacheDir: null });
  try {
    const comm = await joinNcclGroup(device, createNcclBootstrap(), 0, 1, { timeoutMs: 10_000 });
    const ints = device.upload(new NDArray('int32', [3], Int32Array.from([1, 2, 3])));
    await assert.rejects(comm.allReduceDevice(ints as never, 'avg'), /'avg' needs a float dtype/);
    await assert.rejects(comm.allReduce(new Float32Array(2), { root: 3 } as never).then(() => comm.reduce(new Float32Array(2), { root: 3 })), /root.*\[0, 1\)/);
    assert.deepEqual([...await comm.allReduce(Int32Array.from([4, 5]))], [4, 5]);
    comm.close();
    comm.close(); // idempotent
    await assert.rejects(
      comm.allReduce(new Float32Array(2)),
      (e: Error) => e.name === 'CommAbortedError' && /rank 0: allReduce: the NCCL communicator was aborted \(the communicator is closed\)/.test(e.message),
    );
  } finally {
    device.close();
  }
});
