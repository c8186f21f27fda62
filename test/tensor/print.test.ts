// NDArray printing follows NumPy's repr. The expected strings below are NumPy 2.4's output for the
// same arrays, with the dtype always shown and bool spelled true/false (see format-array.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import fc from 'fast-check';
import * as T from '../../src/tensor.js';
import type { DType } from '../../src/tensor/dtype.js';

function arange(n: number, dtype: DType, shape: number[]): T.NDArray {
  const a = new T.NDArray(dtype, shape);
  for (let i = 0; i < n; i++) a.data[i] = i;
  return a;
}

test('the issue example: float32 at float32 precision, nan and inf shown', () => {
  const a = T.NDArray.from([[0.1, 0.2], [NaN, Infinity]], { dtype: 'float32' });
  assert.equal(a.toString(), 'array([[0.1, 0.2],\n       [nan, inf]], dtype=float32)');
  assert.equal(`${a}`, a.toString());
});

test('shortest round-trip digits per dtype, decimal points aligned', () => {
  assert.equal(String(T.NDArray.from([1 / 3, 2 / 3, 1], { dtype: 'float32' })), 'array([0.33333334, 0.6666667 , 1.        ], dtype=float32)');
  assert.equal(String(T.NDArray.from([1 / 3, 2 / 3, 1], { dtype: 'float64' })), 'array([0.33333333, 0.66666667, 1.        ], dtype=float64)');
  assert.equal(String(T.NDArray.from([NaN, -Infinity, 1.5, -0], { dtype: 'float32' })), 'array([ nan, -inf,  1.5, -0. ], dtype=float32)');
  assert.equal(String(T.NDArray.from([1e-5, 1.5, -2e-7], { dtype: 'float64' })), 'array([ 1.0e-05,  1.5e+00, -2.0e-07], dtype=float64)');
  // float32 keeps 7 significant digits, so NumPy switches to scientific notation at 1e6.
  assert.equal(String(T.NDArray.scalar(12345678, 'float32')), 'array(1.2345678e+07, dtype=float32)');
  // -1048796.625 is an exact tie at 9 digits: rounded to even as NumPy's Dragon4 does, not up.
  assert.equal(String(T.NDArray.from([-1048796.625, 1042513344], { dtype: 'float32' })), 'array([-1.04879662e+06,  1.04251334e+09], dtype=float32)');
});

test('integers right-aligned, bool as true/false, empty arrays with their shape', () => {
  assert.equal(String(T.NDArray.from([[0, 255], [7, 10]], { dtype: 'uint8' })), 'array([[  0, 255],\n       [  7,  10]], dtype=uint8)');
  assert.equal(String(T.NDArray.from([[true, false], [true, true]])), 'array([[ true, false],\n       [ true,  true]], dtype=bool)');
  assert.equal(String(T.NDArray.from(true)), 'array(true, dtype=bool)');
  assert.equal(String(new T.NDArray('float32', [2, 0])), 'array([], shape=(2, 0), dtype=float32)');
  assert.equal(String(new T.NDArray('int32', [0])), 'array([], dtype=int32)');
});

test('lines wrap at 75 characters, the dtype moving to its own line when it does not fit', () => {
  const a = new T.NDArray('float64', [30]);
  a.data.forEach((_, i) => { a.data[i] = Math.sqrt(i); });
  assert.equal(String(a), [
    'array([0.        , 1.        , 1.41421356, 1.73205081, 2.        ,',
    '       2.23606798, 2.44948974, 2.64575131, 2.82842712, 3.        ,',
    '       3.16227766, 3.31662479, 3.46410162, 3.60555128, 3.74165739,',
    '       3.87298335, 4.        , 4.12310563, 4.24264069, 4.35889894,',
    '       4.47213595, 4.58257569, 4.69041576, 4.79583152, 4.89897949,',
    '       5.        , 5.09901951, 5.19615242, 5.29150262, 5.38516481],',
    '      dtype=float64)',
  ].join('\n'));
});

test('more than 1000 elements are summarised with ... and the shape is shown', () => {
  // The case: a 100x50 array printed as 78,825 characters.
  const floats = String(arange(5000, 'float32', [100, 50]));
  assert.ok(floats.length < 600, `printed ${floats.length} characters`);
  assert.ok(floats.startsWith('array([[0.000e+00, 1.000e+00, 2.000e+00, ..., 4.700e+01, 4.800e+01,\n        4.900e+01],'));
  assert.ok(floats.endsWith('4.999e+03]], shape=(100, 50), dtype=float32)'));
  assert.equal(String(arange(5000, 'int32', [100, 50])), [
    'array([[   0,    1,    2, ...,   47,   48,   49],',
    '       [  50,   51,   52, ...,   97,   98,   99],',
    '       [ 100,  101,  102, ...,  147,  148,  149],',
    '       ...,',
    '       [4850, 4851, 4852, ..., 4897, 4898, 4899],',
    '       [4900, 4901, 4902, ..., 4947, 4948, 4949],',
    '       [4950, 4951, 4952, ..., 4997, 4998, 4999]],',
    '      shape=(100, 50), dtype=int32)',
  ].join('\n'));
  assert.ok(!String(arange(1000, 'int32', [1000])).includes('...'), 'exactly 1000 elements are printed in full');
  assert.ok(String(arange(1001, 'int32', [1001])).includes('...'));
  // A million elements print as quickly as a few.
  const started = performance.now();
  assert.ok(String(arange(1_000_000, 'float32', [100, 100, 100])).length < 5000);
  assert.ok(performance.now() - started < 1000);
});

test('console.log (util.inspect) prints the repr, also inside other values', () => {
  const a = T.NDArray.from([1, 2], { dtype: 'float32' });
  assert.equal(inspect(a), 'array([1., 2.], dtype=float32)');
  assert.equal(inspect({ weights: a }), '{ weights: array([1., 2.], dtype=float32) }');
});

test('float32 elements print with the fewest digits that read back as the same float32', () => {
  const float32 = fc.float({ min: 1, max: 999, noNaN: true }).map(Math.fround);
  fc.assert(fc.property(fc.array(float32, { minLength: 1, maxLength: 12 }), (values) => {
    const text = String(T.NDArray.from(values, { dtype: 'float32' }));
    const printed = text.slice('array(['.length, text.indexOf(']')).split(',').map((s) => s.trim());
    assert.equal(printed.length, values.length);
    printed.forEach((p, i) => {
      assert.equal(Math.fround(Number(p)), values[i], `${p} reads back as ${values[i]}`);
      const digits = p.replace('.', '').replace(/^0+/, '').length;
      if (digits > 1) assert.notEqual(Math.fround(Number(Number(p).toPrecision(digits - 1))), values[i], `${p} is not the shortest`);
    });
  }), { numRuns: 300 });
});

test('variables print their name and type; shared variables their shape; constants a small value', () => {
  const x = T.matrix('x');
  assert.equal(String(x), 'Variable(x: float32 matrix)');
  assert.equal(inspect(x), 'Variable(x: float32 matrix)');
  assert.equal(inspect(x.add(1).sum(0)), 'Variable(float32 vector, output of sum)');
  const W = T.shared(new T.NDArray('float32', [784, 100]), { name: 'W' });
  assert.equal(inspect(W), 'SharedVariable(W: float32 matrix, shape (784, 100))');
  W.setValue(new T.NDArray('float32', [3, 2]));
  assert.equal(String(W), 'SharedVariable(W: float32 matrix, shape (3, 2))');
  assert.equal(inspect(T.constant([1, 2])), 'Constant(float32 vector, value [1., 2.])');
  assert.equal(inspect(T.constant(new Float32Array(100))), 'Constant(float32 vector, shape (100,))');
  assert.equal(inspect({ x }), '{ x: Variable(x: float32 matrix) }');
});
