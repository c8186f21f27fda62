// The CUDA device's storage plan (src/devices/cuda/lower/storage-plan.ts): which values it holds in
// bfloat16 under the 'bf16' precision policy. Needs no GPU: the plan is made from the program alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import type { Program } from '../../../src/compile/program.js';
import { resnetStyleBlock } from '../../helpers/resnet-block.js';
import { planStorage, stepReadsBf16 } from '../../../src/devices/cuda/lower/storage-plan.js';
import { lowerProgram } from '../../../src/devices/cuda/lower-program.js';

/** The block of test/helpers/resnet-block.ts, a loss of its pooled output, the gradients, and h as a result. */
function block(precision: 'bf16' | 'fp32'): Program {
  const { inputs, h, r } = resnetStyleBlock();
  const loss = T.sum(T.square(T.mean(r, [2, 3])));
  return T.fn({ inputs, outputs: [loss, ...T.grad(loss, inputs), h], precision }).compiled.description.program;
}

/** The storage of each step of `op` whose value is not a result. */
const heldBy = (program: Program, plan: readonly string[], op: string): string[] =>
  program.steps.filter((s) => s.op === op && !program.outputs.includes(s.output)).map((s) => plan[s.output]!);

test("under 'bf16' the activations and their gradients are held in bfloat16; statistics, filter gradients and results are not", () => {
  const program = block('bf16');
  const plan = planStorage(program);
  assert.deepEqual(heldBy(program, plan, 'conv2d'), ['bfloat16', 'bfloat16']);
  // The first normalisation (relu fused in) is the result h: float32, and so is the max pool that follows it.
  assert.deepEqual(program.steps.filter((s) => s.op === 'bnTrain').map((s) => plan[s.output]), ['float32', 'bfloat16']);
  assert.ok(heldBy(program, plan, 'bnGradInput').every((s) => s === 'bfloat16'));
  assert.deepEqual(heldBy(program, plan, 'conv2dInputGrad'), ['bfloat16'], 'the second convolution\'s; the first one\'s is the result dx');
  assert.deepEqual(heldBy(program, plan, 'maxPool2d'), ['float32'], 'max pool follows its input, the result h');
  for (const op of ['bnStats', 'bnGradStats', 'conv2dFilterGrad', 'mean']) {
    assert.ok(heldBy(program, plan, op).every((s) => s === 'float32'), `${op} stays float32`);
  }
  for (const slot of program.outputs) assert.notEqual(plan[slot], 'bfloat16', `result %${slot}`);
  program.slots.forEach((s, i) => {
    if (plan[i] === 'bfloat16') {
      assert.equal(s.dtype, 'float32');
      assert.equal(s.kind, 'step');
      assert.equal(s.broadcastable.length, 4);
    }
  });
  assert.ok(plan.filter((s) => s === 'bfloat16').length >= 8, `held in bfloat16: ${plan.filter((s) => s === 'bfloat16').length} values`);
});

test('without the bf16 policy every value is held in its dtype, and no conversion kernels are made', () => {
  const program = block('fp32');
  assert.deepEqual(planStorage(program), program.slots.map((s) => s.dtype));
  const lowered = lowerProgram(program);
  assert.equal(lowered.conversions, null);
  assert.ok(!lowered.source.includes('to_bf16_f32'));
});

test("a value read only for its shape does not make sumToLike's result bfloat16", () => {
  const program = block('bf16');
  const plan = planStorage(program);
  for (const s of program.steps) {
    if (s.op !== 'sumToLike' || plan[s.output] !== 'bfloat16') continue;
    assert.equal(plan[s.inputs[0]!], 'bfloat16', `sumToLike %${s.output} follows its gradient, not its like`);
  }
});

test('steps that do not read bfloat16 get their inputs widened: the plan names which', () => {
  const program = block('bf16');
  const mean = program.steps.find((s) => s.op === 'mean')!;
  assert.equal(stepReadsBf16(mean), false);
  assert.equal(stepReadsBf16(program.steps.find((s) => s.op === 'bnTrain')!), true);
  const lowered = lowerProgram(program);
  assert.ok(lowered.conversions, 'conversion kernels are made when a value is held in bfloat16');
  assert.match(lowered.source, /sk_bf16/);
});
