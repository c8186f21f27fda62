// Building graph nodes: type-checks an op application and returns its output variable.
import { TensorType } from '../tensor/type.js';
import { Variable, type Attrs } from '../tensor/variable.js';
import { OPS, type OpName, type OpAttrs } from './registry.js';
import type { OpDef } from './op.js';

export function applyOp<N extends OpName>(name: N, inputs: readonly Variable[], attrs: OpAttrs<N>): Variable {
  const def = OPS[name] as OpDef<Attrs>;
  const type: TensorType = def.inferType(inputs.map((v) => v.type), attrs as Attrs);
  return new Variable(type, { op: name, attrs: attrs as Attrs, inputs: [...inputs] });
}

/**
 * Looks an op up by name. Names are typed, but a program rebuilt from JSON may still carry any string
 * until it is validated (isOpName), so an unknown name throws rather than returning undefined.
 */
export function getOpDef(name: OpName): OpDef<Attrs> {
  if (!Object.prototype.hasOwnProperty.call(OPS, name)) throw new TypeError(`unknown op '${name}' in serialized graph`);
  return OPS[name] as OpDef<Attrs>;
}

export function isOpName(name: string): name is OpName {
  return Object.prototype.hasOwnProperty.call(OPS, name);
}
