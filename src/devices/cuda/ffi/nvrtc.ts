// NVRTC (libnvrtc) through koffi: compiles CUDA C++ source to PTX or CUBIN at run time.
// NVRTC needs no GPU and no driver, so this works on a build machine too.
import { dirname } from 'node:path';
import { CudaCompileError, check, type StatusDescription } from './errors.js';
import { NVRTC_LIBRARY, cachedLoader, preloadCompanion, type FindLibraryOptions } from './find-library.js';
import { bindAll, registerCudaTypes, toNumber, type KoffiFunction, type KoffiLib, type NvrtcProgram } from './types.js';

export const NVRTC_SUCCESS = 0;
export const NVRTC_ERROR_COMPILATION = 6;

/** Every NVRTC function bound (nvrtc.h, CUDA 11.2 to 13). */
export const NVRTC_SIGNATURES = {
  nvrtcVersion: 'int nvrtcVersion(_Out_ int *major, _Out_ int *minor)',
  nvrtcGetErrorString: 'const char *nvrtcGetErrorString(int result)',
  nvrtcCreateProgram:
    'int nvrtcCreateProgram(_Out_ nvrtcProgram *prog, const char *src, const char *name, int numHeaders, ' +
    'const char **headers, const char **includeNames)',
  nvrtcDestroyProgram: 'int nvrtcDestroyProgram(_Inout_ nvrtcProgram *prog)',
  nvrtcCompileProgram: 'int nvrtcCompileProgram(nvrtcProgram prog, int numOptions, const char **options)',
  nvrtcGetProgramLogSize: 'int nvrtcGetProgramLogSize(nvrtcProgram prog, _Out_ size_t *logSizeRet)',
  nvrtcGetProgramLog: 'int nvrtcGetProgramLog(nvrtcProgram prog, void *log)',
  nvrtcGetPTXSize: 'int nvrtcGetPTXSize(nvrtcProgram prog, _Out_ size_t *ptxSizeRet)',
  nvrtcGetPTX: 'int nvrtcGetPTX(nvrtcProgram prog, void *ptx)',
  nvrtcGetCUBINSize: 'int nvrtcGetCUBINSize(nvrtcProgram prog, _Out_ size_t *cubinSizeRet)',
  nvrtcGetCUBIN: 'int nvrtcGetCUBIN(nvrtcProgram prog, void *cubin)',
} as const;

type NvrtcFunctions = { [K in keyof typeof NVRTC_SIGNATURES]: KoffiFunction };

/** A header made available to #include by name. */
export interface NvrtcHeader {
  readonly name: string;
  readonly source: string;
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.subarray(0, end < 0 ? buf.length : end).toString('utf8');
}

/** The NVRTC API with methods that check statuses (except compileProgram, whose failure is data). */
export class Nvrtc {
  private readonly fn: NvrtcFunctions;

  constructor(lib: KoffiLib, readonly path: string) {
    registerCudaTypes();
    this.fn = bindAll(lib, path, NVRTC_SIGNATURES);
  }

  describe(code: number): StatusDescription {
    const name = (this.fn.nvrtcGetErrorString(code) as string | null) ?? `nvrtcResult ${code}`;
    return { name, message: name };
  }
  check(call: string, code: unknown, detail?: string): void {
    check('nvrtc', (c) => this.describe(c), call, code, detail);
  }

  version(): { major: number; minor: number } {
    const major: [number] = [0];
    const minor: [number] = [0];
    this.check('nvrtcVersion', this.fn.nvrtcVersion(major, minor));
    return { major: major[0], minor: minor[0] };
  }

  createProgram(source: string, name: string, headers: readonly NvrtcHeader[] = []): NvrtcProgram {
    const prog: [NvrtcProgram | null] = [null];
    const code = headers.length
      ? this.fn.nvrtcCreateProgram(prog, source, name, headers.length, headers.map((h) => h.source), headers.map((h) => h.name))
      : this.fn.nvrtcCreateProgram(prog, source, name, 0, null, null);
    this.check('nvrtcCreateProgram', code, name);
    return prog[0] as NvrtcProgram;
  }
  destroyProgram(prog: NvrtcProgram): void {
    this.check('nvrtcDestroyProgram', this.fn.nvrtcDestroyProgram([prog]));
  }
  /** Returns the nvrtcResult: 0, or NVRTC_ERROR_COMPILATION (6) with details in the log. */
  compileProgram(prog: NvrtcProgram, options: readonly string[]): number {
    return this.fn.nvrtcCompileProgram(prog, options.length, options.length ? [...options] : null) as number;
  }
  programLog(prog: NvrtcProgram): string {
    const buf = this.sized('nvrtcGetProgramLog', (o) => this.fn.nvrtcGetProgramLogSize(prog, o), (b) => this.fn.nvrtcGetProgramLog(prog, b));
    return cString(buf);
  }
  ptx(prog: NvrtcProgram): string {
    return cString(this.sized('nvrtcGetPTX', (o) => this.fn.nvrtcGetPTXSize(prog, o), (b) => this.fn.nvrtcGetPTX(prog, b)));
  }
  /** The CUBIN; empty when the program was compiled for a virtual arch (compute_XX). */
  cubin(prog: NvrtcProgram): Uint8Array {
    const buf = this.sized('nvrtcGetCUBIN', (o) => this.fn.nvrtcGetCUBINSize(prog, o), (b) => this.fn.nvrtcGetCUBIN(prog, b));
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private sized(call: string, size: (out: [unknown]) => unknown, get: (buf: Buffer) => unknown): Buffer {
    const n: [unknown] = [0];
    this.check(`${call}Size`, size(n));
    const buf = Buffer.alloc(toNumber(n[0]));
    if (buf.length > 0) this.check(call, get(buf));
    return buf;
  }
}

/** Loads libnvrtc once per distinct options (and libnvrtc-builtins from the same folder). */
export const loadNvrtc: (options?: FindLibraryOptions) => Nvrtc = cachedLoader(NVRTC_LIBRARY, ({ lib, path, dir }, options) => {
  // libnvrtc dlopen()s libnvrtc-builtins.so.<major>.<minor> by bare name at compile time,
  // which fails when the folder is not on the loader path. Loading it here by full path
  // first satisfies that later dlopen (glibc matches the already-loaded soname).
  preloadCompanion(dir ?? (options.path ? dirname(path) : null), /^libnvrtc-builtins\.so\.\d+\.\d+$/);
  return new Nvrtc(lib, path);
});

export interface CompileCudaOptions {
  /** 'sm_90' (real: CUBIN and PTX) or 'compute_90' (virtual: PTX only); default: NVRTC's own default (PTX). */
  readonly arch?: string;
  /** Extra NVRTC options, e.g. ['-default-device', '-std=c++17', '-lineinfo']. */
  readonly options?: readonly string[];
  /** Adds --use_fast_math. */
  readonly fastMath?: boolean;
  /** The program name shown in diagnostics (default 'kernel.cu'). */
  readonly name?: string;
  readonly headers?: readonly NvrtcHeader[];
  /** The NVRTC to use, or where to find it (default: loadNvrtc()). */
  readonly nvrtc?: Nvrtc | FindLibraryOptions;
}

export interface CompileCudaResult {
  /** CUBIN bytes for a real arch (sm_XX); null for a virtual one. */
  readonly cubin: Uint8Array | null;
  /** PTX text, or null where this NVRTC gives none for the arch. */
  readonly ptx: string | null;
  /** What cuModuleLoadData takes: the CUBIN if any, else the PTX with its NUL terminator. */
  readonly image: Uint8Array;
  /** Warnings (compile log); empty when clean. */
  readonly log: string;
  readonly options: readonly string[];
}

/** Compiles CUDA source; throws CudaCompileError carrying the log when NVRTC rejects it. */
export function compileCuda(source: string, options: CompileCudaOptions = {}): CompileCudaResult {
  const nvrtc = options.nvrtc instanceof Nvrtc ? options.nvrtc : loadNvrtc(options.nvrtc ?? {});
  const name = options.name ?? 'kernel.cu';
  const flags = [
    ...(options.arch ? [`--gpu-architecture=${options.arch}`] : []),
    ...(options.fastMath ? ['--use_fast_math'] : []),
    ...(options.options ?? []),
  ];
  const prog = nvrtc.createProgram(source, name, options.headers ?? []);
  try {
    const code = nvrtc.compileProgram(prog, flags);
    const log = nvrtc.programLog(prog);
    if (code !== NVRTC_SUCCESS) throw new CudaCompileError(name, code, nvrtc.describe(code).name, log, flags);
    const realArch = options.arch?.startsWith('sm_') ?? false;
    const cubin = realArch ? nvrtc.cubin(prog) : null;
    let ptx: string | null = null;
    try {
      ptx = nvrtc.ptx(prog);
    } catch {
      ptx = null; // some NVRTC versions keep no PTX for a real arch
    }
    const image = cubin && cubin.length ? cubin : ptx !== null ? new Uint8Array(Buffer.from(ptx + '\0', 'utf8')) : null;
    if (image === null) throw new CudaCompileError(name, code, 'NVRTC returned neither CUBIN nor PTX', log, flags);
    return { cubin: cubin && cubin.length ? cubin : null, ptx, image, log, options: flags };
  } finally {
    nvrtc.destroyProgram(prog);
  }
}
