// A CBLAS loaded at run time through koffi (OpenBLAS, BLIS, MKL or any CBLAS).
// Search order:
//   1. an explicit `path` option, else $SYNK_BLAS: then it is the only candidate (a wrong
//      explicit path is reported, never silently replaced by another library);
//   2. the usual sonames through the system loader (LD_LIBRARY_PATH, the ldconfig cache),
//      then Homebrew's OpenBLAS on macOS.
// Matrices are passed as the caller's Float32Array/Float64Array with no copy: an element
// offset becomes a `subarray()` view, and koffi passes the view's own start (its
// byteOffset included) as the C pointer. The library's thread count is set to 1 on load
// (one BLAS thread per worker); note it is process-wide in OpenBLAS, BLIS and MKL.
import koffi from 'koffi';
import { chooseOpenblasCoretype } from './openblas-coretype.js';
import { checkGemmArgs, type Blas, type GemmArray, type GemmDType } from './blas-types.js';
import { readConfig } from '../config.js';

export type { Blas, GemmArray, GemmDType } from './blas-types.js';

const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

/** Library names tried after an explicit path, in order. */
export const BLAS_SONAMES: readonly string[] = [
  'libopenblas.so.0',
  'libopenblas.so',
  'libblis.so.4',
  'libblis.so',
  'libmkl_rt.so.2',
  'libmkl_rt.so',
  'libcblas.so.3',
  'libblas.so.3',
  '/opt/homebrew/opt/openblas/lib/libopenblas.dylib',
  '/usr/local/opt/openblas/lib/libopenblas.dylib',
];

export interface LoadBlasOptions {
  /** The library file; when given (or $SYNK_BLAS is set), it is the only candidate. */
  readonly path?: string;
  /** Where SYNK_BLAS is read from (default process.env; tests pass their own). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Candidates tried when no explicit path is given (default BLAS_SONAMES). */
  readonly candidates?: readonly string[];
  /** Threads the library uses per call: set when given, else 1 when the library is first loaded. */
  readonly threads?: number;
}

/** The outcome of a search: the library, or why none was loaded. */
export interface BlasSearch {
  readonly blas: Blas | null;
  /** Why nothing was loaded (empty when a library was). */
  readonly reason: string;
  /** The explicit path asked for (option or SYNK_BLAS) and where it came from, if any. */
  readonly explicit: { readonly path: string; readonly from: 'option' | 'SYNK_BLAS' } | null;
}

type KoffiLib = ReturnType<typeof koffi.load>;
type KoffiFn = ReturnType<KoffiLib['func']>;

const SGEMM =
  'void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, ' +
  'const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)';
const DGEMM =
  'void cblas_dgemm(int order, int transA, int transB, int m, int n, int k, double alpha, ' +
  'const double *A, int lda, const double *B, int ldb, double beta, double *C, int ldc)';

function optionalFunc(lib: KoffiLib, declaration: string): KoffiFn | null {
  try {
    return lib.func(declaration);
  } catch {
    return null;
  }
}

/** A view starting at element `offset` (koffi passes its start address), or the array itself. */
function at(array: GemmArray, offset: number): GemmArray {
  return offset === 0 ? array : array.subarray(offset);
}

class NativeBlas implements Blas {
  private readonly sgemm: KoffiFn;
  private readonly dgemm: KoffiFn;
  private readonly setNumThreads: ((n: number) => void) | null;

  constructor(lib: KoffiLib, readonly path: string, readonly name: string, readonly tuning?: string) {
    this.sgemm = lib.func(SGEMM);
    this.dgemm = lib.func(DGEMM);
    const threads =
      optionalFunc(lib, 'void openblas_set_num_threads(int n)') ??
      optionalFunc(lib, 'void bli_thread_set_num_threads(int64_t n)') ??
      optionalFunc(lib, 'void MKL_Set_Num_Threads(int n)');
    this.setNumThreads = threads === null ? null : (n: number) => void threads(n);
  }

  setThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`setThreads: expected a positive integer, got ${n}`);
    this.setNumThreads?.(n);
  }

  gemm(
    dtype: GemmDType, transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, A: GemmArray, aOffset: number, lda: number, B: GemmArray, bOffset: number, ldb: number,
    beta: number, C: GemmArray, cOffset: number, ldc: number,
  ): void {
    checkGemmArgs(dtype, transA, transB, m, n, k, A, aOffset, lda, B, bOffset, ldb, C, cOffset, ldc);
    if (m === 0 || n === 0) return;
    if (k === 0 || alpha === 0) {
      // C = beta * C, done here: some BLAS builds still read A and B (NaN * 0 = NaN) or mishandle k = 0.
      for (let i = 0; i < m; i++) {
        const row = cOffset + i * ldc;
        for (let j = 0; j < n; j++) C[row + j] = beta === 0 ? 0 : beta * C[row + j]!;
      }
      return;
    }
    const fn = dtype === 'float32' ? this.sgemm : this.dgemm;
    fn(
      ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, m, n, k, alpha,
      at(A, aOffset), lda, at(B, bOffset), ldb, beta, at(C, cOffset), ldc,
    );
  }
}

/** Which implementation a loaded library is, from the symbols it exports. */
function identify(lib: KoffiLib): string {
  if (optionalFunc(lib, 'const char *openblas_get_config()') !== null) return 'openblas';
  if (optionalFunc(lib, 'const char *bli_info_get_version_str()') !== null) return 'blis';
  if (optionalFunc(lib, 'int MKL_Get_Max_Threads()') !== null) return 'mkl';
  return 'cblas';
}

/** Loaded libraries by path, so each thread binds a library once. */
const loaded = new Map<string, NativeBlas>();

function tryLoad(path: string, threads: number | undefined): { blas: NativeBlas } | { error: string } {
  const cached = loaded.get(path);
  if (cached !== undefined) {
    if (threads !== undefined) cached.setThreads(threads);
    return { blas: cached };
  }
  let lib: KoffiLib;
  let tuning: string | undefined;
  try {
    const core = chooseOpenblasCoretype(path);
    if (core?.chosen) tuning = `core type ${core.chosen} chosen (the library would pick ${core.libraryPick} on this CPU; OPENBLAS_CORETYPE overrides)`;
    lib = koffi.load(path);
  } catch (e) {
    return { error: `${path}: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (optionalFunc(lib, SGEMM) === null || optionalFunc(lib, DGEMM) === null) {
    return { error: `${path}: loaded, but it exports no cblas_sgemm/cblas_dgemm` };
  }
  const blas = new NativeBlas(lib, path, identify(lib), tuning);
  blas.setThreads(threads ?? 1);
  loaded.set(path, blas);
  return { blas };
}

/** Searches for a CBLAS; never throws for a missing library (the reason says what failed). */
export function findBlas(options: LoadBlasOptions = {}): BlasSearch {
  const env = options.env ?? process.env;
  const threads = options.threads;
  const fromEnv = readConfig(env).blasPath;
  const explicit =
    options.path !== undefined
      ? { path: options.path, from: 'option' as const }
      : fromEnv !== undefined && fromEnv !== ''
        ? { path: fromEnv, from: 'SYNK_BLAS' as const }
        : null;
  if (explicit !== null) {
    const result = tryLoad(explicit.path, threads);
    if ('blas' in result) return { blas: result.blas, reason: '', explicit };
    const source = explicit.from === 'option' ? 'the BLAS path given' : 'SYNK_BLAS';
    return { blas: null, reason: `${source} could not be loaded: ${result.error}`, explicit };
  }
  for (const candidate of options.candidates ?? BLAS_SONAMES) {
    const result = tryLoad(candidate, threads);
    if ('blas' in result) return { blas: result.blas, reason: '', explicit: null };
  }
  return { blas: null, reason: `no CBLAS found (tried ${(options.candidates ?? BLAS_SONAMES).join(', ')})`, explicit: null };
}

/** The CBLAS found by `findBlas`, or null when there is none (see findBlas for the reason). */
export function loadBlas(options: LoadBlasOptions = {}): Blas | null {
  return findBlas(options).blas;
}
