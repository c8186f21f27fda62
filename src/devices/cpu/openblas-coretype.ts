// OpenBLAS built with DYNAMIC_ARCH picks its kernels from the CPU model when it is loaded. A release
// older than the CPU does not know the model and falls back to a generic core (Debian's 0.3.21 on a
// recent Xeon picks Prescott: about 5x slower on large products). The core type can only be chosen
// before the library is loaded (it reads OPENBLAS_CORETYPE once, at load), so the main thread asks
// a short-lived child process what the library would pick here, and when that is slower than what
// the CPU supports, sets OPENBLAS_CORETYPE itself. The answer is cached on disk per library file
// and CPU, so the probe runs once per machine. An explicit OPENBLAS_CORETYPE always wins.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { config } from '../config.js';
import { isMainThread } from 'node:worker_threads';

/** What the library picks and what we chose instead; `chosen` null: the library's pick stands. */
export interface CoretypeDecision {
  readonly libraryPick: string;
  readonly chosen: string | null;
}

/** Instruction-set level of OpenBLAS's x86-64 core names (lower case); unknown names count as fast. */
const CORE_LEVEL: Readonly<Record<string, number>> = {
  prescott: 0, core2: 0, penryn: 0, dunnington: 0, nehalem: 0, atom: 0, katmai: 0, coppermine: 0, northwood: 0,
  opteron: 0, opteron_sse3: 0, barcelona: 0, nano: 0, bobcat: 0, generic: 0, unknown: 0,
  sandybridge: 1, bulldozer: 1, piledriver: 1, steamroller: 1,
  haswell: 2, zen: 2, excavator: 2,
  skylakex: 3, cooperlake: 4, sapphirerapids: 4,
};

/** The fastest core type this CPU supports, from its /proc/cpuinfo flags (x86-64 Linux only). */
export function bestCoreFor(flags: ReadonlySet<string>): { name: string; level: number } | null {
  if (flags.has('avx512_bf16') && flags.has('avx512f')) return { name: 'COOPERLAKE', level: 4 };
  if (['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f))) return { name: 'SKYLAKEX', level: 3 };
  if (flags.has('avx2') && flags.has('fma')) return { name: 'HASWELL', level: 2 };
  if (flags.has('avx')) return { name: 'SANDYBRIDGE', level: 1 };
  return null;
}

/** Whether the library's pick is slower than the best core for the CPU (then we choose). */
export function decide(libraryPick: string, flags: ReadonlySet<string>): CoretypeDecision {
  const best = bestCoreFor(flags);
  const level = CORE_LEVEL[libraryPick.toLowerCase()] ?? Number.POSITIVE_INFINITY;
  return { libraryPick, chosen: best !== null && level < best.level ? best.name : null };
}

export function cpuInfo(): { model: string; flags: Set<string> } | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  let text: string;
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return null;
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1] ?? '';
  return { model: `${field('vendor_id')} ${field('cpu family')} ${field('model')} ${field('model name')}`, flags: new Set(field('flags').split(/\s+/)) };
}

// The probe's whole program: load the library named in argv and print the core it picked.
const PROBE = [
  "const koffi = require(process.argv[1]);",
  "const lib = koffi.load(process.argv[2]);",
  "process.stdout.write(String(lib.func('const char *openblas_get_corename()')()));",
].join('\n');

function probe(libPath: string): string | null {
  const koffiPath = createRequire(import.meta.url).resolve('koffi');
  const env: Record<string, string | undefined> = { ...process.env, OPENBLAS_NUM_THREADS: '1' };
  delete env['OPENBLAS_CORETYPE'];
  const r = spawnSync(process.execPath, ['-e', PROBE, koffiPath, libPath], { env, encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 && /^[A-Za-z0-9_]{1,40}$/.test(r.stdout) ? r.stdout : null;
}

/** Where the probe's answer for this library and CPU is kept (exported for tests). */
export function cacheFile(libPath: string, model: string, flags: ReadonlySet<string>): string | null {
  let stamp = libPath;
  try {
    const st = statSync(libPath);
    stamp += `\0${st.size}\0${st.mtimeMs}`;
  } catch {
    // a soname (the loader finds the file): its identity is its name
  }
  const key = createHash('sha256').update(`${stamp}\0${model}\0${[...flags].sort().join(' ')}`).digest('hex').slice(0, 24);
  const dir = config().kernelCacheDir;
  return join(dir, `openblas-core-${key}.txt`);
}

/**
 * Before the first load of an OpenBLAS in the main thread: sets OPENBLAS_CORETYPE when the library
 * would pick a slower core than the CPU supports. Returns the decision, or null when nothing was
 * probed (not OpenBLAS by name, not x86-64 Linux, a worker thread, or OPENBLAS_CORETYPE already set).
 */
export function chooseOpenblasCoretype(libPath: string): CoretypeDecision | null {
  if (!isMainThread || !/openblas/i.test(libPath)) return null;
  if (process.env['OPENBLAS_CORETYPE'] !== undefined && process.env['OPENBLAS_CORETYPE'] !== '') return null;
  const cpu = cpuInfo();
  if (cpu === null || bestCoreFor(cpu.flags) === null) return null;
  const file = cacheFile(libPath, cpu.model, cpu.flags);
  let pick: string | null = null;
  if (file !== null) {
    try {
      pick = readFileSync(file, 'utf8').trim() || null;
    } catch {
      pick = null;
    }
  }
  if (pick === null) {
    pick = probe(libPath);
    if (pick === null) return null;
    try {
      if (file !== null) {
        mkdirSync(join(file, '..'), { recursive: true });
        writeFileSync(file, pick);
      }
    } catch {
      // the cache only saves a probe next time
    }
  }
  const decision = decide(pick, cpu.flags);
  // process.env writes reach the C environment in the main thread, which OpenBLAS reads at load.
  if (decision.chosen !== null) process.env['OPENBLAS_CORETYPE'] = decision.chosen;
  return decision;
}
