// fork / close at the boundary and under faults: bad options refused at once, concurrent forks,
// unbounded timeouts, worker errors as the user sees them, and shared values that live on rank 0
// when rank 0 (or another rank) is lost or close() runs during a call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { terminateWorkerForTesting } from '../../src/parallel/runtime.js';

/** Warnings emitted while `body` runs (and shortly after). */
async function warningsDuring(body: () => Promise<void>): Promise<(Error & { code?: string })[]> {
  const seen: (Error & { code?: string })[] = [];
  const listen = (w: Error): void => { seen.push(w); };
  process.on('warning', listen);
  try {
    await body();
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('warning', listen);
  }
  return seen;
}

function threadCount(): number | null {
  try {
    return Number(/Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
  } catch {
    return null;
  }
}

test('fork refuses bad options at once, naming them, before anything is built', async () => {
  const t0 = performance.now();
  await assert.rejects(synk.fork({ n: 1e9 }), /^RangeError: fork: n must be a positive integer of at most 4096 \(workers\), got number 1000000000$/);
  assert.ok(performance.now() - t0 < 1000, `took ${performance.now() - t0} ms`);
  await assert.rejects(synk.fork(null as never), /fork: expected an options object or nothing, got null/);
  await assert.rejects(synk.fork(5 as never), /fork: expected an options object or nothing, got number 5 \(for 5 workers: fork\(\{ n: 5 \}\)\)/);
  await assert.rejects(synk.fork({ devices: [null as never] }), /fork: devices\[0\]: expected a device spec such as \{ kind: 'cpu' \}, got null/);
  await assert.rejects(synk.fork({ devices: [{ kind: 'tpu' } as never] }), /fork: devices\[0\]\.kind: expected 'reference', 'cpu' or 'cuda', got string tpu/);
  await assert.rejects(synk.fork({ devices: [{ kind: 'cpu', threads: 0 }] }), /fork: devices\[0\]\.threads: expected an integer >= 1/);
  await assert.rejects(synk.fork({ devices: [] }), /fork: devices is an empty list/);
  const known = new RegExp("fork: unknown option 'workers' \\(known: n, devices, matmulPrecision, timeoutMs, resourceLimits, virtualNodes, "
    + 'network, commTimeoutMs, commChunkBytes\\)');
  await assert.rejects(synk.fork({ workers: 2 } as never), known);
  await assert.rejects(synk.fork({ virtualNodes: 'yes' as never }), /fork: virtualNodes must be a boolean, got string yes/);
  await assert.rejects(synk.fork({ network: '' }), /fork: network must be the name of a network interface such as 'eth0', got/);
  await assert.rejects(synk.fork({ network: 'nosuch0' }), /fork: network interface 'nosuch0' does not exist on this host \(it has: /);
  await assert.rejects(synk.fork({ commTimeoutMs: 0 }), /fork: commTimeoutMs must be a positive number of milliseconds, got number 0/);
  await assert.rejects(synk.fork({ commChunkBytes: 1000 }), /fork: commChunkBytes: expected a positive multiple of 64 bytes, got 1000/);
  await assert.rejects(synk.fork({ timeoutMs: -1 }), /fork: timeoutMs must be a positive number of milliseconds \(Infinity for no bound\), got number -1/);
  await assert.rejects(synk.fork({ timeoutMs: Number.NaN }), /fork: timeoutMs must be/);
  await assert.rejects(synk.fork({ resourceLimits: { maxOldGenerationSizeMb: -5 } }), /fork: resourceLimits.maxOldGenerationSizeMb must be a positive number/);
  assert.equal(synk.isForked(), false);
  await assert.rejects(synk.distribute(5 as never), /^TypeError: distribute: expected a list of shared variables, got number 5$/);
  await synk.fork({ n: 1, devices: 'reference' });
  try {
    await assert.rejects(synk.distribute(5 as never), /distribute: expected a list of shared variables, got number 5/);
    await assert.rejects(synk.distribute([T.matrix('m')] as never), /distribute: item 0 is not a shared variable/);
  } finally {
    await synk.close();
  }
});

test('concurrent forks start one set of workers and refuse the other; close during a fork closes it', async () => {
  await synk.fork({ n: 1, devices: 'reference' }); // platform threads started once, before counting
  await synk.close();
  const before = threadCount();
  const results = await Promise.allSettled([synk.fork({ n: 2, devices: 'reference' }), synk.fork({ n: 2, devices: 'reference' })]);
  assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
  assert.match(String(refused.reason), /fork: another fork\(\) is in progress/);
  await synk.close();
  const starting = synk.fork({ n: 2, devices: 'reference' });
  await synk.close(); // waits for the fork, then closes it
  assert.equal(await starting, 2);
  assert.equal(synk.isForked(), false);
  await new Promise((r) => setTimeout(r, 300));
  const after = threadCount();
  if (before !== null && after !== null) assert.ok(after <= before, `threads: ${before} before, ${after} after (a pool leaked)`);
});

test('timeoutMs Infinity or 2^31: no deadline, and calls never fail for a reply "that never arrived"', async () => {
  const s = T.shared(new T.NDArray('float32', [4]), { name: 'v' });
  const x = T.matrix('x');
  const f = synk.fn({ inputs: [x], outputs: [x.sum(), 'sum'] });
  for (const timeoutMs of [Infinity, 2 ** 31]) {
    await synk.fork({ n: 2, devices: 'reference', timeoutMs });
    try {
      for (let i = 0; i < 100; i++) {
        await synk.setValue(0, s, [i, i, i, i]);
        assert.deepEqual(((await synk.getValue(0, s)) as T.NDArray).toArray(), [i, i, i, i]);
        assert.equal(((await f([[i], [1]])) as T.NDArray).item(), i + 1);
      }
    } finally {
      await synk.close();
    }
  }
});

test('a worker error names the function and rank, is printed once, and its stack reaches the call site', async () => {
  // An index out of range: only the worker can know (shape errors are caught on the controller first).
  const a = T.matrix('a');
  const i = T.vector('i', 'int32');
  const pick = synk.fn({ name: 'pick', bcastInputs: [a, i], outputs: [a.take(i, 0), 'none'] });
  await synk.fork({ n: 2, devices: 'reference' });
  try {
    async function stepOfTheUser(): Promise<unknown> {
      return await pick(new T.NDArray('float32', [4, 4]), [10]);
    }
    const error = await stepOfTheUser().then(() => assert.fail('expected a rejection'), (e: Error) => e);
    assert.match(error.message, /^synk function 'pick': rank 0: take: index 10 \(at position 0 of the indices\) is out of range for axis 0 of size 4/);
    assert.doesNotMatch(error.message, /callAll|failed:/);
    assert.match(error.stack ?? '', /^WorkerError: synk function 'pick': rank 0: [^\n]*\n\s+at (async )?stepOfTheUser/);
    assert.match(error.stack ?? '', /--- OpRuntimeError on rank 0, in the worker ---\n\s+at /);
    const printed = inspect(error);
    assert.equal(printed.split('is out of range').length - 1, 1, printed);
    assert.deepEqual(((await pick([[1, 2], [3, 4]], [1])) as T.NDArray).toArray(), [[3, 4]]);
  } finally {
    await synk.close();
  }
});

test('a shape error that the controller can know is raised there, in the user\'s shapes', async () => {
  const a = T.matrix('a');
  const b = T.matrix('b');
  const mm = synk.fn({ name: 'mm', bcastInputs: [a, b], outputs: [a.dot(b), 'none'] });
  await synk.fork({ n: 2, devices: 'reference' });
  try {
    await assert.rejects(mm(new T.NDArray('float32', [4, 4]), new T.NDArray('float32', [3, 2])),
      /matmul: inner dimensions differ: \(4, 4\) and \(3, 2\).*input 0 'a' has shape \(4, 4\); input 1 'b' has shape \(3, 2\)/);
  } finally {
    await synk.close();
  }
});

function counter(name: string): { s: T.SharedVariable; bump: synk.SynkFn } {
  const s = T.shared(new T.NDArray('float32', [1]), { name });
  const x = T.matrix('x');
  return { s, bump: synk.fn({ inputs: [x], outputs: [x.sum(), 'sum'], updates: [[s, s.add(1)]] }) };
}

test('another rank dies: rank 0\'s values are still read (the latest); close and a fresh fork need no repair', async () => {
  const { s, bump } = counter('survivor');
  await synk.fork({ n: 2, devices: 'reference' });
  for (let i = 0; i < 3; i++) await bump([[1], [2]]);
  await terminateWorkerForTesting(1);
  await assert.rejects(bump([[1], [2]]), /rank 1/);
  const warnings = await warningsDuring(async () => {
    assert.deepEqual(s.getValue().toArray(), [3]);
    await synk.close();
  });
  assert.deepEqual(warnings.map((w) => w.message), []);
  await synk.fork({ n: 2, devices: 'reference' });
  try {
    await bump([[1], [2]]);
    assert.deepEqual(s.getValue().toArray(), [4]);
  } finally {
    await synk.close();
  }
});

test('rank 0 dies: the controller keeps its last value with a warning; a fresh fork works with no manual repair', async () => {
  const { s, bump } = counter('lost');
  await synk.fork({ n: 2, devices: 'reference' });
  await bump([[1], [2]]);
  assert.deepEqual(s.getValue().toArray(), [1]); // the controller has 1
  await bump([[1], [2]]);
  await bump([[1], [2]]); // rank 0 has 3, not read yet
  await terminateWorkerForTesting(0);
  const warnings = await warningsDuring(async () => {
    assert.deepEqual(s.getValue().toArray(), [1]);
  });
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]!.code, 'SYNK_RANK0_VALUE_LOST');
  assert.match(warnings[0]!.message, /shared variable lost: .*rank 0.*the controller keeps the last value it had/);
  assert.match(warnings[0]!.message, /the updates made on the workers since are lost/);
  await synk.close();
  await synk.fork({ n: 2, devices: 'reference' });
  try {
    assert.equal(((await bump([[1], [2]])) as T.NDArray).item(), 3);
    assert.deepEqual(s.getValue().toArray(), [2]);
  } finally {
    await synk.close();
  }
});

test('close() during a call stops it, reads rank 0\'s values back, frees the workers; a fresh fork works', async () => {
  const { s, bump } = counter('during');
  const x = T.matrix('x');
  const slow = synk.fn({ inputs: [x], outputs: [[x.dimshuffle(1, 0).sum(), 'sum']], updates: [[s, s.add(10)]] });
  await synk.fork({ n: 2, devices: 'reference' });
  await bump([[1], [2]]);
  await bump([[1], [2]]); // rank 0 has 2, not read yet
  const big = new T.NDArray('float32', [400, 400]);
  const pending = slow(big, { numSlices: 50 });
  const queued = bump([[1], [2]]); // queued behind the slow call: never started
  const settled = Promise.allSettled([pending, queued]);
  await new Promise((r) => setTimeout(r, 5));
  const t0 = performance.now();
  const warnings = await warningsDuring(() => synk.close());
  assert.ok(performance.now() - t0 < 4000, `close took ${performance.now() - t0} ms`);
  assert.deepEqual(warnings.map((w) => w.message), []);
  const [slowResult, queuedResult] = await settled;
  assert.equal(queuedResult.status, 'rejected');
  // The slow call either finished before it was stopped (its update counts) or was stopped (nothing changed).
  assert.deepEqual(s.getValue().toArray(), slowResult.status === 'fulfilled' ? [12] : [2]);
  if (slowResult.status === 'rejected') assert.match(String(slowResult.reason), /clos/);
  await synk.fork({ n: 2, devices: 'reference' });
  try {
    await bump([[1], [2]]);
    assert.deepEqual(s.getValue().toArray(), slowResult.status === 'fulfilled' ? [13] : [3]);
  } finally {
    await synk.close();
  }
});
