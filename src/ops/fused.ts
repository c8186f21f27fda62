// A group of elementwise ops that the compiler fused into one kernel. The reference device runs
// the steps one after another; fast devices generate a single loop from the same description.
import type { NDArray } from '../tensor/ndarray.js';
import { TensorType } from '../tensor/type.js';
import type { DType } from '../tensor/dtype.js';
import type { Attrs } from '../tensor/variable.js';
import { OpTypeError, type OpDef } from './op.js';
import { broadcastPattern } from './broadcast.js';
import { elementwiseOps, type ElementwiseOpName } from './elementwise.js';

/** One scalar operation inside a fused elementwise kernel. */
export interface FusedStep {
  readonly op: ElementwiseOpName;
  readonly attrs: Readonly<Record<string, unknown>>;
  /** Indices into [kernel inputs..., earlier step results...]. */
  readonly args: readonly number[];
  readonly dtype: DType;
}

export type FusedAttrs = {
  /** Inner steps; arguments index [kernel inputs..., earlier step results...]; the last step is the output. */
  readonly steps: readonly FusedStep[];
};

export const fusedOps = {
  fused: {
    name: 'fused',
    inferType(inputs, attrs) {
      const last = attrs.steps[attrs.steps.length - 1];
      if (!last) throw new OpTypeError('fused', inputs, 'has no steps');
      return new TensorType(last.dtype, broadcastPattern(inputs.map((t) => t.broadcastable)));
    },
    perform(inputs, attrs) {
      const values: NDArray[] = [...inputs];
      for (const step of attrs.steps) {
        const def = elementwiseOps[step.op] as OpDef<Attrs>;
        const args = step.args.map((i) => values[i]!);
        values.push(def.perform(args, step.attrs, TensorType.ofNdim(step.dtype, 0)));
      }
      return values[values.length - 1]!;
    },
  } satisfies OpDef<FusedAttrs>,
};
