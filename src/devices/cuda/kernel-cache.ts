// Compiled kernels, cached in memory (per context) and on disk (per machine) by the SHA-256 of
// the unit's source, the architecture and the NVRTC options: a second start loads the CUBIN and
// never calls NVRTC. Files are written to a temporary name and renamed, so processes sharing the
// folder never read a half-written file.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CudaDriver } from './ffi/driver.js';
import { compileCuda } from './ffi/nvrtc.js';
import type { CUfunction, CUmodule } from './ffi/types.js';
import type { KernelUnit } from './codegen/module.js';
import { findNvrtc } from './libraries.js';
import { config } from '../config.js';

export const NVRTC_OPTIONS: readonly string[] = ['-std=c++17'];

/** The default folder: $SYNK_KERNEL_CACHE, else <tmpdir>/synkhronos-kernels. */
export function defaultKernelCacheDir(): string {
  return config().kernelCacheDir;
}

export interface KernelCacheStats {
  /** Units compiled by NVRTC in this process. */
  compiled: number;
  /** Units loaded from the disk cache. */
  fromDisk: number;
  /** Units found already loaded in this context. */
  fromMemory: number;
  /** Milliseconds spent in NVRTC. */
  compileMs: number;
}

export class KernelCache {
  private readonly modules = new Map<string, { module: CUmodule; fns: Map<string, CUfunction> }>();
  readonly stats: KernelCacheStats = { compiled: 0, fromDisk: 0, fromMemory: 0, compileMs: 0 };

  /** `dir` null: no disk cache. */
  constructor(private readonly cu: CudaDriver, readonly arch: string, readonly dir: string | null) {}

  keyOf(unit: KernelUnit): string {
    return createHash('sha256').update(`${this.arch}\0${NVRTC_OPTIONS.join(' ')}\0${unit.source}`).digest('hex');
  }

  /** The unit's kernels by name, compiling or loading it on first use. */
  load(unit: KernelUnit): Map<string, CUfunction> {
    const key = this.keyOf(unit);
    const known = this.modules.get(key);
    if (known) {
      this.stats.fromMemory++;
      return known.fns;
    }
    const module = this.loadModule(unit, key);
    const fns = new Map<string, CUfunction>();
    for (const name of unit.kernels) fns.set(name, this.cu.moduleGetFunction(module, name));
    this.modules.set(key, { module, fns });
    return fns;
  }

  private loadModule(unit: KernelUnit, key: string): CUmodule {
    const file = this.dir === null ? null : join(this.dir, `${key.slice(0, 32)}.${this.arch}.cubin`);
    if (file !== null) {
      let image: Buffer | null = null;
      try {
        image = readFileSync(file);
      } catch {
        image = null;
      }
      if (image !== null && image.length > 0) {
        try {
          const module = this.cu.moduleLoadData(new Uint8Array(image.buffer, image.byteOffset, image.byteLength));
          this.stats.fromDisk++;
          return module;
        } catch {
          // a stale or damaged file: compile again and overwrite it
        }
      }
    }
    const t0 = performance.now();
    const compiled = compileCuda(unit.source, { arch: this.arch, options: NVRTC_OPTIONS, name: `${unit.name}.cu`, nvrtc: findNvrtc() });
    this.stats.compileMs += performance.now() - t0;
    this.stats.compiled++;
    if (file !== null && this.dir !== null) {
      try {
        mkdirSync(this.dir, { recursive: true });
        const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
        writeFileSync(tmp, compiled.image);
        renameSync(tmp, file);
      } catch {
        // the cache is an optimisation: an unwritable folder only costs compile time
      }
    }
    return this.cu.moduleLoadData(compiled.image);
  }

  /** Unloads every module (the context must be current). */
  close(): void {
    for (const { module } of this.modules.values()) {
      try {
        this.cu.moduleUnload(module);
      } catch {
        // the context may already be gone
      }
    }
    this.modules.clear();
  }
}
