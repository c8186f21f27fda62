// A description binds only the shared variables its caller passes (or, for T.fn, the variables of
// the graph it was built from); every other one is created fresh under an id of its own. A
// description naming an application's sharedId can neither read nor overwrite that variable.
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { findShared } from '../../src/tensor/variable.js';
import { Engine } from '../../src/parallel/engine.js';
import { DescriptionError } from '../../src/compile/validate-description.js';

/** A function that adds one to a shared [42, 42], and its description as JSON would carry it. */
function incrementer() {
  const s = T.shared(T.NDArray.from([42, 42], { dtype: 'int32' }), { name: 's' });
  const f = T.fn({ inputs: [], outputs: T.sum(s), updates: [[s, s.add(1)]] });
  return { s, f, description: JSON.parse(JSON.stringify(f.describe())) as T.FunctionDescription };
}

test('a description naming an application\'s sharedId does not touch that variable (it rewrote [42, 42] to [43, 43])', () => {
  const { s, description } = incrementer();
  assert.equal(description.shareds[0]!.sharedId, s.sharedId);
  const g = T.fnFromDescription(description);
  assert.equal(g() instanceof T.NDArray, true);
  assert.deepEqual([...s.getValue().data], [42, 42]);
  const fresh = g.compiled.shareds[0]!;
  assert.notEqual(fresh, s);
  assert.notEqual(fresh.sharedId, s.sharedId);
  assert.deepEqual([...fresh.getValue().data], [43, 43]);
  assert.equal(findShared(s.sharedId), s, 'the application\'s variable is still the one registered under its id');
  // Without a value in the description, the fresh variable starts at zeros (size 0, or 1 on broadcastable axes).
  const bare = T.fnFromDescription(JSON.parse(JSON.stringify(incrementer().f.describe({ includeValues: false }))) as T.FunctionDescription);
  assert.deepEqual(bare.compiled.shareds[0]!.getValue().shape, [0]);
  assert.deepEqual([...s.getValue().data], [42, 42]);
});

test('the rebuilt function describes itself with the ids of the variables it is bound to', () => {
  const { description } = incrementer();
  const g = T.fnFromDescription(description);
  const again = g.describe();
  assert.equal(again.shareds[0]!.sharedId, g.compiled.shareds[0]!.sharedId);
  assert.equal(again.program.shareds[0]!.sharedId, g.compiled.shareds[0]!.sharedId);
  assert.equal(again.program.updates[0]!.sharedId, g.compiled.shareds[0]!.sharedId);
  // ... so it can be rebuilt once more, bound to that variable.
  const h = T.fnFromDescription(again, { shareds: [g.compiled.shareds[0]!] });
  h();
  assert.deepEqual([...g.compiled.shareds[0]!.getValue().data], [43, 43]);
});

test('the caller binds variables explicitly, by a list or by a Map from the description\'s ids', () => {
  const { s, description } = incrementer();
  T.fnFromDescription(description, { shareds: [s] })();
  assert.deepEqual([...s.getValue().data], [43, 43]);
  const other = T.shared(T.NDArray.from([7, 7], { dtype: 'int32' }));
  const g = T.fnFromDescription(description, { shareds: new Map([[description.shareds[0]!.sharedId, other]]) });
  assert.equal(g.compiled.shareds[0], other);
  g();
  assert.deepEqual([...other.getValue().data], [8, 8]);
  assert.deepEqual([...s.getValue().data], [43, 43]);
});

test('bindings that do not fit are refused, naming them', () => {
  const { description } = incrementer();
  const f32 = T.shared([1, 2]);
  assert.throws(() => T.fnFromDescription(description, { shareds: [f32] }),
    /fnFromDescription: shareds\[0\] names sharedId "[^"]+", which the description does not have/);
  assert.throws(() => T.fnFromDescription(description, { shareds: new Map([[description.shareds[0]!.sharedId, f32]]) }),
    /does not match the description's int32 vector/);
  assert.throws(() => T.fnFromDescription(description, { shareds: new Map([['nope', f32]]) }), /names sharedId "nope"/);
  assert.throws(() => T.fnFromDescription(description, { shareds: [{}] as unknown as T.SharedVariable[] }), /shareds\[0\] must be a shared variable/);
  assert.throws(() => T.fnFromDescription(description, { shareds: 'all' as unknown as T.SharedVariable[] }),
    /shareds must be a Map from sharedId to shared variable or a list/);
});

test('an update of a sharedId the program does not have is a DescriptionError', () => {
  const { description } = incrementer();
  const d = JSON.parse(JSON.stringify(description)) as { program: { updates: { sharedId: string }[] } };
  d.program.updates[0]!.sharedId = 'someone-else';
  assert.throws(() => T.fnFromDescription(d),
    (e: Error) => e instanceof DescriptionError && e.path === 'description.program.updates[0].sharedId'
      && /"someone-else" is not one of the program's shared variables/.test(e.message));
});

test('T.fn and the worker path still bind the variables they mean', async () => {
  const { s, f } = incrementer();
  f();
  assert.deepEqual([...s.getValue().data], [43, 43]);
  assert.equal(f.compiled.shareds[0], s);
  // A worker rebuilds from the (structured-cloned) description, bound to the variable the controller sent.
  const description = structuredClone(f.compiled.description);
  const arenas = { scratch: new SharedArrayBuffer(1 << 16), results: new SharedArrayBuffer(1 << 16), partials: new SharedArrayBuffer(512) };
  const engine = new Engine(0, 1, new T.ReferenceDevice(), null, arenas);
  const spec = { id: 1, description, nScattered: 0, nBroadcast: 0, sliceableIds: [], outputOps: ['sum' as const], updateOps: ['max' as const] };
  await engine.handle({ kind: 'define', functions: [spec], shareds: [] });
  // The worker message carries the description through the same validation.
  const bad = structuredClone(description) as unknown as { program: { slots: { dtype: string }[] } };
  bad.program.slots[0]!.dtype = 'float32\n#include "/etc/hostname"';
  await assert.rejects(engine.handle({ kind: 'define', functions: [{ ...spec, id: 2, description: bad as unknown as T.FunctionDescription }], shareds: [] }),
    (e: Error) => e instanceof DescriptionError && /^CompiledFunction: description\.program\.slots\[0\]\.dtype: expected a dtype/.test(e.message));
});

test('fresh shared variables of rebuilt functions are collected with their functions (2,000 descriptions kept 125 MB)', () => {
  // A child with --expose-gc: rebuild many functions whose shared value is 64 KB, drop them, collect.
  const script = `
    import * as T from './dist/src/tensor.js';
    const s = T.shared(new Float32Array(16384), { name: 's' });
    const f = T.fn({ inputs: [], outputs: T.sum(s), updates: [[s, s.add(1)]] });
    const description = JSON.parse(JSON.stringify(f.describe()));
    let collected = 0;
    const watch = new FinalizationRegistry(() => { collected++; });
    for (let i = 0; i < 500; i++) { const g = T.fnFromDescription(description); g(); watch.register(g.compiled.shareds[0], i); }
    for (let k = 0; k < 20 && collected < 490; k++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
    console.log(JSON.stringify({ collected, arrayBuffersMb: process.memoryUsage().arrayBuffers / 2 ** 20 }));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const { collected, arrayBuffersMb } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { collected: number; arrayBuffersMb: number };
  assert.ok(collected >= 490, `only ${collected} of 500 dropped functions' shared variables were collected`);
  assert.ok(arrayBuffersMb < 16, `${arrayBuffersMb.toFixed(1)} MB of array buffers still held (500 x 64 KB = 31 MB if none were freed)`);
});
