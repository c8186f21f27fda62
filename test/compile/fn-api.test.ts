// T.fn as a user meets it: the default device, typed calls, refused options, one cast rule.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';

describe('T.fn defaults to the fast CPU device', () => {
  it('compiles for the CPU device unless a device is given; the reference device only by name', () => {
    assert.equal(T.defaultDevice().kind, 'cpu');
    const x = T.vector('x');
    assert.equal(T.fn({ inputs: [x], outputs: x.mul(2) }).compiled.device.kind, 'cpu');
    assert.equal(T.fn({ inputs: [x], outputs: x.mul(2), device: new T.ReferenceDevice() }).compiled.device.kind, 'reference');
    const before = T.defaultDevice();
    try {
      T.setDefaultDevice('reference');
      assert.equal(T.fn({ inputs: [x], outputs: x }).compiled.device.kind, 'reference');
      assert.throws(() => T.setDefaultDevice('gpu' as unknown as 'cpu'), /setDefaultDevice: expected a Device .* got gpu/);
      assert.equal(T.defaultDevice().kind, 'reference', 'a refused call changes nothing');
    } finally {
      T.setDefaultDevice(before);
    }
  });
});

describe('T.fn types', () => {
  it('one output gives an NDArray, a list a tuple; arity and input kinds are checked by tsc', () => {
    const x = T.vector('x');
    const one = T.fn({ inputs: [x], outputs: x.sum() });
    const total: T.NDArray = one([1, 2, 3]);
    assert.equal(total.item(), 6);
    const two = T.fn({ inputs: [x], outputs: [x.max(), x.min()] });
    const [hi, lo] = two(new Float32Array([4, -1, 2]));
    assert.deepEqual([hi.item(), lo.item()], [4, -1]);
    const none = T.fn({ inputs: [x], outputs: [] });
    assert.deepEqual(none([1]), []);
    // @ts-expect-error a string is no array input
    assert.throws(() => one('not an array'), /input 0 'x'/);
    // @ts-expect-error one input declared, two given
    assert.throws(() => one([1], [2]), /expected 1 input\(s\) \(x\), got 2/);
  });
});

describe('T.fn refuses bad specs, naming the option', () => {
  const x = T.vector('x');
  it('unknown option names, listing the known ones', () => {
    assert.throws(() => T.fn({ inputs: [x], outputs: x, updats: [] } as unknown as T.FnSpec),
      /fn: unknown option 'updats'; known: inputs, outputs, updates, givens, device, name, optimize/);
  });
  it('lists of the wrong kind', () => {
    const bad = (spec: object) => () => T.fn(spec as T.FnSpec);
    assert.throws(bad({ inputs: x, outputs: x }), /fn: inputs must be an array of symbolic variables, got/);
    assert.throws(bad({ inputs: [x], outputs: 5 }), /fn: outputs must be a symbolic variable or an array of them, got/);
    assert.throws(bad({ inputs: [x], outputs: x, updates: 3 }), /fn: updates must be an array of \[shared variable, expression\] pairs or a Map/);
    assert.throws(bad({ inputs: [x], outputs: x, updates: [7] }), /fn: updates\[0\] must be a pair/);
    assert.throws(bad({ inputs: [x], outputs: x, givens: 'x' }), /fn: givens must be an array of \[variable, replacement\] pairs or a Map/);
    assert.throws(bad({ inputs: [x], outputs: x, device: 'cpu' }), /fn: device must be a Device/);
    assert.throws(bad({ inputs: [x], outputs: x, name: () => 1 }), /fn: name must be a string/);
  });
});

describe('one cast rule where values enter', () => {
  it('function inputs: up-casts allowed, down-casts and inexact integers refused', () => {
    const i = T.vector('i', 'int32');
    const f = T.fn({ inputs: [i], outputs: i.sum() });
    assert.equal(f([1, 2]).item(), 3);
    assert.equal(f(new Uint8Array([1, 2])).item(), 3, 'uint8 up-casts to int32');
    assert.throws(() => f([1.5, 2.5]), /input 0 'i': element 0 \(1.5\) is not exactly representable as int32/);
    assert.throws(() => f(new Float32Array([1, 2])), /input 0 'i': expected dtype int32 \(or one that up-casts to it\), got float32/);
    assert.throws(() => f({ data: new Float64Array([1]), shape: [1] }), /got float64/);
  });
  it('setValue and T.shared: the same rule, forceCast to convert anyway; a refused value changes nothing', () => {
    const w = T.shared(new Float32Array([1, 2]), { name: 'w' });
    assert.throws(
      () => w.setValue(new Float64Array([3, 4])),
      /setValue of shared variable w: expected dtype float32 .* got float64; down-casts need forceCast/,
    );
    assert.deepEqual(w.getValue().toArray(), [1, 2]);
    w.setValue(new Float64Array([3, 4]), { forceCast: true });
    assert.deepEqual(w.getValue().toArray(), [3, 4]);
    const n = T.shared(new Int32Array([1]), { name: 'n' });
    assert.throws(() => n.setValue([2.5]), /not exactly representable as int32/);
    n.setValue([7]);
    assert.deepEqual(n.getValue().toArray(), [7]);
    const src = new Float32Array([5, 6]);
    w.setValue(src);
    src[0] = 99;
    assert.deepEqual(w.getValue().toArray(), [5, 6], 'setValue keeps its own copy unless borrowed');
  });
});

describe('T.shared follows the cast rule and refuses unknown options', () => {
  it('a dtype never truncates silently', () => {
    assert.throws(() => T.shared(new Float64Array([1.5]), { dtype: 'int32' }), /shared: expected dtype int32 .* got float64/);
    assert.throws(() => T.shared([1.5], { dtype: 'int32' }), /shared: element 0 \(1.5\) is not exactly representable as int32/);
    assert.deepEqual(T.shared([1, 2], { dtype: 'int32' }).getValue().toArray(), [1, 2]);
    assert.deepEqual(T.shared(new Float64Array([1.5]), { dtype: 'int32', forceCast: true }).getValue().toArray(), [1]);
    assert.throws(
      () => T.shared([1], { nmae: 'w' } as unknown as T.SharedOptions),
      /shared: unknown option 'nmae'; known: name, broadcastable, sharedId, dtype, forceCast/,
    );
  });
});
