// safetensors: the byte layout of the format, a file written by hand as another library would,
// round trips of every dtype, parameters saved and loaded, refusals that change nothing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import * as X from '../../src/extensions/index.js';

let dir = '';
before(() => { dir = mkdtempSync(join(tmpdir(), 'synk-st-')); });
after(() => { rmSync(dir, { recursive: true, force: true }); });

/** A file built byte by byte from the specification (as the Python library writes it). */
function handMade(): Uint8Array {
  const header = JSON.stringify({
    __metadata__: { format: 'pt' },
    b: { dtype: 'I32', shape: [2], data_offsets: [8, 16] },
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
  });
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + 16);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  const d = 8 + h.length;
  v.setFloat32(d, 1.5, true); v.setFloat32(d + 4, -2, true);
  v.setInt32(d + 8, 7, true); v.setInt32(d + 12, -9, true);
  return out;
}

describe('safetensors format', () => {
  it('reads a file written from the specification', () => {
    const { tensors, metadata } = X.decodeSafetensors(handMade());
    assert.deepEqual(metadata, { format: 'pt' });
    assert.equal(tensors['a']!.dtype, 'float32');
    assert.deepEqual(Array.from(tensors['a']!.data), [1.5, -2]);
    assert.equal(tensors['b']!.dtype, 'int32');
    assert.deepEqual(Array.from(tensors['b']!.data), [7, -9]);
  });

  it('writes the documented layout: u64 LE header length, JSON header padded to 8, packed data', () => {
    const bytes = X.encodeSafetensors(
      { w: NDArray.from([[1, 2, 3], [4, 5, 6]], { dtype: 'float64' }), s: NDArray.from([3], { dtype: 'uint8' }) },
      { note: 'x' },
    );
    const v = new DataView(bytes.buffer, bytes.byteOffset);
    const n = Number(v.getBigUint64(0, true));
    assert.equal(n % 8, 0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
    assert.deepEqual(header['w'], { dtype: 'F64', shape: [2, 3], data_offsets: [0, 48] });
    assert.deepEqual(header['s'], { dtype: 'U8', shape: [1], data_offsets: [48, 49] });
    assert.deepEqual(header['__metadata__'], { note: 'x' });
    assert.equal(bytes.length, 8 + n + 49);
    assert.equal(v.getFloat64(8 + n + 40, true), 6);
  });

  it('round-trips every dtype, scalars and empty tensors', () => {
    const tensors = {
      f32: NDArray.from([[0.5, -1e-3]], { dtype: 'float32' }), f64: NDArray.from([Math.PI], { dtype: 'float64' }),
      i32: NDArray.from([[-5], [2 ** 30]], { dtype: 'int32' }), u8: NDArray.from([0, 255], { dtype: 'uint8' }),
      bool: NDArray.from([true, false]), scalar: NDArray.scalar(2.5, 'float32'), empty: new NDArray('float32', [0, 3]),
    };
    const path = join(dir, 'all.safetensors');
    X.saveSafetensors(path, tensors);
    const back = X.loadSafetensors(path).tensors;
    for (const [k, a] of Object.entries(tensors)) {
      assert.equal(back[k]!.dtype, a.dtype, k);
      assert.deepEqual([...back[k]!.shape], [...a.shape], k);
      assert.deepEqual(Array.from(back[k]!.data), Array.from(a.data), k);
    }
  });

  it('refuses truncated and corrupt files, naming the file', () => {
    const good = handMade();
    const path = join(dir, 'bad.safetensors');
    writeFileSync(path, good.subarray(0, good.length - 3));
    assert.throws(() => X.loadSafetensors(path), (e: Error) => e.message.includes(path) && /truncated/.test(e.message));
    writeFileSync(path, good.subarray(0, 5));
    assert.throws(() => X.loadSafetensors(path), /too short/);
    const bad = good.slice();
    new DataView(bad.buffer).setBigUint64(0, 10n ** 12n, true);
    writeFileSync(path, bad);
    assert.throws(() => X.loadSafetensors(path), /header claims/);
    const wrongBytes = X.encodeSafetensors({ a: NDArray.from([1, 2], { dtype: 'float32' }) });
    const text = new TextDecoder().decode(wrongBytes).replace('"shape":[2]', '"shape":[3]');
    assert.throws(() => X.decodeSafetensors(new TextEncoder().encode(text), 'mem'), /mem: .*8 bytes for shape \(3,\)/);
    assert.throws(() => X.loadSafetensors(join(dir, 'missing.safetensors')), /cannot read .*missing.safetensors/);
  });
});

describe('saveParams / loadParams', () => {
  it('saves shared variables by name and loads them back', () => {
    const net = X.sequential(X.dense(3, 4, { name: 'l1', seed: 1 }), X.batchNorm(4, { name: 'bn' }), X.dense(4, 2, { name: 'l2', seed: 2 }));
    const path = join(dir, 'net.safetensors');
    X.saveParams(path, [...net.params, ...net.states], { epoch: '3' });
    const header = readFileSync(path);
    assert.ok(header.includes('"l1.W"') && header.includes('"bn.runningVar"'));
    const copy = X.sequential(X.dense(3, 4, { name: 'l1', seed: 9 }), X.batchNorm(4, { name: 'bn' }), X.dense(4, 2, { name: 'l2', seed: 8 }));
    const meta = X.loadParams(path, [...copy.params, ...copy.states]);
    assert.deepEqual(meta, { epoch: '3' });
    copy.params.forEach((p, i) => assert.deepEqual(Array.from(p.getValue().data), Array.from(net.params[i]!.getValue().data)));
  });

  it('a wrong shape, a wrong dtype or a missing tensor refuses and changes nothing', () => {
    const path = join(dir, 'small.safetensors');
    X.saveParams(path, { w: T.shared(NDArray.full([2, 3], 1)), b: T.shared(NDArray.full([3], 2)) });
    const w = T.shared(NDArray.full([3, 2], 5), { name: 'w' });
    const b = T.shared(NDArray.full([3], 7), { name: 'b' });
    assert.throws(() => X.loadParams(path, [b, w]), /refused, nothing was changed: w has shape \(2, 3\) in the file, the variable has \(3, 2\)/);
    assert.deepEqual(Array.from(b.getValue().data), [7, 7, 7], 'b (loaded before w in order) is unchanged');
    assert.deepEqual(Array.from(w.getValue().data), [5, 5, 5, 5, 5, 5]);
    const b64 = T.shared(NDArray.full([3], 7, 'float64'), { name: 'b' });
    assert.throws(() => X.loadParams(path, [b64], { strict: false }), /b is F32 in the file, the variable is F64/);
    assert.throws(() => X.loadParams(path, { c: b }), /c is missing from the file/);
    assert.throws(() => X.loadParams(path, [b]), /not asked for: w/);
    X.loadParams(path, [b], { strict: false });
    assert.deepEqual(Array.from(b.getValue().data), [2, 2, 2]);
    assert.throws(() => X.saveParams(path, [T.shared(NDArray.full([1], 1))]), /has no name/);
    assert.throws(() => X.saveParams(path, [b, T.shared(NDArray.full([1], 1), { name: 'b' })]), /name b is used twice/);
  });
});
