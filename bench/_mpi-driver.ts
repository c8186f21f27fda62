// The driver of bench/mpi-allreduce.ts (run without a launcher): builds MPI's own all-reduce in C
// (bench/c/mpi_allreduce.c) with the chosen MPI's mpicc (or takes --c-binary, a build made elsewhere),
// runs it and the MpiCommunicator benchmark under that MPI's launcher for each process count, and
// prints one table with both. With --rounds N it runs both N times, alternating which goes first,
// and prints the medians over the rounds and the spread of the per-round ratio: on a shared 2-core
// machine two jobs minutes apart differ by more than the code under test does.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
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

/** Parses `--name value` options; the rest keep their defaults (also used by the MPI benches run under a launcher). */
export function option(argv: readonly string[], name: string, fallback: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

interface Job { readonly reps: string; readonly maxMb: string; readonly oursArgs: readonly string[] }

/** One job of each (ours first on even rounds, C first on odd ones, so neither always gets the quieter minute): ms by MB. */
function oneRound(f: ReturnType<typeof flavorOf>, np: number, round: number, self: URL, binary: string, job: Job) {
  const launch = (program: readonly string[]): string => run(f.launcher, [...f.launcherArgs, '-np', String(np), ...program]);
  const runOurs = (): string => launch([process.execPath, fileURLToPath(self), ...job.oursArgs]);
  const runC = (): string => launch([binary, job.reps, job.maxMb]);
  let ours: string;
  let c: string;
  if (round % 2 === 0) {
    ours = runOurs();
    c = runC();
  } else {
    c = runC();
    ours = runOurs();
  }
  const byMb = new Map<number, { mine: number; koffi: number; inC: number }>();
  const cms = new Map<number, number>();
  for (const m of c.matchAll(/^\| (\d+) \| ([\d.]+) \|$/gm)) cms.set(Number(m[1]), Number(m[2]));
  for (const m of ours.matchAll(/^ROW \| (\d+) \| ([\d.]+) \| ([\d.]+) \|/gm)) {
    byMb.set(Number(m[1]), { mine: Number(m[2]), koffi: Number(m[3]), inC: cms.get(Number(m[1])) ?? NaN });
  }
  return byMb;
}

export async function runDriver(argv: readonly string[], self: URL): Promise<void> {
  const mpi = option(argv, '--mpi', 'openmpi');
  const nps = option(argv, '--np', '2,4').split(',').map(Number);
  const reps = option(argv, '--reps', '11');
  const maxMb = option(argv, '--max-mb', '256');
  const rounds = Number(option(argv, '--rounds', '1'));
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error(`--rounds: expected an integer >= 1, got ${option(argv, '--rounds', '1')}`);
  const spin = option(argv, '--spin-us', '');
  const f = flavorOf(mpi);
  // --c-binary: a build of bench/c/mpi_allreduce.c against this MPI made elsewhere (bench/prepare-mpi-carry.sh), for a
  // machine without mpicc; else it is built here with the MPI's mpicc.
  const prebuilt = option(argv, '--c-binary', '');
  let binary = prebuilt;
  if (prebuilt === '') {
    const source = fileURLToPath(new URL('../../bench/c/mpi_allreduce.c', self));
    binary = join(mkdtempSync(join(tmpdir(), 'synk-mpi-bench-')), 'mpi_allreduce');
    run(f.mpicc, ['-O2', source, '-o', binary]);
  } else if (!existsSync(prebuilt)) throw new Error(`--c-binary: ${prebuilt} does not exist`);
  const job: Job = { reps, maxMb, oursArgs: ['--reps', reps, '--max-mb', maxMb, ...(spin === '' ? [] : ['--spin-us', spin])] };
  const built = prebuilt === '' ? `C built with ${f.mpicc}` : `C: ${prebuilt}`;
  console.log(`MPI all-reduce, float32 sum in place, ${mpi} (${f.launcher}, ${built}), median of ${reps} runs, slowest rank`
    + `${spin === '' ? '' : `, spin ${spin} us`}${rounds > 1 ? `; ${rounds} rounds (ours and C alternate), medians over the rounds` : ''}\n`);
  console.log('| processes | MB | MpiCommunicator ms | MPI_Iallreduce+MPI_Wait via koffi ms | MPI_Allreduce in C ms | ours / C speed |'
    + (rounds > 1 ? ' per round: min / median / max |' : ''));
  console.log(`| ---: | ---: | ---: | ---: | ---: | ---: |${rounds > 1 ? ' ---: |' : ''}`);
  for (const np of nps) {
    const all = Array.from({ length: rounds }, (_, r) => oneRound(f, np, r, self, binary, job));
    for (const mb of all[0]!.keys()) {
      const of = (k: 'mine' | 'koffi' | 'inC'): number[] => all.map((m) => m.get(mb)?.[k] ?? NaN);
      const [mine, koffi, inC] = [median(of('mine')), median(of('koffi')), median(of('inC'))];
      const ratios = all.map((m) => (m.get(mb)!.inC / m.get(mb)!.mine) * 100).sort((a, b) => a - b);
      const spread = rounds > 1 ? ` ${ratios[0]!.toFixed(0)}% / ${median(ratios).toFixed(0)}% / ${ratios.at(-1)!.toFixed(0)}% |` : '';
      console.log(`| ${np} | ${mb} | ${mine.toFixed(3)} | ${koffi.toFixed(3)} | ${inC.toFixed(3)} | ${((inC / mine) * 100).toFixed(0)}% |${spread}`);
    }
  }
}
