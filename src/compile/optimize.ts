// The rewrite pipeline run before a program reaches a device.
import type { Program } from './program.js';
import { WorkProgram } from './rewrite/work-program.js';
import { foldConstants, eliminateCommonSubexpressions } from './rewrite/fold-cse.js';
import { canonicalize } from './rewrite/canonicalize.js';
import { fuseElementwise } from './rewrite/fuse.js';
import { applyPrecision } from './rewrite/precision.js';
import { fuseBatchNormRelu } from './rewrite/fuse-batchnorm.js';
import { moveShapeReads } from './rewrite/shape-reads.js';
import type { Precision } from './precision.js';

export interface OptimizeOptions {
  /** Group elementwise chains into fused kernels (default true). */
  fuse?: boolean;
  /** Run any rewrites at all (default true). The precision policy applies either way. */
  rewrite?: boolean;
}

/** The rewrites, then the precision policy (a semantic choice, applied even with rewrites off; default 'fp32'). */
export function optimize(program: Program, options: OptimizeOptions = {}, precision: Precision = 'fp32'): { program: Program; log: string[] } {
  const w = new WorkProgram(program);
  if (options.rewrite === false) {
    w.log.push('rewrites disabled');
    applyPrecision(w, precision);
    return { program: precision === 'fp32' ? program : w.toProgram(), log: w.log };
  }
  foldConstants(w);
  eliminateCommonSubexpressions(w);
  canonicalize(w);
  foldConstants(w);
  eliminateCommonSubexpressions(w);
  w.eliminateDeadCode();
  applyPrecision(w, precision);
  if (options.fuse !== false) {
    moveShapeReads(w);
    fuseBatchNormRelu(w);
    fuseElementwise(w);
  }
  return { program: w.toProgram(), log: w.log };
}
