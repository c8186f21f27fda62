// The one entry point of every lowering's matrix product: cuBLASLt where the run asks for it (RunState.cublasLt)
// and it has a plan for the problem, else cuBLAS. Both see the same column-major product (lt-plans.ts).
import { rowMajorGemm, type RowMajorGemmSpec } from '../ffi/cublas.js';
import { ltProblem } from '../lt-plans.js';
import type { RunState } from './types.js';

/** Enqueues a row-major GEMM (batched when spec.batch is given). */
export function gemm(s: RunState, spec: RowMajorGemmSpec): void {
  if (s.cublasLt) {
    const lt = ltProblem(spec);
    if (lt && s.ctx.ltMatmul(lt.problem, lt.operands)) return;
  }
  const { lib, handle } = s.ctx.cublas();
  rowMajorGemm(lib, handle, spec);
}
