// cuBLAS, cuBLASLt, NVRTC and cuDNN for the device. cuBLAS(Lt) and NVRTC: the usual places first (the ffi loaders:
// CUDA_PATH, toolkits, the loader path), then $SYNK_CUDA_LIB_DIRS and the CUDA wheels of a Python install
// (nvidia/*/lib under site-packages, e.g. PyTorch's), which is where many GPU machines keep them.
// cuDNN (findCudnn): one search, so that its error names every place looked: see cudnnSearchOptions.
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { CudaLibraryNotFoundError } from './ffi/errors.js';
import { config, readConfig } from '../config.js';
import { loadCublas, type Cublas } from './ffi/cublas.js';
import { loadCublasLt, type CublasLt } from './ffi/cublaslt.js';
import { loadNvrtc, type Nvrtc } from './ffi/nvrtc.js';
import { loadCudnn, type Cudnn } from './ffi/cudnn.js';
import type { FindLibraryOptions } from './ffi/find-library.js';

const PYTHON_ROOTS = ['/opt/torch/.venv/lib', '/opt/conda/lib', '/usr/local/lib', '/usr/lib'];

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Extra library folders: $SYNK_CUDA_LIB_DIRS (colon-separated), then Python CUDA wheels. */
export function extraLibraryDirs(): string[] {
  const dirs = [...config().cudaLibDirs];
  for (const root of PYTHON_ROOTS) {
    for (const py of list(root).filter((d) => /^python3/.test(d))) {
      for (const packages of ['site-packages', 'dist-packages']) {
        const nvidia = join(root, py, packages, 'nvidia');
        for (const pkg of list(nvidia)) {
          for (const lib of [join(nvidia, pkg, 'lib'), join(nvidia, pkg, 'lib64')]) if (existsSync(lib)) dirs.push(lib);
        }
      }
    }
  }
  return [...new Set(dirs)];
}

/** Loads a library from the usual places, else from {@link extraLibraryDirs} (the first error is the one thrown). */
export function withFallback<T>(load: (o: FindLibraryOptions) => T): T {
  try {
    return load({});
  } catch (e) {
    if (!(e instanceof CudaLibraryNotFoundError)) throw e;
    const dirs = extraLibraryDirs();
    if (dirs.length === 0) throw e;
    try {
      return load({ dirs, useLoaderPath: false });
    } catch {
      throw e;
    }
  }
}

let cublas: Cublas | null = null;
let nvrtc: Nvrtc | null = null;

export function findCublas(): Cublas {
  cublas ??= withFallback(loadCublas);
  return cublas;
}

let cublasLt: CublasLt | null = null;

/**
 * cuBLASLt: first in the folder cuBLAS was loaded from (libcublas links against the libcublasLt of its own
 * release, and one process should hold one copy), then the usual places and the fallbacks, as cuBLAS.
 */
export function findCublasLt(): CublasLt {
  if (cublasLt) return cublasLt;
  let beside: string[] = [];
  try {
    const path = findCublas().path;
    if (isAbsolute(path)) beside = [dirname(path)];
  } catch {
    // no cuBLAS: cuBLASLt is looked for on its own, and its own error names where
  }
  cublasLt = withFallback((o) => loadCublasLt({ ...o, dirs: [...beside, ...(o.dirs ?? [])] }));
  return cublasLt;
}

export function findNvrtc(): Nvrtc {
  nvrtc ??= withFallback(loadNvrtc);
  return nvrtc;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The lib folders of Python environments, where pip puts site-packages/dist-packages: an active virtual
 * environment or conda environment ($VIRTUAL_ENV, $CONDA_PREFIX), the usual system and venv roots,
 * and the user's ~/.local.
 */
export function pythonLibRoots(env: Env = process.env, home: string = homedir()): string[] {
  const roots = [env['VIRTUAL_ENV'], env['CONDA_PREFIX']].filter((r): r is string => !!r).map((r) => join(r, 'lib'));
  return [...new Set([...roots, ...PYTHON_ROOTS, join(home, '.local', 'lib')])];
}

/** `<root>/python3*\/{site-packages,dist-packages}/<relative>` for every root, where that folder exists. */
export function pythonPackageDirs(relative: string, roots: readonly string[]): string[] {
  const out: string[] = [];
  for (const root of roots) {
    for (const py of list(root).filter((d) => /^python3/.test(d)).sort().reverse()) {
      for (const packages of ['site-packages', 'dist-packages']) {
        const dir = join(root, py, packages, relative);
        if (existsSync(dir)) out.push(dir);
      }
    }
  }
  return out;
}

/** Where to look for cuDNN; every field defaults to this machine (tests give their own). */
export interface CudnnSearch {
  /** The library file itself (the device's cudnnPath option): then it is the only candidate. */
  readonly path?: string;
  readonly env?: Env;
  /** Python lib roots (default {@link pythonLibRoots}). */
  readonly pythonRoots?: readonly string[];
  readonly toolkitParents?: readonly string[];
  readonly systemDirs?: readonly string[];
  readonly useLoaderPath?: boolean;
}

/**
 * The one search for libcudnn.so.9, in order: an explicit path (nothing else then); $SYNK_CUDNN_LIB_DIRS;
 * $CUDA_PATH / $CUDA_HOME; the CUDA toolkits and system folders; a Python environment's
 * site-packages/nvidia/cudnn/lib (PyTorch's nvidia-cudnn-cu* wheel); the system loader.
 */
export function cudnnSearchOptions(search: CudnnSearch = {}): FindLibraryOptions {
  if (search.path !== undefined) return { path: search.path };
  const env = search.env ?? process.env;
  return {
    dirs: search.env ? readConfig(env).cudnnLibDirs : config().cudnnLibDirs,
    // process.env is read by the loader itself (and kept out of the options, whose JSON is the loader's cache key).
    ...(search.env ? { env: search.env } : {}),
    laterDirs: pythonPackageDirs(join('nvidia', 'cudnn', 'lib'), search.pythonRoots ?? pythonLibRoots(env)),
    ...(search.toolkitParents ? { toolkitParents: search.toolkitParents } : {}),
    ...(search.systemDirs ? { systemDirs: search.systemDirs } : {}),
    ...(search.useLoaderPath !== undefined ? { useLoaderPath: search.useLoaderPath } : {}),
  };
}

/**
 * Loads cuDNN (once per distinct search). Throws CudaLibraryNotFoundError naming every place looked, or
 * CudaLibraryVersionError when the library found is older than cuDNN 9.
 */
export function findCudnn(search: CudnnSearch = {}): Cudnn {
  return loadCudnn(cudnnSearchOptions(search));
}
