// The driver of bench/mpi-allreduce.ts (run without a launcher): builds MPI's own all-reduce in C
// (bench/c/mpi_allreduce.c) with the chosen MPI's mpicc, runs it and the MpiCommunicator benchmark
// under that MPI's launcher for each process count, and prints one table with both.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const onPath = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function flavorOf(name: string): { launcher: string; launcherArgs: string[]; mpicc: string } {
  // Debian names each MPI's tools with a suffix; the plain names belong to whichever is the default.
  const tool = (debian: string, plain: string): string => (onPath(debian) ? debian : plain);
  if (name === 'openmpi') return { launcher: tool('mpirun.openmpi', 'mpirun'), launcherArgs: ['--oversubscribe'], mpicc: tool('mpicc.openmpi', 'mpicc') };
  if (name === 'mpich') return { launcher: tool('mpiexec.mpich', 'mpiexec'), launcherArgs: [], mpicc: tool('mpicc.mpich', 'mpicc') };
  throw new Error(`--mpi: expected openmpi or mpich, got ${JSON.stringify(name)}`);
}

function run(cmd: string, args: readonly string[]): string {
  const env = { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1' };
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Parses `--name value` options; the rest keep their defaults. */
function option(argv: readonly string[], name: string, fallback: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}

export async function runDriver(argv: readonly string[], self: URL): Promise<void> {
  const mpi = option(argv, '--mpi', 'openmpi');
  const nps = option(argv, '--np', '2,4').split(',').map(Number);
  const reps = option(argv, '--reps', '11');
  const maxMb = option(argv, '--max-mb', '256');
  const f = flavorOf(mpi);
  const source = fileURLToPath(new URL('../../bench/c/mpi_allreduce.c', self));
  const binary = join(mkdtempSync(join(tmpdir(), 'synk-mpi-bench-')), 'mpi_allreduce');
  run(f.mpicc, ['-O2', source, '-o', binary]);
  console.log(`MPI all-reduce, float32 sum in place, ${mpi} (${f.launcher}, C built with ${f.mpicc}), median of ${reps} runs, slowest rank\n`);
  console.log('| processes | MB | MpiCommunicator ms | MPI_Iallreduce+MPI_Wait via koffi ms | MPI_Allreduce in C ms | ours / C speed |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const np of nps) {
    const ours = run(f.launcher, [...f.launcherArgs, '-np', String(np), process.execPath, fileURLToPath(self), '--reps', reps, '--max-mb', maxMb]);
    const c = run(f.launcher, [...f.launcherArgs, '-np', String(np), binary, reps, maxMb]);
    const cms = new Map<number, number>();
    for (const m of c.matchAll(/^\| (\d+) \| ([\d.]+) \|$/gm)) cms.set(Number(m[1]), Number(m[2]));
    for (const m of ours.matchAll(/^ROW \| (\d+) \| ([\d.]+) \| ([\d.]+) \|/gm)) {
      const mb = Number(m[1]);
      const [mine, koffi, inC] = [Number(m[2]), Number(m[3]), cms.get(mb) ?? NaN];
      console.log(`| ${np} | ${mb} | ${mine.toFixed(3)} | ${koffi.toFixed(3)} | ${inC.toFixed(3)} | ${((inC / mine) * 100).toFixed(0)}% |`);
    }
  }
}
