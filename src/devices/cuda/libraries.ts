// cuBLAS and NVRTC for the device: the usual places first (the ffi loaders: CUDA_PATH, toolkits,
// the loader path), then $SYNK_CUDA_LIB_DIRS and the CUDA wheels of a Python install
// (nvidia/*/lib under site-packages, e.g. PyTorch's), which is where many GPU machines keep them.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CudaLibraryNotFoundError } from './ffi/errors.js';
import { config } from '../config.js';
import { loadCublas, type Cublas } from './ffi/cublas.js';
import { loadNvrtc, type Nvrtc } from './ffi/nvrtc.js';
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

export function findNvrtc(): Nvrtc {
  nvrtc ??= withFallback(loadNvrtc);
  return nvrtc;
}
