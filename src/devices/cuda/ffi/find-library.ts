// Locates and loads a CUDA shared library at run time. Order:
//   1. an explicit `path` option (then nothing else is tried: a wrong explicit path is an
//      error, never silently replaced by another copy of the library);
//   2. `dirs` given in the options;
//   3. $CUDA_PATH and $CUDA_HOME: lib64/, targets/x86_64-linux/lib/;
//   4. /usr/local/cuda*/targets/x86_64-linux/lib (plain `cuda` first, then newest version),
//      /usr/local/cuda/lib64, /usr/lib/x86_64-linux-gnu, /usr/lib64, /usr/lib/wsl/lib;
//   5. `laterDirs` given in the options (e.g. a Python environment's nvidia/cudnn/lib);
//   6. the bare sonames, through the system loader (LD_LIBRARY_PATH, the ldconfig cache).
// In each place the versioned sonames are tried newest first (libnvrtc.so.13, .12, ...).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { CudaLibraryNotFoundError, type LibraryAttempt } from './errors.js';
import type { KoffiLib } from './types.js';

export { CudaLibraryNotFoundError } from './errors.js';

/** Where to look for one library. Every loader (loadCudaDriver, loadNvrtc, ...) takes these. */
export interface FindLibraryOptions {
  /** The library file itself; when given, it is the only candidate. */
  readonly path?: string;
  /** Directories searched before the standard places. */
  readonly dirs?: readonly string[];
  /** The environment to read CUDA_PATH / CUDA_HOME from (default: process.env; tests pass their own). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Where cuda* toolkit folders are looked for (default ['/usr/local']; tests override it). */
  readonly toolkitParents?: readonly string[];
  /** Fixed system directories searched after the toolkits (default: /usr/lib/x86_64-linux-gnu, /usr/lib64, /usr/lib/wsl/lib). */
  readonly systemDirs?: readonly string[];
  /** Directories searched after the system directories, before the loader (e.g. Python CUDA wheels). */
  readonly laterDirs?: readonly string[];
  /** Whether to ask the system loader for the bare sonames last (default true). */
  readonly useLoaderPath?: boolean;
}

/** One library: a readable name and its file names, newest first. */
export interface LibrarySpec {
  readonly display: string;
  readonly sonames: readonly string[];
}

export const CUDA_DRIVER_LIBRARY: LibrarySpec = { display: 'libcuda (CUDA driver API)', sonames: ['libcuda.so.1', 'libcuda.so'] };
export const NVRTC_LIBRARY: LibrarySpec = {
  display: 'libnvrtc (NVRTC runtime compiler)',
  sonames: ['libnvrtc.so.13', 'libnvrtc.so.12', 'libnvrtc.so.11.2', 'libnvrtc.so'],
};
export const CUBLAS_LIBRARY: LibrarySpec = { display: 'libcublas (cuBLAS)', sonames: ['libcublas.so.13', 'libcublas.so.12', 'libcublas.so'] };
/** cuBLASLt: the same release as cuBLAS (libcublas itself links against it), looked for beside it first. */
export const CUBLASLT_LIBRARY: LibrarySpec = {
  display: 'libcublasLt (cuBLASLt)',
  sonames: ['libcublasLt.so.13', 'libcublasLt.so.12', 'libcublasLt.so'],
};
export const NCCL_LIBRARY: LibrarySpec = { display: 'libnccl (NCCL)', sonames: ['libnccl.so.2', 'libnccl.so'] };
/**
 * cuDNN: libcudnn.so.9 is the one the binding takes; the older names are looked for too, so that a cuDNN 8
 * that is present is reported as too old (CudaLibraryVersionError) rather than as missing.
 */
export const CUDNN_LIBRARY: LibrarySpec = { display: 'libcudnn (cuDNN 9)', sonames: ['libcudnn.so.9', 'libcudnn.so.8', 'libcudnn.so'] };

/** A loaded library and the file it came from. */
export interface LoadedLibrary {
  readonly lib: KoffiLib;
  /** The absolute path, or the bare soname when the system loader found it. */
  readonly path: string;
  /** The directory it was found in; null when the system loader found it. */
  readonly dir: string | null;
}

function cudaVersionRank(name: string): number[] {
  // 'cuda' (the symlink to the default toolkit) first, then 'cuda-13.0' before 'cuda-12.4'.
  if (name === 'cuda') return [Infinity];
  return (name.match(/\d+/g) ?? []).map(Number);
}

function compareVersionsDescending(a: string, b: string): number {
  const va = cudaVersionRank(a);
  const vb = cudaVersionRank(b);
  for (let i = 0; i < Math.max(va.length, vb.length); i++) {
    const x = va[i] ?? -1;
    const y = vb[i] ?? -1;
    if (x !== y) return y - x;
  }
  return 0;
}

/** /usr/local/cuda* toolkit roots found under `root`, default toolkit first. */
function toolkitRoots(root: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return [];
  }
  return entries
    .filter((e) => e === 'cuda' || /^cuda-\d/.test(e))
    .sort(compareVersionsDescending)
    .map((e) => join(root, e));
}

/** The directories searched for a library, in order, without duplicates. */
export function searchDirectories(options: FindLibraryOptions = {}): string[] {
  const env = options.env ?? process.env;
  const dirs: string[] = [...(options.dirs ?? [])];
  for (const variable of ['CUDA_PATH', 'CUDA_HOME']) {
    const value = env[variable];
    if (value) dirs.push(join(value, 'lib64'), join(value, 'targets', 'x86_64-linux', 'lib'));
  }
  for (const parent of options.toolkitParents ?? ['/usr/local']) {
    for (const toolkit of toolkitRoots(parent)) dirs.push(join(toolkit, 'targets', 'x86_64-linux', 'lib'));
    dirs.push(join(parent, 'cuda', 'lib64'));
  }
  dirs.push(...(options.systemDirs ?? ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib/wsl/lib']));
  dirs.push(...(options.laterDirs ?? []));
  return [...new Set(dirs)];
}

function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
}

/**
 * Finds and loads a library; throws CudaLibraryNotFoundError naming every file name tried,
 * every directory searched and every loader failure.
 */
export function loadLibrary(spec: LibrarySpec, options: FindLibraryOptions = {}): LoadedLibrary {
  const attempts: LibraryAttempt[] = [];
  const hint = `Install the CUDA toolkit / driver, add its lib directory to LD_LIBRARY_PATH, or pass { path: '/path/to/${spec.sonames[0] ?? 'library'}' }.`;
  if (options.path !== undefined) {
    try {
      return { lib: koffi.load(options.path), path: options.path, dir: null };
    } catch (e) {
      attempts.push({ path: options.path, reason: existsSync(options.path) ? `exists but could not be loaded: ${message(e)}` : 'no such file' });
      throw new CudaLibraryNotFoundError(spec.display, spec.sonames, [], attempts, 'The explicit path option was given, so no other place was tried.');
    }
  }
  const dirs = searchDirectories(options);
  for (const dir of dirs) {
    for (const soname of spec.sonames) {
      const file = join(dir, soname);
      if (!existsSync(file)) continue;
      try {
        return { lib: koffi.load(file), path: file, dir };
      } catch (e) {
        attempts.push({ path: file, reason: `exists but could not be loaded: ${message(e)}` });
      }
    }
  }
  if (options.useLoaderPath ?? true) {
    for (const soname of spec.sonames) {
      try {
        return { lib: koffi.load(soname), path: soname, dir: null };
      } catch (e) {
        attempts.push({ path: `${soname} (system loader)`, reason: message(e) });
      }
    }
  }
  throw new CudaLibraryNotFoundError(spec.display, spec.sonames, dirs, attempts, hint);
}

/** Loads a companion library from `dir` if present (e.g. libnvrtc-builtins next to libnvrtc). */
export function preloadCompanion(dir: string | null, pattern: RegExp): string | null {
  if (dir === null) return null;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return null;
  }
  for (const entry of entries.filter((e) => pattern.test(e)).sort().reverse()) {
    try {
      koffi.load(join(dir, entry));
      return join(dir, entry);
    } catch {
      // best effort: the main library reports the problem in its own words
    }
  }
  return null;
}

/**
 * A loader of one library that loads it once per distinct options (the same options give the same
 * object) and wraps what it found; every binding's load function is one of these.
 */
export function cachedLoader<T>(spec: LibrarySpec, wrap: (found: LoadedLibrary, options: FindLibraryOptions) => T): (options?: FindLibraryOptions) => T {
  const cache = new Map<string, T>();
  return (options = {}) => {
    const key = JSON.stringify(options);
    let value = cache.get(key);
    if (value === undefined) {
      value = wrap(loadLibrary(spec, options), options);
      cache.set(key, value);
    }
    return value;
  };
}
