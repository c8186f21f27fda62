// The rewrite that moves reads of a value's shape to a later value of the same type
// (src/compile/rewrite/shape-reads.ts): in a dense layer's gradient the bias add's output is then
// read by the ReLU alone and fuses with it into one step with one output; a value that is also a
// function output keeps its readers; the results equal the float64 reference device's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { describeFunction } from '../../src/run/function.js';
import { ReferenceDevice } from '../../src/devices/reference/reference-device.js';
import { CpuDevice } from '../../src/devices/cpu/cpu-device.js';
import { readsOnlyShape } from '../../src/ops/shape-only.js';
import type { OpName } from '../../src/ops/registry.js';
import type { NDArray } from '../../src/tensor/ndarray.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';

function layer(returnPreActivation: boolean) {
  const [x, w, b] = [T.matrix('x'), T.matrix('w'), T.vector('b')];
  const z = T.add(T.dot(x, w), b);
  const loss = T.sum(T.square(T.relu(z)));
  const outputs = [loss, ...T.grad(loss, [w, b]), ...(returnPreActivation ? [z] : [])];
  return { inputs: [x, w, b], outputs };
}

/** Steps reading `slot` for its values (not only its shape). */
function valueReaders(program: ReturnType<typeof describeFunction>['program'], slot: number): string[] {
  return program.steps.filter((s) => s.inputs.some((i, j) => i === slot && !readsOnlyShape(s.op as OpName, j))).map((s) => s.op);
}

test('the bias add is read by the ReLU alone afterwards: one fused step, and only shape reads moved', () => {
  const { program } = describeFunction(layer(false));
  const fused = program.steps.filter((s) => s.op === 'fused' && JSON.stringify(s.attrs).includes('"relu"') && JSON.stringify(s.attrs).includes('"add"'));
  assert.equal(fused.length, 1, `steps: ${program.steps.map((s) => s.op).join(', ')}`);
  // The ReLU's output is read for its values later (its gradient's mask), so reads of its shape stay on it.
  const relu = fused[0]!.output;
  assert.ok(program.steps.some((s) => s.op === 'sumToLike' && s.inputs[1] === relu), 'sumToLike fits the gradient to the ReLU output');
  assert.ok(valueReaders(program, relu).length >= 2, 'the ReLU output has its own value readers');
});

test('a pre-activation that is also an output is left alone', () => {
  const { program } = describeFunction(layer(true));
  const z = program.outputs[3]!;
  assert.ok(valueReaders(program, z).length >= 1, 'z is still computed and read');
  assert.ok(program.steps.some((s) => s.op === 'sumToLike' && s.inputs[1] === z), 'its shape read stays on it');
});

test('values equal the float64 reference, with and without the pre-activation as an output', () => {
  const oracle = new ReferenceDevice({ float64: true });
  const cpu = new CpuDevice({ notice: false });
  const args = [randomArray([7, 5], 1, { dtype: 'float32' }), randomArray([5, 260], 2, { dtype: 'float32' }), randomArray([260], 3, { dtype: 'float32' })];
  for (const returnPre of [false, true]) {
    const spec = layer(returnPre);
    const got = T.fn({ ...spec, device: cpu })(...args) as NDArray[];
    const want = T.fn({ ...spec, device: oracle })(...args) as NDArray[];
    got.forEach((g, i) => assertAllClose(g, want[i]!, { rtol: 1e-5, atol: 1e-5 }, `output ${i}`));
  }
});
