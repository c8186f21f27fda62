// Finding the MPI library at run time, and the launcher that started this process.
//
// No MPI binding is compiled in: the library is loaded by soname through koffi (dlopen), so one
// build of synkhronos runs under Open MPI, MPICH (and its derivatives) or an MPI-5 standard-ABI
// library. The launcher's environment decides which is tried first, so that a machine with both
// installed loads the library of the launcher that started us; a launcher and a library of
// different MPIs would otherwise give N jobs of size 1, which the world-size check after
// MPI_Init turns into an error (see checkWorldSize).
import { join } from 'node:path';
import { readConfig } from '../../devices/config.js';
import type { MpiAbi } from './abi.js';

type Env = Readonly<Record<string, string | undefined>>;

/** The sonames searched, by ABI (Intel MPI's libmpi.so.12 has MPICH's ABI). */
export const MPI_SONAMES: Readonly<Record<MpiAbi, readonly string[]>> = {
  openmpi: ['libmpi.so.40'],
  mpich: ['libmpich.so.12', 'libmpi.so.12'],
  standard: ['libmpi_abi.so.0', 'libmpi_abi.so'],
};

/** What a launcher tells its processes through the environment. */
export interface LauncherInfo {
  /** Human name of the launcher (printed in errors). */
  readonly name: string;
  /** The variable that carries the number of processes, e.g. OMPI_COMM_WORLD_SIZE. */
  readonly sizeVariable: string;
  /** The number of processes it started. */
  readonly size: number;
  /** The ABI of the MPI whose launcher this is, where that is known (srun and PMIx serve any). */
  readonly abi: MpiAbi | null;
}

const LAUNCHER_VARIABLES: readonly { variable: string; name: string; abi: MpiAbi | null }[] = [
  { variable: 'OMPI_COMM_WORLD_SIZE', name: "Open MPI's mpirun", abi: 'openmpi' },
  { variable: 'PMI_SIZE', name: "MPICH's mpiexec (Hydra, PMI)", abi: 'mpich' },
  { variable: 'PMIX_SIZE', name: 'a PMIx launcher', abi: null },
  { variable: 'SLURM_NTASKS', name: "Slurm's srun", abi: null },
];

/**
 * The launcher that started this process, from its environment variables, or null when none
 * did (a plain `node script.js`). A variable that is set but not a positive integer is an error.
 */
export function detectLauncher(env: Env = process.env): LauncherInfo | null {
  for (const { variable, name, abi } of LAUNCHER_VARIABLES) {
    const raw = env[variable];
    if (raw === undefined || raw === '') continue;
    const size = Number(raw);
    if (!Number.isInteger(size) || size < 1) throw new Error(`${variable}=${JSON.stringify(raw)}: expected a positive number of processes`);
    return { name, sizeVariable: variable, size, abi };
  }
  return null;
}

/**
 * Throws unless the MPI world has as many processes as the launcher started. The usual cause of
 * a mismatch is a launcher of one MPI with the library of another (each process then sees a
 * world of 1), or `N` separate jobs.
 */
export function checkWorldSize(worldSize: number, library: string, abi: MpiAbi, launcher: LauncherInfo | null): void {
  if (launcher === null || launcher.size === worldSize) return;
  const names: Record<MpiAbi, string> = { openmpi: 'Open MPI', mpich: 'MPICH', standard: 'the MPI standard ABI' };
  const why = launcher.abi !== null && launcher.abi !== abi
    ? `the launcher is ${names[launcher.abi]}'s but the library is ${names[abi]}'s: launch with the library's own mpirun/mpiexec, `
      + `or set SYNK_MPI_LIB to ${names[launcher.abi]}'s library`
    : 'the launcher belongs to another MPI installation than the library, or the processes were started as separate jobs: '
      + "launch with the mpirun/mpiexec of the library's MPI, or set SYNK_MPI_LIB to the launcher's library";
  throw new Error(
    `MPI world size mismatch: ${launcher.name} started ${launcher.size} processes (${launcher.sizeVariable}=${launcher.size}) but ${library} `
      + `sees a world of ${worldSize}; ${why}.`,
  );
}

/** One place a library was looked for, and why it was not taken. */
export interface MpiSearchAttempt {
  readonly path: string;
  readonly error: string;
}

/** Where to look, in order: an explicit path (option or SYNK_MPI_LIB) alone, or the sonames by launcher preference. */
export function mpiCandidates(explicit: string | undefined, env: Env = process.env): string[] {
  const chosen = explicit ?? readConfig(env).mpiLib;
  if (chosen !== undefined) return [chosen];
  const prefer = (() => {
    try {
      return detectLauncher(env)?.abi ?? null;
    } catch {
      return null; // a malformed variable is reported by the world-size check after MPI_Init
    }
  })();
  const order: MpiAbi[] = prefer === 'mpich' ? ['mpich', 'standard', 'openmpi'] : ['openmpi', 'mpich', 'standard'];
  const names = order.flatMap((abi) => MPI_SONAMES[abi]);
  // dlopen searches LD_LIBRARY_PATH, the ld.so cache and /lib, /usr/lib; module systems set these too.
  const homes = ['MPI_HOME', 'MPI_ROOT', 'I_MPI_ROOT'].map((v) => env[v]).filter((d): d is string => !!d);
  return [...names, ...homes.flatMap((home) => names.map((n) => join(home, 'lib', n)))];
}

/** The error for "no MPI library could be loaded", naming every place looked and how to install one. */
export function noMpiError(attempts: readonly MpiSearchAttempt[], explicit: boolean): Error {
  const tried = attempts.map((a) => `  ${a.path}: ${a.error.split('\n')[0]}`).join('\n');
  const hint = explicit
    ? 'the library named by SYNK_MPI_LIB (or the library option) failed to load; fix the path or unset it to search the usual names'
    : 'install MPI (Debian/Ubuntu: apt-get install openmpi-bin, or mpich), or set SYNK_MPI_LIB to the library file';
  return Object.assign(new Error(`no MPI library could be loaded; looked in:\n${tried}\n${hint}`), { name: 'MpiNotFoundError' });
}

/** Loads the first candidate that opens; throws noMpiError naming every attempt otherwise. */
export function loadFirst<L>(candidates: readonly string[], open: (path: string) => L, explicit: boolean): { path: string; lib: L } {
  const attempts: MpiSearchAttempt[] = [];
  for (const path of candidates) {
    try {
      return { path, lib: open(path) };
    } catch (e) {
      attempts.push({ path, error: e instanceof Error ? e.message : String(e) });
    }
  }
  throw noMpiError(attempts, explicit);
}
