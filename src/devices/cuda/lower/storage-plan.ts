// Which values the CUDA device holds in bfloat16: under the 'bf16' precision policy (product steps
// marked precision 'bf16'), the activations and their gradients, as torch.autocast keeps them, so
// that convolutions read and write bfloat16 directly and the memory-bound work around them (batch
// norm, relu, residual adds, pooling, the masks of the backward pass) moves half the bytes.
//
// The plan is made once per program from the steps alone, in program order:
// - a bfloat16 product's output (conv2d, conv2dInputGrad) is held in bfloat16;
// - batch norm's normalisation and input gradient, pooling and its gradients, elementwise steps and
//   sumToLike are held in bfloat16 when a value they read of their own rank is;
// - everything else keeps its dtype: statistics and their gradient sums, the filter gradients (they
//   feed float32 master weights), reductions, losses, parameters and their updates.
// Only float32 values of rank 4 that are computed by the program (no arguments, constants or
// shared variables) and are not results qualify: users never see bfloat16. The executable enforces
// the plan after every step (a value produced in the other storage is converted) and widens bfloat16
// inputs for the steps that do not read it (stepReadsBf16), so the plan decides speed, never results.
import type { Program, ProgramStep } from '../../../compile/program.js';
import { isElementwiseOpName } from '../../../ops/elementwise.js';
import type { OpName } from '../../../ops/registry.js';
import type { Storage } from '../storage.js';

/** The ops whose lowering reads bfloat16 inputs as planned (the conv ops only when the step takes bfloat16 operands). */
const READS_BF16: ReadonlySet<OpName> = new Set<OpName>([
  'fused', 'bnStats', 'bnTrain', 'bnGradStats', 'bnGradInput', 'maxPool2d', 'maxPool2dGrad', 'avgPool2d', 'avgPool2dGrad', 'sumToLike',
  'conv2d', 'conv2dInputGrad', 'conv2dFilterGrad',
]);

/** Ops whose output follows the storage of the given inputs (the values it is computed from; shape-only inputs never count). */
const FOLLOWS: Partial<Record<OpName, readonly number[]>> = {
  bnTrain: [0], bnGradInput: [3], maxPool2d: [0], maxPool2dGrad: [1], avgPool2d: [0], avgPool2dGrad: [0], sumToLike: [0],
};

const isConv = (op: OpName): boolean => op === 'conv2d' || op === 'conv2dInputGrad' || op === 'conv2dFilterGrad';
const bf16Product = (step: ProgramStep): boolean => step.attrs['precision'] === 'bf16';

/** Whether a step's lowering reads its bfloat16 inputs itself (otherwise the executable widens them first). */
export function stepReadsBf16(step: ProgramStep): boolean {
  if (isConv(step.op)) return bf16Product(step);
  return READS_BF16.has(step.op) || isElementwiseOpName(step.op);
}

/** The storage of every slot of a program (its dtype, or bfloat16 where the plan chooses it; never with `bf16Activations` false). */
export function planStorage(program: Program, bf16Activations = true): Storage[] {
  const slots = program.slots;
  const plan: Storage[] = slots.map((s) => s.dtype);
  if (!bf16Activations || !program.steps.some(bf16Product)) return plan;
  const results = new Set<number>([...program.outputs, ...program.updates.map((u) => u.slot)]);
  for (const step of program.steps) {
    const out = slots[step.output]!;
    if (out.dtype !== 'float32' || out.broadcastable.length !== 4 || out.kind !== 'step' || results.has(step.output)) continue;
    // Elementwise steps follow any input of their rank (a relu mask times a float32 gradient is held in bfloat16).
    const from = step.op === 'fused' || isElementwiseOpName(step.op) ? step.inputs.map((_, j) => j) : FOLLOWS[step.op] ?? [];
    const bf16 = step.op === 'conv2d' || step.op === 'conv2dInputGrad'
      ? bf16Product(step)
      : from.some((j) => plan[step.inputs[j]!] === 'bfloat16' && slots[step.inputs[j]!]!.broadcastable.length === 4);
    if (bf16) plan[step.output] = 'bfloat16';
  }
  return plan;
}
