import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerPool } from '../../src/parallel/pool.js';
import { type ReduceOp, REDUCE_OPS, combineInto, finishAvg } from '../../src/comm/reduce-ops.js';
import { type DType, type TypedArray, storageOf } from '../../src/tensor/dtype.js';
import type { Step, Task, TaskResult } from '../parallel/fixtures/comm-worker.js';

const script = new URL('../parallel/fixtures/comm-worker.js', import.meta.url);
const DTYPES: DType[] = ['float32', 'float64', 'int32', 'uint8', 'bool'];

function make(dtype: DType, length: number, seed: number): TypedArray {
  const a = new (storageOf(dtype))(length);
  for (let i = 0; i < length; i++) {
    const k = (i * 7 + seed * 13) % 11;
    a[i] = dtype === 'bool' ? Number((i + seed) % 3 === 0) : dtype === 'uint8' ? k : dtype === 'int32' ? k - 5 : k - 5 + 0.5;
  }
  return a;
}

function expectedReduce(op: ReduceOp, dtype: DType, bufs: TypedArray[]): TypedArray {
  const acc = bufs[0]!.slice();
  for (const b of bufs.slice(1)) combineInto(op, acc, b, { dtype });
  if (op === 'avg') finishAvg(acc, bufs.length);
  return acc;
}

const run = async (pool: WorkerPool, task: (rank: number) => Task): Promise<TaskResult[]> =>
  (await pool.sendMessages(Array.from({ length: pool.size }, (_, r) => task(r)))) as TaskResult[];

const arr = (x: unknown): unknown => (ArrayBuffer.isView(x) ? Array.from(x as TypedArray) : Array.isArray(x) ? x.map(arr) : x);

function collectiveSuite(n: number, arenaBytes: number, maxArenaBytes: number, scale: number): void {
  describe(`ShmCommunicator, ${n} rank${n > 1 ? 's' : ''}, arena ${arenaBytes}..${maxArenaBytes} bytes`, () => {
    let pool: WorkerPool;
    before(async () => {
      pool = await WorkerPool.start({ n, script, comm: { arenaBytes, maxArenaBytes, timeoutMs: 10_000 }, timeoutMs: 15_000 });
    });
    after(() => pool.close());

    test('broadcast from every root, every dtype, small and larger than the arena', async () => {
      const cases = DTYPES.flatMap((dtype) => [1, 37 * scale].flatMap((len) => Array.from({ length: n }, (_, root) => ({ dtype, len, root }))));
      const out = await run(pool, (rank) => ({
        steps: cases.map((c) => ({ kind: 'broadcast', buf: rank === c.root ? make(c.dtype, c.len, 3) : new (storageOf(c.dtype))(c.len), options: { root: c.root } })),
      }));
      for (const r of out) cases.forEach((c, i) => assert.deepEqual(arr(r.values[i]), arr(make(c.dtype, c.len, 3)), JSON.stringify(c)));
    });

    test('scatter of unequal parts (some empty) from every root', async () => {
      const lens = Array.from({ length: n }, (_, r) => (r % 2 === 1 ? 0 : (r + 1) * 5 * scale));
      const parts = (dtype: DType): TypedArray[] => lens.map((len, r) => make(dtype, len, r));
      const cases = DTYPES.flatMap((dtype) => Array.from({ length: n }, (_, root) => ({ dtype, root })));
      const out = await run(pool, (rank) => ({
        steps: cases.map((c) => ({ kind: 'scatter', parts: rank === c.root ? parts(c.dtype) : null, options: { root: c.root } })),
      }));
      out.forEach((r, rank) => cases.forEach((c, i) => {
        const got = r.values[i] as TypedArray;
        assert.equal(got.constructor, storageOf(c.dtype));
        assert.deepEqual(arr(got), arr(parts(c.dtype)[rank]));
      }));
    });

    test('gather and allGather keep unequal lengths in rank order, nothing truncated', async () => {
      const len = (r: number): number => (r === 1 ? 0 : (3 * r + 1) * scale);
      const cases = DTYPES.flatMap((dtype) => [...Array.from({ length: n }, (_, root) => ({ dtype, kind: 'gather' as const, root })), { dtype, kind: 'allGather' as const, root: 0 }]);
      const out = await run(pool, (rank) => ({
        steps: cases.map((c) => ({ kind: c.kind, buf: make(c.dtype, len(rank), rank), options: c.kind === 'gather' ? { root: c.root } : {} })),
      }));
      const want = (dtype: DType): unknown => Array.from({ length: n }, (_, r) => arr(make(dtype, len(r), r)));
      out.forEach((r, rank) => cases.forEach((c, i) => {
        if (c.kind === 'gather' && rank !== c.root) assert.equal(r.values[i], null);
        else assert.deepEqual(arr(r.values[i]), want(c.dtype), JSON.stringify(c));
      }));
    });

    test('reduce and allReduce: every op and dtype, every root, bit-equal to a sequential reduction', async () => {
      const len = 29 * scale;
      const input = (dtype: DType, rank: number): TypedArray => {
        const a = make(dtype, len, rank + 1);
        if ((dtype === 'float32' || dtype === 'float64') && rank === n - 1) a[3] = Number.NaN;
        return a;
      };
      const cases = DTYPES.flatMap((dtype) =>
        REDUCE_OPS.filter((op) => op !== 'avg' || dtype === 'float32' || dtype === 'float64').flatMap((op) => [
          { dtype, op, kind: 'allReduce' as const, root: 0 },
          ...Array.from({ length: n }, (_, root) => ({ dtype, op, kind: 'reduce' as const, root })),
        ]),
      );
      const out = await run(pool, (rank) => ({
        steps: cases.map((c) => ({ kind: c.kind, buf: input(c.dtype, rank), options: { op: c.op, root: c.root, ...(c.dtype === 'bool' ? { dtype: 'bool' as const } : {}) } })),
      }));
      out.forEach((r, rank) => cases.forEach((c, i) => {
        const inputs = Array.from({ length: n }, (_, k) => input(c.dtype, k));
        const want = c.kind === 'allReduce' || rank === c.root ? expectedReduce(c.op, c.dtype, inputs) : inputs[rank]!;
        assert.deepEqual(arr(r.values[i]), arr(want), JSON.stringify({ ...c, rank }));
      }));
    });

    test('barrier, and a long mixed sequence stays in step', async () => {
      const steps = (rank: number): Step[] => [
        { kind: 'barrier' },
        { kind: 'allReduce', buf: new Float64Array([rank]), options: { op: 'max' } },
        { kind: 'barrier' },
        { kind: 'allGather', buf: new Int32Array([rank, rank]) },
        { kind: 'barrier' },
        { kind: 'broadcast', buf: new Float32Array([rank + 1]), options: { root: n - 1 } },
      ];
      const out = await run(pool, (rank) => ({ steps: [...steps(rank), ...steps(rank), ...steps(rank)] }));
      for (const r of out) {
        assert.deepEqual(arr(r.values[1]), [n - 1]);
        assert.deepEqual(arr(r.values[3]), Array.from({ length: n }, (_, k) => [k, k]));
        assert.deepEqual(arr(r.values[17]), [n]);
      }
    });

    test('the arena grew only as far as allowed', () => {
      const bytes = pool.commInit!.arena.byteLength;
      assert.ok(bytes <= Math.max(maxArenaBytes, 64 * n), `arena ${bytes} bytes`);
      if (n > 1 && scale > 1) assert.ok(bytes > arenaBytes, `arena ${bytes} bytes did not grow`);
    });
  });
}

collectiveSuite(1, 256, 1 << 20, 1);
collectiveSuite(2, 256, 1 << 20, 40); // grows from 256 bytes
collectiveSuite(3, 256, 1 << 20, 40);
collectiveSuite(4, 256, 1 << 20, 40);
collectiveSuite(3, 256, 512, 40); // cannot grow past 512 bytes: everything moves in rounds
collectiveSuite(4, 1 << 16, 1 << 16, 1); // fixed arena, no growth needed

describe('ShmCommunicator errors', () => {
  let pool: WorkerPool;
  before(async () => {
    pool = await WorkerPool.start({ n: 3, script, comm: { timeoutMs: 10_000 } });
  });
  after(() => pool.close());

  test('ranks calling different collectives all throw CommMismatchError; the group then works', async () => {
    const out = await run(pool, (rank) => ({ catchErrors: true, steps: [rank === 1 ? { kind: 'gather', buf: new Float32Array(2) } : { kind: 'allReduce', buf: new Float32Array(2) }] }));
    for (const r of out) assert.equal(r.error?.name, 'CommMismatchError');
    assert.match(out[0]!.error!.message, /rank 0 called allReduce but rank 1 called gather/);
    const ok = await run(pool, (rank) => ({ steps: [{ kind: 'allReduce', buf: new Int32Array([rank]) }] }));
    assert.deepEqual(arr(ok[2]!.values[0]), [3]);
  });

  test('disagreeing lengths, dtypes, roots or ops throw on every rank', async () => {
    const cases: ((rank: number) => Step)[] = [
      (rank) => ({ kind: 'allReduce', buf: new Float32Array(rank === 2 ? 3 : 2) }),
      (rank) => ({ kind: 'allGather', buf: rank === 0 ? new Float64Array(2) : new Float32Array(2) }),
      (rank) => ({ kind: 'broadcast', buf: new Float32Array(2), options: { root: rank === 1 ? 1 : 0 } }),
      (rank) => ({ kind: 'allReduce', buf: new Float32Array(2), options: { op: rank === 0 ? 'sum' : 'max' } }),
    ];
    const patterns = [/disagree on the length: rank 0 has 2, rank 2 has 3/, /disagree on the dtype: rank 0 has float64, rank 1 has float32/, /rank 0 names root 0 but rank 1 names root 1/, /disagree on the op: rank 0 has sum, rank 1 has max/];
    for (const [i, step] of cases.entries()) {
      const out = await run(pool, (rank) => ({ catchErrors: true, steps: [step(rank)] }));
      for (const r of out) assert.match(r.error?.message ?? 'no error', patterns[i]!);
    }
  });

  test('a bad argument on one rank fails that rank with its error and the others promptly', async () => {
    const out = await run(pool, (rank) => ({ catchErrors: true, steps: [{ kind: 'allReduce', buf: new Int32Array(2), options: { op: rank === 1 ? 'avg' : 'sum' } }] }));
    assert.match(out[1]!.error!.message, /allReduce options.op: 'avg' needs a float dtype/);
    assert.equal(out[0]!.error!.name, 'CommAbortedError');
    assert.match(out[0]!.error!.message, /rank 1 passed invalid arguments/);
    const bad = await run(pool, (rank) => ({ catchErrors: true, steps: [{ kind: 'scatter', parts: rank === 0 ? [new Float32Array(1)] : null }] }));
    assert.match(bad[0]!.error!.message, /scatter parts: expected an array of 3 typed arrays on the root, got 1/);
    assert.equal(bad[2]!.error!.name, 'CommAbortedError');
  });

  test('a rank that does not arrive: CommTimeoutError there, CommAbortedError for the latecomer; then usable', async () => {
    const out = await run(pool, (rank) => ({
      catchErrors: true,
      steps: rank === 2 ? [{ kind: 'sleep', ms: 400 }, { kind: 'barrier' }] : [{ kind: 'barrier', options: { timeoutMs: 100 } }],
    }));
    const timedOut = out.filter((r) => r.error?.name === 'CommTimeoutError');
    assert.ok(timedOut.length >= 1);
    for (const r of timedOut) assert.ok(r.error!.ms < 1000, `timed out after ${r.error!.ms} ms`);
    assert.equal(out[2]!.error?.name, 'CommAbortedError');
    assert.match(out[2]!.error!.message, /timed out in a collective/);
    const ok = await run(pool, () => ({ steps: [{ kind: 'barrier' }, { kind: 'allReduce', buf: new Float64Array([1]) }] }));
    assert.deepEqual(arr(ok[0]!.values[1]), [3]);
  });

  test('the controller aborting the group wakes a waiting rank at once', async () => {
    const { abortShmGroup } = await import('../../src/comm/shm.js');
    const call = run(pool, (rank) => ({ catchErrors: true, steps: rank === 0 ? [{ kind: 'barrier' }] : [{ kind: 'sleep', ms: 500 }] }));
    setTimeout(() => abortShmGroup(pool.commInit!, 'aborted'), 100);
    const out = await call;
    assert.equal(out[0]!.error?.name, 'CommAbortedError');
    assert.match(out[0]!.error!.message, /aborted by the controller/);
    assert.ok(out[0]!.error!.ms < 400, `woke after ${out[0]!.error!.ms} ms`);
  });
});
