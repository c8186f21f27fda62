// What only the shared-memory transport promises beyond the Communicator contract (whose cases run
// over every transport in communicator.test.ts): ranks that disagree are detected and all throw, a
// bad argument or a missing rank fails the group promptly and boundedly, and the group works after.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerPool } from '../../src/parallel/pool.js';
import type { Step, Task, TaskResult } from './fixtures/collective-steps.js';
import { arr } from './communicator-suite.js';

const script = new URL('./fixtures/shm-worker.js', import.meta.url);

const run = async (pool: WorkerPool, task: (rank: number) => Task): Promise<TaskResult[]> =>
  (await pool.sendMessages(Array.from({ length: pool.size }, (_, r) => task(r)))) as TaskResult[];

describe('ShmCommunicator errors', () => {
  let pool: WorkerPool;
  before(async () => {
    pool = await WorkerPool.start({ n: 3, script, comm: { timeoutMs: 10_000 } });
  });
  after(() => pool.close());

  test('ranks calling different collectives all throw CommMismatchError; the group then works', async () => {
    const out = await run(
      pool,
      (rank) => ({ catchErrors: true, steps: [rank === 1 ? { kind: 'gather', buf: new Float32Array(2) } : { kind: 'allReduce', buf: new Float32Array(2) }] }),
    );
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
    const patterns = [
      /disagree on the length: rank 0 has 2, rank 2 has 3/,
      /disagree on the dtype: rank 0 has float64, rank 1 has float32/,
      /rank 0 names root 0 but rank 1 names root 1/,
      /disagree on the op: rank 0 has sum, rank 1 has max/,
    ];
    for (const [i, step] of cases.entries()) {
      const out = await run(pool, (rank) => ({ catchErrors: true, steps: [step(rank)] }));
      for (const r of out) assert.match(r.error?.message ?? 'no error', patterns[i]!);
    }
  });

  test('a bad argument on one rank fails that rank with its error and the others promptly', async () => {
    const out = await run(
      pool,
      (rank) => ({ catchErrors: true, steps: [{ kind: 'allReduce', buf: new Int32Array(2), options: { op: rank === 1 ? 'avg' : 'sum' } }] }),
    );
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
