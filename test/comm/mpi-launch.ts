// The MPI launchers found on this machine, and running a script under one of them, for the MPI
// tests (mpi.test.ts) and the Communicator suite's MPI transport (transports.ts).
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { MpiAbi } from '../../src/comm/mpi/abi.js';

/** A launcher that can start jobs here, with its library. */
export interface MpiFlavor {
  readonly name: string;
  readonly abi: MpiAbi;
  readonly command: string;
  /** Arguments before -np (Open MPI: more ranks than cores is allowed only with --oversubscribe). */
  readonly args: readonly string[];
  /** The variable a launcher of this MPI sets to the job size (set by hand for the world-size mismatch test). */
  readonly sizeVariable: string;
}

/** What one job printed, its exit status and how long it ran. */
export interface JobResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly out: string;
  readonly ms: number;
}

const onPath = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
const versionOf = (cmd: string): string => {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
};
/**
 * Null when the dynamic loader knows `soname` (its cache, or LD_LIBRARY_PATH), else why not. Not
 * loaded here: an MPI library's constructors (and UCX's signal and memory hooks) stay out of the test runner.
 */
const loads = (soname: string): string | null => {
  const ldconfig = (cmd: string): string => spawnSync(cmd, ['-p'], { encoding: 'utf8' }).stdout ?? '';
  const cache = ldconfig('ldconfig') || ldconfig('/sbin/ldconfig');
  if (cache.includes(`${soname} `)) return null;
  const dirs = (process.env['LD_LIBRARY_PATH'] ?? '').split(':').filter(Boolean);
  return dirs.some((d) => existsSync(join(d, soname))) ? null : `${soname} is not in the loader's cache nor LD_LIBRARY_PATH`;
};

/** Why a flavor cannot run here, or its description. */
export type FlavorProbe = { flavor: MpiFlavor; unavailable: null } | { flavor: null; unavailable: string };

/** Open MPI's mpirun with libmpi.so.40 (mpirun.openmpi where Debian's alternatives name it). */
export function probeOpenMpi(): FlavorProbe {
  const command = onPath('mpirun.openmpi') ? 'mpirun.openmpi' : onPath('mpirun') && /Open MPI|OpenRTE/.test(versionOf('mpirun')) ? 'mpirun' : null;
  if (command === null) return { flavor: null, unavailable: "no Open MPI mpirun on PATH (Debian: apt-get install openmpi-bin)" };
  const bad = loads('libmpi.so.40');
  if (bad !== null) return { flavor: null, unavailable: bad };
  return { flavor: { name: 'Open MPI', abi: 'openmpi', command, args: ['--oversubscribe'], sizeVariable: 'OMPI_COMM_WORLD_SIZE' }, unavailable: null };
}

/** MPICH's mpiexec (Hydra) with libmpich.so.12. */
export function probeMpich(): FlavorProbe {
  const command = onPath('mpiexec.mpich') ? 'mpiexec.mpich' : onPath('mpiexec') && /HYDRA/.test(versionOf('mpiexec')) ? 'mpiexec' : null;
  if (command === null) return { flavor: null, unavailable: 'no MPICH mpiexec on PATH (Debian: apt-get install mpich)' };
  const bad = loads('libmpich.so.12');
  if (bad !== null) return { flavor: null, unavailable: bad };
  return { flavor: { name: 'MPICH', abi: 'mpich', command, args: [], sizeVariable: 'PMI_SIZE' }, unavailable: null };
}

/**
 * The environment of a job: this one without any launcher's variables (the tests may themselves
 * run under a launcher) or SYNK_MPI_LIB, plus Open MPI's consent to run as root (CI containers).
 */
export function jobEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(OMPI_|PMI_|PMIX_|SLURM_|HYDRA_|MPI_LOCALNRANKS|MPI_LOCALRANKID)/.test(k) || k === 'SYNK_MPI_LIB') continue;
    env[k] = v;
  }
  return { ...env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', ...extra };
}

/** Runs `command args` to its end (killed after `timeoutMs`), collecting stdout and stderr together. */
export function runJob(command: string, args: readonly string[], env: Record<string, string>, timeoutMs = 120_000): Promise<JobResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, ms: performance.now() - t0 });
    });
  });
}

/** Runs a compiled script (a URL next to the caller) on `np` ranks under `flavor`. */
export function mpiRun(flavor: MpiFlavor, np: number, script: URL, scriptArgs: readonly string[], extraArgs: readonly string[] = []): Promise<JobResult> {
  const args = [...flavor.args, ...extraArgs, '-np', String(np), process.execPath, fileURLToPath(script), ...scriptArgs];
  return runJob(flavor.command, args, jobEnv());
}
