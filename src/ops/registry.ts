// The single op table. Devices type their kernel tables over OpName, so a device that misses
// an op fails to compile rather than at run time.
import type { Attrs } from '../tensor/variable.js';
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

// Every entry must be an OpDef whose name matches its key.
const _check: Record<string, OpDef<Attrs>> = OPS as unknown as Record<string, OpDef<Attrs>>;
void _check;
