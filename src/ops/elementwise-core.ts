// The factory that turns a scalar description into an elementwise OpDef with broadcasting,
import type { DType } from '../tensor/dtype.js';
import { upcast, floatResult, isFloat, isBool } from '../tensor/dtype.js';
import type { NDArray } from '../tensor/ndarray.js';
import { TensorType } from '../tensor/type.js';
import type { Attrs } from '../tensor/variable.js';
import { broadcastPattern, mapBroadcast } from './broadcast.js';
import { type ElementwiseInfo, type OpDef, OpTypeError } from './op.js';

/** How an elementwise op's output dtype follows from its inputs. */
export type DtypeRule =
  | 'upcast' // NumPy promotion of all inputs (bool arithmetic becomes int32)
  | 'float' // promotion, then integers become floatX
  | 'bool' // comparisons
  | 'logical' // bool or integer inputs only, promoted
  | 'where' // first input is the condition, the others promote
  | 'cast'; // attrs.dtype

export interface ElementwiseSpec<A extends Attrs = Attrs> extends ElementwiseInfo {
  readonly name: string;
  readonly arity: number;
  readonly dtype: DtypeRule;
}

export function elementwiseDtype(op: string, rule: DtypeRule, inputs: readonly TensorType[], attrs: Attrs): DType {
  const dtypes = inputs.map((t) => t.dtype);
  switch (rule) {
    case 'upcast': {
      const d = upcast(...dtypes);
      return isBool(d) ? 'int32' : d;
    }
    case 'float':
      return floatResult(upcast(...dtypes));
    case 'bool':
      return 'bool';
    case 'logical':
      if (dtypes.some((d) => isFloat(d))) throw new OpTypeError(op, inputs, 'logical and bitwise ops take bool or integer inputs, not floats');
      return upcast(...dtypes);
    case 'where': {
      const d = upcast(...dtypes.slice(1));
      return d;
    }
    case 'cast':
      return attrs['dtype'] as DType;
    default:
      return rule satisfies never;
  }
}

export function elementwiseOp<A extends Attrs = Attrs>(spec: ElementwiseSpec<A>): OpDef<A> {
  const def: OpDef<A> = {
    name: spec.name,
    elementwise: { scalar: spec.scalar, ...(spec.intScalar ? { intScalar: spec.intScalar } : {}) },
    inferType(inputs: readonly TensorType[], attrs: A): TensorType {
      if (inputs.length !== spec.arity) throw new OpTypeError(spec.name, inputs, `expects ${spec.arity} inputs, got ${inputs.length}`);
      const dtype = elementwiseDtype(spec.name, spec.dtype, inputs, attrs);
      return new TensorType(dtype, broadcastPattern(inputs.map((t) => t.broadcastable)));
    },
    perform(inputs: readonly NDArray[], _attrs: A, out: TensorType): NDArray {
      const integer = out.dtype === 'int32' || out.dtype === 'uint8';
      return mapBroadcast(spec.name, inputs, out.dtype, integer && spec.intScalar ? spec.intScalar : spec.scalar);
    },
  };
  return def;
}
