// The data-parallel runtime on GPU workers: fork({ devices: 'cuda' }) starts one worker per GPU,
// each with its NCCL communicator; results must equal one device on the whole batch (f.local), and
// collectives on shared variables run through NCCL on the GPU copies. Written for n = the number of
// GPUs (1 on a single-GPU machine). Skipped, saying why, where no CUDA device (or no NCCL) is usable.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { cudaAvailable } from '../../src/devices/cuda/ffi/driver.js';
import { splitPoints } from '../../src/parallel/split.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';

const found = cudaAvailable();
let skip: string | false = found.ok ? false : `no usable CUDA device: ${found.reason.split('\n')[0]}`;
if (!skip) {
  try {
    (await import('../../src/devices/cuda/nccl-communicator.js')).findNccl();
  } catch (e) {
    skip = `libnccl not loadable: ${(e as Error).message.split('\n')[0]}`;
  }
}
if (skip) console.log(`# cuda-workers: skipped: ${skip}`);

const TOL = { rtol: 1e-4, atol: 1e-5 };

describe('the data-parallel runtime on GPU workers', { skip }, () => {
  let n = 0;
  before(async () => { n = await synk.fork({ devices: 'cuda' }); });
  after(async () => { await synk.close(); });

  const x = T.matrix('x');
  const w = T.shared(randomArray([4, 3], 1, { dtype: 'float32' }), { name: 'w' });
  const h = x.dot(w).tanh();
  const f = synk.fn({ inputs: [x], outputs: [[h.mean(), 'avg'], [h.sum(), 'sum'], [h.max(), 'max'], [h.min(), 'min'], [h.sum(1), 'gather']] });
  const ROWS = 11;
  const X = randomArray([ROWS, 4], 2, { dtype: 'float32' });

  function rowsOf(a: T.NDArray, idx: readonly number[]): T.NDArray {
    const c = a.shape[1]!;
    const out = new T.NDArray(a.dtype, [idx.length, c]);
    idx.forEach((r, i) => out.data.set(a.data.subarray(r * c, (r + 1) * c), i * c));
    return out;
  }

  test('one worker per GPU, each outputs op equals one device on the whole batch', async () => {
    assert.equal(n, found.ok ? found.deviceCount : 0);
    const got = (await f(X)) as T.NDArray[];
    const want = f.local(X) as T.NDArray[];
    got.forEach((g, i) => assertAllClose(g, want[i]!, TOL, `output ${i}`));
  });

  test('batch (range, index list) and numSlices', async () => {
    for (const [batch, idx] of [[{ start: 2, stop: 9 }, [2, 3, 4, 5, 6, 7, 8]], [[10, 0, 3, 3], [10, 0, 3, 3]]] as const) {
      const got = (await f(X, { batch: batch as never })) as T.NDArray[];
      const want = f.local(rowsOf(X, idx)) as T.NDArray[];
      got.forEach((g, i) => assertAllClose(g, want[i]!, TOL, `batch ${JSON.stringify(batch)} output ${i}`));
    }
    for (const k of [2, 3]) {
      const got = (await f(X, { numSlices: k })) as T.NDArray[];
      const want = f.local(X) as T.NDArray[];
      got.slice(0, 4).forEach((g, i) => assertAllClose(g, want[i]!, TOL, `numSlices ${k} output ${i}`));
    }
  });

  test('updates: rank 0 applies its own rows; the controller reads it when asked', async () => {
    const acc = T.shared(new T.NDArray('float32', [4]), { name: 'acc' });
    const g = synk.fn({ inputs: [x], outputs: [[x.sum(), 'sum']], updates: [[acc, acc.add(x.sum(0))]] });
    await g(X);
    await g(X);
    const mine = rowsOf(X, [...Array(splitPoints(ROWS, n)[1]).keys()]);
    const want = Array.from({ length: 4 }, (_, j) => 2 * Array.from({ length: mine.shape[0]! }, (_, r) => mine.data[r * 4 + j]!).reduce((a, b) => a + b, 0));
    assertAllClose(acc.getValue(), want, TOL);
  });

  test('collectives on shared variables go through NCCL on the GPU copies', async () => {
    const s = T.shared(Float32Array.from([1, 2, 3]), { name: 's' });
    const use = synk.fn({ outputs: [s.sum(), 'sum'] }); // puts s on every GPU
    await synk.broadcast(s, [1, 2, 3]);
    assertAllClose((await use()) as T.NDArray, 6 * n, TOL);
    for (let r = 0; r < n; r++) await synk.setValue(r, s, [r, 2 * r, 1]);
    await synk.allReduce(s, { op: 'sum' });
    const tri = (n * (n - 1)) / 2;
    for (let r = 0; r < n; r++) assertAllClose((await synk.getValue(r, s)) as T.NDArray, [tri, 2 * tri, n], TOL, `sum rank ${r}`);
    assertAllClose((await use()) as T.NDArray, n * (3 * tri + n), TOL, 'functions read the reduced GPU copy');
    await synk.allReduce(s, { op: 'avg' });
    assertAllClose(s.getValue(), [tri / n, (2 * tri) / n, 1], TOL, 'avg');
    await synk.allReduce(s, { op: 'max' });
    assertAllClose((await synk.reduce(s, { op: 'sum', inPlace: false })) as T.NDArray, [tri, 2 * tri, n], TOL, 'reduce not in place');
    const gathered = (await synk.gather(s)) as T.NDArray;
    assert.deepEqual(gathered.shape, [n, 3]);
    const m = T.shared(new T.NDArray('float32', [0, 2]), { name: 'm' });
    await synk.scatter(m, randomArray([2 * n + 1, 2], 5, { dtype: 'float32' }));
    const before = (await synk.gather(m, { ndUp: 0 })) as T.NDArray;
    await synk.allGather(m);
    assertAllClose((await synk.getValue(n - 1, m)) as T.NDArray, before, TOL, 'allGather (unequal row counts) on the last rank');
  });

  test('batchS indexes a GPU-resident sliceable shared on the GPU (ranges, index lists, numSlices, bounds)', async () => {
    const DAT = 40;
    const sX = T.shared(new T.NDArray('float32', [DAT, 4]), { name: 'sX' });
    const g = synk.fn({ outputs: [[sX.dot(w).tanh().sum(0), 'sum'], [sX.sum(1), 'gather']], sliceableShareds: [sX] });
    const all = randomArray([DAT * n, 4], 7, { dtype: 'float32' });
    await synk.scatter(sX, all);
    const mine = (r: number, idx: readonly number[]) => idx.map((i) => r * DAT + i);
    const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
    const list = [39, 0, 5, 5, 17];
    for (const numSlices of [1, 3]) {
      for (const [batchS, idx] of [[{ start: 3, stop: 31 }, range(3, 31)], [list, list], [Int32Array.from([1, 2, 8]), [1, 2, 8]]] as const) {
        const rows = rowsOf(all, Array.from({ length: n }, (_, r) => mine(r, idx as readonly number[])).flat());
        const got = (await g({ batchS: batchS as never, numSlices })) as T.NDArray[];
        const plainX = T.matrix('px');
        const want = T.fn({ inputs: [plainX], outputs: [plainX.dot(w.getValue()).tanh().sum(0), plainX.sum(1)] })(rows) as T.NDArray[];
        got.forEach((v, i) => assertAllClose(v, want[i]!, TOL, `batchS ${JSON.stringify(batchS)} numSlices ${numSlices} output ${i}`));
      }
    }
    await assert.rejects(g({ batchS: [0, DAT] }), (e: Error) => /rank \d+/.test(e.message) && /outside 0\.\.39/.test(e.message));
    const after = (await g()) as T.NDArray[];
    assertAllClose(after[1]!, T.fn({ inputs: [x], outputs: x.sum(1) })(all) as T.NDArray, TOL, 'the failed call changed nothing');
  });

  test('updates stay on the GPU between calls; reading the value brings rank 0\'s copy', async () => {
    const p = T.shared(Float32Array.from([1, 1, 1]), { name: 'p' });
    const step = synk.fn({ inputs: [x], outputs: [[x.sum(), 'sum']], updates: [[p, p.mul(0.5).add(x.mean())]] });
    let host = Float32Array.from([1, 1, 1]);
    for (let k = 0; k < 5; k++) {
      await step(X, { batch: { start: 0, stop: n } }); // one row per rank: rank 0 sees row 0
      const m0 = Array.from({ length: 4 }, (_, j) => X.data[j]!).reduce((a, b) => a + b, 0) / 4;
      host = host.map((v) => v * 0.5 + m0);
    }
    assertAllClose(p.getValue(), host, TOL, 'five device-resident updates, read once');
    await synk.allReduce(p, { op: 'avg' });
    assertAllClose((await synk.getValue(0, p)) as T.NDArray, p.getValue(), TOL, 'rank 0 and the controller agree after a collective');
  });

  test('close() destroys the communicators; a new fork builds new ones', async () => {
    await synk.close();
    assert.equal(synk.isForked?.() ?? false, false);
    n = await synk.fork({ devices: 'cuda' });
    const got = (await f(X)) as T.NDArray[];
    assertAllClose(got[1]!, (f.local(X) as T.NDArray[])[1]!, TOL);
  });
});
