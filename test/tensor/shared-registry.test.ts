// The registry of shared variables (findShared) must not keep dropped ones alive. Collection is only
// observable with --expose-gc, so the check runs in a child process against the compiled library.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as T from '../../src/tensor.js';
import { findShared } from '../../src/tensor/variable.js';

const tensorUrl = new URL('../../src/tensor.js', import.meta.url).href;
const variableUrl = new URL('../../src/tensor/variable.js', import.meta.url).href;

const childScript = `
const T = await import(${JSON.stringify(tensorUrl)});
const { findShared } = await import(${JSON.stringify(variableUrl)});
const pause = () => new Promise((resolve) => setTimeout(resolve, 5));
let collected = 0;
const watch = new FinalizationRegistry(() => { collected++; });
const kept = T.shared(new Float32Array(16384), { name: 'kept' });
new T.SharedVariable(T.NDArray.zeros([4]), { sharedId: 'mirror-of-another-thread' });
const dropped = 2000;
const ids = [];
for (let i = 0; i < dropped; i++) {
  const s = T.shared(new Float32Array(16384)); // 64 KB each: 128 MB if all were kept
  watch.register(s, i);
  ids.push(s.sharedId);
  if (i % 100 === 99) { await pause(); globalThis.gc(); }
}
for (let round = 0; round < 20 && collected < dropped; round++) { await pause(); globalThis.gc(); }
console.log(JSON.stringify({
  collected,
  arrayBufferMB: process.memoryUsage().arrayBuffers / 2 ** 20,
  keptFound: findShared(kept.sharedId) === kept,
  droppedFound: ids.filter((id) => findShared(id) !== undefined).length,
  mirrorFound: findShared('mirror-of-another-thread') !== undefined,
}));
`;

test('dropped shared variables are collected; live ones and mirrors stay findable', () => {
  const child = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', childScript], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(child.status, 0, child.stderr);
  console.log(child.stdout.trim());
  const report = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as Record<string, number | boolean>;
  assert.ok((report['collected'] as number) >= 1900, `only ${report['collected']} of 2000 dropped shared variables were collected`);
  assert.ok((report['arrayBufferMB'] as number) < 40, `${report['arrayBufferMB']} MB of array buffers still held`);
  assert.equal(report['keptFound'], true, 'a live shared variable is found by id');
  assert.ok((report['droppedFound'] as number) <= 2000 - (report['collected'] as number), 'a collected one is not found');
  assert.equal(report['mirrorFound'], true, 'a mirror (explicit sharedId) is held by the registry');
});

test('findShared finds live shared variables by id, the newest holder of a reused id winning', () => {
  const a = T.shared([1, 2], { name: 'a' });
  assert.equal(findShared(a.sharedId), a);
  assert.equal(findShared('no-such-id'), undefined);
  const mirror = new T.SharedVariable(T.NDArray.zeros([2]), { sharedId: a.sharedId });
  assert.equal(findShared(a.sharedId), mirror);
  // A description never reaches a live variable by id: it binds those it is given, else fresh ones.
  const b = T.shared([3], { name: 'b' });
  const description = T.fn({ outputs: b.mul(2) }).describe({ includeValues: false });
  assert.equal(T.fnFromDescription(description, { shareds: [b] }).compiled.shareds[0], b);
  assert.notEqual(T.fnFromDescription(description).compiled.shareds[0], b);
});
