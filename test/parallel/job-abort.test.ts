// A job's abort, on one node: before MPI_Abort, the node's workers abort their device groups (NCCL:
// ncclCommAbort, here a stand-in DeviceCommunicator in each worker, fixtures/abort-worker.ts), each
// at once when idle, one waiting in a collective once the shared-memory group's abort ends it; the
// controller waits for them within a bound, so an abort that hangs still lets MPI_Abort run. The
// runtime registers exactly this (abortWorkersDeviceGroups through onJobAbort) for every fork in a
// job; multinode.test.ts checks the same order in real mpirun jobs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerPool } from '../../src/parallel/pool.js';
import { abortJob, onJobAbort, type Job } from '../../src/parallel/nodes.js';
import { abortWorkersDeviceGroups } from '../../src/parallel/gpu-comm.js';

const script = new URL('./fixtures/abort-worker.js', import.meta.url);

class Ended extends Error {}

/** A job whose MPI_Abort takes a ticket from the workers' counter (after theirs, if they aborted first) and throws instead of ending the process. */
function fakeJob(log: Int32Array): { job: Job; mpiTicket: () => number; message: () => string } {
  let ticket = 0;
  let message = '';
  const mpi = {
    rank: 1, size: 2,
    abort(_code: number, reason: string): never {
      ticket = Atomics.add(log, 0, 1) + 1;
      message = reason;
      throw new Ended(reason);
    },
  };
  return { job: { mpi } as unknown as Job, mpiTicket: () => ticket, message: () => message };
}

async function withPool(n: number, hangRank: number, waitRank: number, body: (pool: WorkerPool, log: Int32Array) => Promise<void>): Promise<void> {
  const log = new Int32Array(new SharedArrayBuffer(4 * (n + 1)));
  const pool = await WorkerPool.start({ n, script, workerData: { log: log.buffer, hangRank, waitRank } });
  try {
    await body(pool, log);
  } finally {
    await pool.close();
  }
}

test('a job abort: every worker aborts its device group first (idle ones and one waiting in a collective), then MPI', async () => {
  await withPool(3, -1, 2, async (pool, log) => {
    const stuck = pool.callAll(1, [], { timeoutMs: 60_000, label: 'a collective rank 2 waits in' }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100)); // ranks 0 and 1 are idle again, rank 2 waits in the barrier
    const fake = fakeJob(log);
    const unhook = onJobAbort(() => { abortWorkersDeviceGroups(pool, true, 5000); });
    const t0 = performance.now();
    try {
      assert.throws(() => abortJob(fake.job, 'a deadline passed'), Ended);
    } finally {
      unhook();
    }
    const ms = performance.now() - t0;
    const tickets = [1, 2, 3].map((i) => Atomics.load(log, i));
    assert.ok(tickets.every((t) => t > 0), `every rank aborted its group: tickets ${tickets.join(', ')}`);
    assert.ok(tickets.every((t) => t < fake.mpiTicket()), `before MPI_Abort: ranks ${tickets.join(', ')}, MPI ${fake.mpiTicket()}`);
    assert.equal(fake.message(), 'node 1 of 2: a deadline passed');
    assert.ok(ms < 2000, `the workers answered at once, not at the bound: ${ms.toFixed(0)} ms`);
    assert.match(String(await stuck), /aborted/, 'the collective rank 2 waited in ended with the abort');
  });
});

test('an abort that hangs in one worker still lets MPI_Abort run, within the bound', async () => {
  await withPool(2, 1, -1, async (pool, log) => {
    const fake = fakeJob(log);
    const bound = 300;
    const unhook = onJobAbort(() => { abortWorkersDeviceGroups(pool, true, bound); });
    const t0 = performance.now();
    try {
      assert.throws(() => abortJob(fake.job, 'a worker died'), Ended);
    } finally {
      unhook();
    }
    const ms = performance.now() - t0;
    assert.ok(Atomics.load(log, 1) > 0 && Atomics.load(log, 1) < fake.mpiTicket(), 'rank 0 aborted its group before MPI');
    assert.equal(Atomics.load(log, 2), 0, 'rank 1 is still inside its abort when MPI_Abort runs');
    assert.ok(ms >= bound - 5 && ms < bound + 700, `MPI_Abort ran ${ms.toFixed(0)} ms after the abort began (bound ${bound} ms)`);
  });
});

test('a hook that throws does not stop MPI_Abort; an unregistered hook no longer runs', () => {
  const log = new Int32Array(new SharedArrayBuffer(8));
  const fake = fakeJob(log);
  let ran = 0;
  const unhookA = onJobAbort(() => { ran++; throw new Error('the device group is gone'); });
  const unhookB = onJobAbort(() => { ran++; });
  unhookB();
  try {
    assert.throws(() => abortJob(fake.job, 'x'), Ended);
  } finally {
    unhookA();
  }
  assert.equal(ran, 1);
  assert.equal(fake.mpiTicket(), 1);
});
