// The shape of a CPU kernel. A kernel is chosen per program step at compile time: it sees the
// step (op, attrs, input/output types) and returns a runner that computes the step's value from
// its input values at run time. `reference` is the explicit "no fast path" entry: it runs the
// op's own perform.
import type { NDArray } from '../../tensor/ndarray.js';
import type { TensorType } from '../../tensor/type.js';
import type { DType, TypedArray } from '../../tensor/dtype.js';
import type { Attrs } from '../../tensor/variable.js';
import { getOpDef } from '../../ops/apply.js';
import type { Blas } from './blas-types.js';

/** One program step as a kernel sees it at compile time. */
export interface StepInfo<A extends Attrs = Attrs> {
  readonly op: string;
  readonly attrs: A;
  readonly inputTypes: readonly TensorType[];
  readonly outType: TensorType;
  /** The step's value is returned to the caller (a kernel may then prefer a copy to a view). */
  readonly escapes?: boolean;
}

/** What a kernel may use while building its runner. */
export interface CompileContext {
  readonly blas: Blas;
  /** Use the WebAssembly SIMD elementwise and column-sum kernels where they apply (default true). */
  readonly simd?: boolean;
}

/**
 * Memory a runner may use at run time. Arrays from `output` and `scratch` come from the
 * executable's pool: their contents are arbitrary (a kernel must write every element).
 */
export interface RunContext {
  /**
   * The array the step's result is written into. With `inPlace`, an input that dies at this step,
   * is not referenced by any other live value and has the same dtype and size may be handed back
   * (elementwise kernels only: element i of that input is read before element i of the result is
   * written). `which` picks the output of a group step (default 0).
   */
  output(dtype: DType, shape: readonly number[], inPlace?: boolean, which?: number): NDArray;
  /** A temporary buffer, returned to the pool when the step ends. */
  scratch(dtype: DType, size: number): TypedArray;
}

export type StepRunner = (inputs: readonly NDArray[], rt: RunContext) => NDArray;

/**
 * The runner of a group step (several program steps in one, see group-kernels.ts): one value per
 * output slot, undefined for one that the fast path does not materialise because nothing else
 * reads it.
 */
export type GroupRunner = (inputs: readonly NDArray[], rt: RunContext) => readonly (NDArray | undefined)[];

/** A kernel for op N: a function of the step that returns its runner. */
export type Kernel<A extends Attrs> = (step: StepInfo<A>, cx: CompileContext) => StepRunner;

/** The explicit "run the op's reference perform" kernel (results are fresh arrays or inputs). */
export const reference: Kernel<Attrs> = (step) => {
  const def = getOpDef(step.op);
  const { attrs, outType } = step;
  return (inputs) => def.perform(inputs, attrs, outType);
};

/** Runs the reference perform of a step (used by fast kernels for cases they do not cover). */
export function referenceRunner(step: StepInfo): (inputs: readonly NDArray[]) => NDArray {
  const def = getOpDef(step.op);
  return (inputs) => def.perform(inputs, step.attrs, step.outType);
}

/** One step as the CPU executable runs it (peephole.ts rewrites the program into these). */
export interface ExecStep {
  readonly op: string;
  readonly attrs: Attrs;
  readonly inputs: readonly number[];
  readonly output: number;
  /** The program step this one reports errors as. */
  readonly index: number;
  /** Overrides the kernel table's entry for `op`. */
  readonly kernel?: Kernel<Attrs>;
  /** More slots a group step writes (its runner returns output first, then these). */
  readonly extraOutputs?: readonly number[];
  /** A group step (`op` names it in profiles): builds its runner from the program's slot types. */
  readonly group?: GroupBuilder;
}

/** Builds a group step's runner; `escapes(slot)` tells whether a slot's value goes to the caller. */
export type GroupBuilder = (types: readonly TensorType[], cx: CompileContext, escapes: (slot: number) => boolean) => GroupRunner;
