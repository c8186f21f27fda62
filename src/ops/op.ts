// The shape of an op definition. Every op is defined once: its type rule (build-time checks),
// its reference implementation (the oracle every device is tested against). Gradient rules live in
// src/grad/rules.ts and device code in each device's own tables: an op knows no device.
import type { NDArray } from '../tensor/ndarray.js';
import type { TensorType } from '../tensor/type.js';
import type { Attrs } from '../tensor/variable.js';

/** The scalar form of an elementwise op: what fusion composes and what the reference runs per element. */
export interface ElementwiseInfo {
  /** Reference scalar function (inputs already read as JS numbers; result cast by the caller). */
  readonly scalar: (...args: number[]) => number;
  /** Integer-exact variant, used when the output dtype is int32 or uint8 (e.g. wrapping int32 multiply). */
  readonly intScalar?: (...args: number[]) => number;
}

export interface OpDef<A extends Attrs = Attrs> {
  readonly name: string;
  /** Checks input types and returns the output type; throws OpTypeError naming the broken rule. */
  inferType(inputs: readonly TensorType[], attrs: A): TensorType;
  /** Reference implementation, valid for every dtype including float64. Must not modify inputs. */
  perform(inputs: readonly NDArray[], attrs: A, out: TensorType): NDArray;
  /** Present on elementwise ops: the scalar form used for fusion (devices keep their own source templates). */
  readonly elementwise?: ElementwiseInfo;
  /** Ops whose result must not be shared (CSE) or folded, e.g. random draws. */
  readonly impure?: boolean;
}

/** An error raised while building an op on inputs it does not accept: the message names the op, the input types and the rule. */
export class OpTypeError extends TypeError {
  constructor(op: string, inputs: readonly TensorType[], rule: string) {
    super(`${op}: ${rule} (inputs: ${inputs.map((t) => t.toString()).join(', ') || 'none'})`);
    this.name = 'OpTypeError';
  }
}

/** An error raised while running an op (e.g. shapes that do not broadcast at run time). */
export class OpRuntimeError extends RangeError {
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
    this.name = 'OpRuntimeError';
  }
}

/** An integer argument that is either known at build time or read from one of the op's inputs. */
export type IntArg = number | { readonly input: number };

export function resolveIntArg(arg: IntArg, inputs: readonly NDArray[]): number {
  if (typeof arg === 'number') return arg;
  const v = inputs[arg.input];
  if (v === undefined) throw new RangeError(`internal: integer argument refers to missing input ${arg.input}`);
  return Math.trunc(v.data[0]!);
}
