// The gradient rule of every op, one table typed over the op names: an op added to the op table
// without a rule here (or an explicit null) fails to compile.
import type { OpName } from '../ops/registry.js';
import type { GradRules } from './rule-types.js';
import { elementwiseGradRules } from './rules-elementwise.js';
import { reduceGradRules } from './rules-reduce.js';
import { shapeGradRules } from './rules-shape.js';
import { nnGradRules } from './rules-nn.js';

/** Every op's gradient rule, or null for an op that is not differentiable. */
export const GRAD_RULES: GradRules<OpName> = {
  ...elementwiseGradRules,
  ...reduceGradRules,
  ...shapeGradRules,
  ...nnGradRules,
  fused: null,
};
