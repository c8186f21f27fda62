// The rewrite pipeline run before a program reaches a device.
import type { Program } from './program.js';
import { WorkProgram } from './rewrite/work-program.js';
import { foldConstants, eliminateCommonSubexpressions } from './rewrite/fold-cse.js';
import { canonicalize } from './rewrite/canonicalize.js';
import { fuseElementwise } from './rewrite/fuse.js';

export interface OptimizeOptions {
  /** Group elementwise chains into fused kernels (default true). */
  fuse?: boolean;
  /** Run any rewrites at all (default true). */
  rewrite?: boolean;
}

export function optimize(program: Program, options: OptimizeOptions = {}): { program: Program; log: string[] } {
  if (options.rewrite === false) return { program, log: ['rewrites disabled'] };
  const w = new WorkProgram(program);
  foldConstants(w);
  eliminateCommonSubexpressions(w);
  canonicalize(w);
  foldConstants(w);
  eliminateCommonSubexpressions(w);
  w.eliminateDeadCode();
  if (options.fuse !== false) fuseElementwise(w);
  return { program: w.toProgram(), log: w.log };
}
