// Helpers shared by the training demos (not a demo itself): the command line, starting workers on
// the fast CPU device, shuffled minibatches, whole-set validation with numSlices, progress, timing.
import os from 'node:os';
import { Option, type Command } from 'commander';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import * as X from '../src/extensions/index.js';
import { registerBuiltinDevices } from '../src/devices/builtin.js';
import { startProgress, type Progress } from '../src/extensions/progress.js';
import { envWorkers, exampleCommand, parseOptions, positiveInt, positiveNumber, quickOption, workersOption } from './_cli.js';

export interface DemoOptions {
  epochs: number;
  batch: number;
  workers: number;
  lr: number;
  seed: number;
  trainRows: number;
  testRows: number;
  slices: number;
  quick: boolean;
  devices: string;
}

export const DEVICE_KINDS = ['cpu', 'auto', 'cuda', 'reference'] as const;

/** Workers by default: SYNK_WORKERS from the environment, else one per available core. */
export const defaultWorkers = (): number => envWorkers(os.availableParallelism());

/**
 * Rows per step a CPU worker needs before another worker pays for its dispatch and reduction. Below
 * it one worker, whose BLAS then uses every core, trains faster (BENCHMARKS.md, "Default workers":
 * on the 16-core GPU machine batch 128 is fastest on 1 worker, 1024 on 4, 4096 on 8).
 */
export const MIN_ROWS_PER_CPU_WORKER = 512;

/**
 * The main job's CPU workers for a batch: one per MIN_ROWS_PER_CPU_WORKER rows, at most half the
 * cores (a worker on every core leaves none to the controller: dispatch costs 504 us at 16 workers on
 * 16 cores against 58 us at 8, issue #12), and at least one.
 */
export function cpuWorkersFor(batch: number, cores = os.availableParallelism()): number {
  return Math.max(1, Math.min(Math.floor(cores / 2), Math.floor(batch / MIN_ROWS_PER_CPU_WORKER)));
}

/**
 * Parses the demo's command line. `full` are the defaults of a real run, `quick` those of --quick
 * (CI-sized); options given explicitly win over both. `configure` adds the demo's own options.
 */
export function parseDemoOptions(
  name: string, description: string, full: Omit<DemoOptions, 'quick' | 'workers' | 'devices'>, quick: Partial<DemoOptions>, configure?: (c: Command) => void,
): DemoOptions & Record<string, unknown> {
  const program = exampleCommand(name, description)
    .option('--epochs <n>', 'passes over the training set', positiveInt('--epochs'), full.epochs)
    .option('--batch <n>', 'rows per step, over all workers', positiveInt('--batch'), full.batch)
    .addOption(workersOption('SYNK_WORKERS, else one per core'))
    .addOption(new Option('--devices <kind>', 'worker devices').choices(DEVICE_KINDS).default('cpu'))
    .option('--lr <x>', 'learning rate', positiveNumber('--lr'), full.lr)
    .option('--seed <n>', 'seed of the initial weights and the shuffles', positiveInt('--seed'), full.seed)
    .option('--train-rows <n>', 'use the first n training examples', positiveInt('--train-rows'), full.trainRows)
    .option('--test-rows <n>', 'use the first n test examples', positiveInt('--test-rows'), full.testRows)
    .option('--slices <n>', 'numSlices of the validation call (bounds its memory)', positiveInt('--slices'), full.slices)
    .addOption(quickOption(quick));
  configure?.(program);
  const opts = parseOptions<DemoOptions & Record<string, unknown>>(program, quick);
  opts.workers ??= defaultWorkers();
  return opts;
}

/** Starts the workers on the requested devices (the fast CPU device by default). */
export async function startWorkers(o: DemoOptions): Promise<number> {
  await registerBuiltinDevices();
  const devices = o.devices as (typeof DEVICE_KINDS)[number];
  if (!DEVICE_KINDS.includes(devices)) throw new RangeError(`--devices must be ${DEVICE_KINDS.join(', ')}, got ${o.devices}`);
  return synk.fork({ n: o.workers, devices });
}

/** A shuffled epoch as minibatches of row indices (the last one may be shorter). */
export function epochBatches(rng: X.Rng, rows: number, batch: number): Int32Array[] {
  const p = rng.permutation(rows);
  const out: Int32Array[] = [];
  for (let i = 0; i < rows; i += batch) out.push(p.subarray(i, Math.min(rows, i + batch)));
  return out;
}

/**
 * A validation function over a whole data set: each rank takes its rows in `slices` pieces (memory
 * stays bounded), correct counts and loss sums are summed over ranks.
 */
export function makeValidator(logits: T.Variable, inputs: readonly T.Variable[], y: T.Variable, options: { sliceableShareds?: T.SharedVariable[] } = {}) {
  const f = synk.fn({
    inputs: [...inputs],
    outputs: [[X.correctCount(logits, y), 'sum'], [T.sum(T.crossentropyFromLogits(logits, y)), 'sum'], [T.cast(T.shapeOf(logits)[0]!, 'float32'), 'sum']],
    ...(options.sliceableShareds ? { sliceableShareds: options.sliceableShareds } : {}),
    name: 'validate',
  });
  return async (args: unknown[], numSlices: number): Promise<{ accuracy: number; loss: number }> => {
    const [correct, lossSum, rows] = (await f(...(args as synk.SynkInput[]), { numSlices })) as T.NDArray[];
    return { accuracy: correct!.item() / rows!.item(), loss: lossSum!.item() / rows!.item() };
  };
}

/** The training and test sets in shared memory, written once; every worker reads its rows there. */
export function mnistData(
  train: { x: T.NDArray; y: T.NDArray },
  test: { x: T.NDArray; y: T.NDArray },
): { xs: synk.Data; ys: synk.Data; xt: synk.Data; yt: synk.Data } {
  return {
    xs: synk.data(train.x, { name: 'images' }),
    ys: synk.data(train.y, { name: 'labels' }),
    xt: synk.data(test.x, { name: 'test images' }),
    yt: synk.data(test.y, { name: 'test labels' }),
  };
}

/** The progress of one epoch's steps: a bar on a terminal, else a plain line every 5 s. */
export function epochProgress(epoch: number, epochs: number, steps: number): Progress {
  return startProgress({ label: `epoch ${epoch}/${epochs}`, total: steps, unit: 'steps' });
}

/** The progress line's details: running mean loss and throughput. */
export const stepInfo = (meanLoss: number, samples: number, t0: number): string =>
  `loss ${meanLoss.toFixed(4)}, ${Math.round(samples / seconds(t0)).toLocaleString('en-US')} samples/s`;

export const seconds = (t0: number): number => (performance.now() - t0) / 1000;
export const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

/** Ends a demo: checks the target and prints the closing line the example runner looks for. */
export function finish(name: string, accuracy: number, target: number): void {
  if (!(accuracy >= target)) {
    console.error(`${name}: test accuracy ${pct(accuracy)} is below the target ${pct(target)}`);
    process.exitCode = 1;
    return;
  }
  console.log(`${name}: test accuracy ${pct(accuracy)} >= target ${pct(target)}: OK`);
}
