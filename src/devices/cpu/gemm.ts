// Picks the GEMM engine of the CPU device: a native CBLAS when one loads, else the
// WebAssembly SIMD fallback, with a one-line notice saying which and how to get the fast one.
//
// A BLAS asked for explicitly (the `blasPath` option or $SYNK_BLAS) that cannot be loaded
// is an error (BlasNotFoundError), not a silent fallback: a mistyped path would otherwise
// cost a tenfold slowdown with nothing but a notice to show for it. Without an explicit
// request, a missing BLAS is normal and selects the fallback.
import { findBlas, type Blas } from './blas.js';
import { createWasmGemm } from './wasm-gemm.js';

export type { Blas } from './blas.js';

export interface SelectGemmOptions {
  /** Load exactly this CBLAS (overrides $SYNK_BLAS); failing to load it throws. */
  blasPath?: string;
  /** Use the WebAssembly fallback even when a BLAS is available. */
  forceFallback?: boolean;
  /** Where SYNK_BLAS is read from (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Library names tried when nothing explicit is given (default: the usual sonames). */
  candidates?: readonly string[];
}

export interface GemmSelection {
  readonly blas: Blas;
  /** One line: which engine is in use and, for the fallback, how to get a BLAS. */
  readonly notice: string;
}

/** An explicitly requested BLAS could not be loaded. */
export class BlasNotFoundError extends Error {
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'BlasNotFoundError';
  }
}

const DISPLAY: Record<string, string> = { openblas: 'OpenBLAS', blis: 'BLIS', mkl: 'MKL', cblas: 'CBLAS' };

function installHint(): string {
  const setEnv = 'or set SYNK_BLAS=/path/to/libopenblas.so';
  if (process.platform === 'darwin') return `for the fast path: brew install openblas, ${setEnv}`;
  if (process.platform === 'linux') {
    return `for the fast path: apt-get install libopenblas0 (Debian/Ubuntu; dnf install openblas on Fedora), ${setEnv}`;
  }
  return `for the fast path: install OpenBLAS and set SYNK_BLAS=/path/to/its library`;
}

/** The GEMM engine to use; throws BlasNotFoundError only for an explicit BLAS that fails to load. */
export function selectGemm(options: SelectGemmOptions = {}): GemmSelection {
  if (options.forceFallback === true) {
    return { blas: createWasmGemm(), notice: 'synkhronos cpu: GEMM on the WebAssembly SIMD fallback (forced)' };
  }
  const search = findBlas({
    ...(options.blasPath !== undefined ? { path: options.blasPath } : {}),
    ...(options.env !== undefined ? { env: options.env } : {}),
    ...(options.candidates !== undefined ? { candidates: options.candidates } : {}),
  });
  if (search.blas !== null) {
    const name = DISPLAY[search.blas.name] ?? search.blas.name;
    const tuning = search.blas.tuning !== undefined ? `, ${search.blas.tuning}` : '';
    return { blas: search.blas, notice: `synkhronos cpu: GEMM on ${name} (${search.blas.path}${tuning})` };
  }
  if (search.explicit !== null) {
    throw new BlasNotFoundError(`synkhronos cpu: ${search.reason}`, search.explicit.path);
  }
  return {
    blas: createWasmGemm(),
    notice: `synkhronos cpu: no BLAS found, GEMM on the WebAssembly SIMD fallback (several times slower); ${installHint()}`,
  };
}
