// Inputs that an op reads only for their shape, never their values: the gradient graph names a
// forward activation there (sumToLike(g, x) fits g to x's shape). A device may free such an input's
// storage before these steps run (its shape stays known), and a rewrite may give them any other
// value of the same shape. One table, so the devices and the rewrites agree.
import type { OpName } from './registry.js';

const SHAPE_ONLY: Partial<Record<OpName, readonly number[]>> = { sumToLike: [1], broadcastLike: [1], fillLike: [0], shapeI: [0] };

/** Whether input k of `op` is read only for its shape. */
export function readsOnlyShape(op: OpName, k: number): boolean {
  return SHAPE_ONLY[op]?.includes(k) === true;
}
