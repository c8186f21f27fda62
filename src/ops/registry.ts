// The single op table. Devices type their kernel tables over OpName, so a device that misses
// an op fails to compile rather than at run time.
import type { OpDef } from './op.js';
import { elementwiseOps } from './elementwise.js';
import { reduceOps } from './reduce.js';
import { structuralOps } from './structural.js';
import { shapeOps } from './shape.js';
import { indexingOps } from './indexing.js';
import { linalgOps } from './linalg.js';
import { nnOps } from './nn.js';
import { randomOps } from './random.js';
import { fusedOps } from './fused.js';

export const OPS = {
  ...elementwiseOps,
  ...reduceOps,
  ...structuralOps,
  ...shapeOps,
  ...indexingOps,
  ...linalgOps,
  ...nnOps,
  ...randomOps,
  ...fusedOps,
};

export type OpName = keyof typeof OPS;
export type OpAttrs<N extends OpName> = (typeof OPS)[N] extends OpDef<infer A> ? A : never;

// Every entry must be an OpDef over its own attributes (checked by tsc, no cast), filed under its
// own name (checked once at load: a mismatch would send lookups and rewrites to the wrong op).
const checked: { readonly [N in OpName]: OpDef<OpAttrs<N>> } = OPS;
for (const [key, def] of Object.entries(checked)) {
  if (def.name !== key) throw new Error(`internal: the op table files '${def.name}' under '${key}'`);
}
