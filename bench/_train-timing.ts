// Timing of one makeTrainFunction configuration, shared by bench/train.ts (the MLP) and bench/cnn.ts
// (the MNIST CNN): the median time per step after warm-up, and where a step's time goes. The
// shared-state step (CPU workers) reports rank 0's own timings; one rank's one-program step has
// nothing to split; otherwise the three calls a step makes are timed one by one. A shared-state
// step splits into gradient, wait at the barrier, reduce-scatter and update (rank 0's own clock).
import * as synk from '../src/index.js';
import type * as X from '../src/extensions/index.js';

/** One configuration's figures (ms unless said). */
export interface TrainTiming {
  workers: number;
  batch: number;
  msPerStep: number;
  samplesPerSecond: number;
  gradMs: number;
  /** Waiting at the barrier for the other ranks (shared-state step; 0 otherwise). */
  waitMs: number;
  /** The reduction: the shared-state step's reduce-scatter, or the three-call step's all-reduce. */
  allReduceMs: number;
  updateMs: number;
  /** The 10th and 90th percentiles of the time per step: the spread around the median. */
  p10Ms: number;
  p90Ms: number;
  /**
   * Shared-state steps only (else null): medians over the timing steps of the fastest and the slowest
   * rank's gradient, of the first and the last rank's start after the controller's call began, and
   * the ranks that were slowest (with counts).
   */
  ranks: { fastestGradMs: number; slowestGradMs: number; firstStartMs: number; lastStartMs: number; slowest: string } | null;
}

/** The median of a list (NaN for none). */
export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** The q-quantile of a list (nearest rank; NaN for none). */
const quantile = (xs: readonly number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * q)] ?? NaN;

/**
 * Warm-up steps before timing: the first calls capture CUDA graphs and let V8 optimise the step's code;
 * with 3, a GPU step was still 30% slower in the first 30 timed steps than in the next 15.
 */
const WARMUP_STEPS = 10;

/** Times `train(...args)` over `steps` steps after the warm-up steps, then splits a step into its parts. */
export async function timeTrainSteps(train: X.TrainFunction, args: readonly unknown[], workers: number, batch: number, steps: number): Promise<TrainTiming> {
  const step = () => train(...args);
  for (let i = 0; i < WARMUP_STEPS; i++) await step();
  const total: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await step();
    total.push(performance.now() - t0);
  }
  const parts = { grad: [] as number[], wait: [] as number[], ar: [] as number[], upd: [] as number[] };
  const ranks = { fast: [] as number[], slow: [] as number[], first: [] as number[], last: [] as number[], slowest: new Map<number, number>() };
  for (let i = 0; i < Math.max(3, Math.floor(steps / 2)); i++) {
    if (workers === 1 && train.timings() === null) {
      // One rank runs gradient and update as one program: nothing to split.
      const t0 = performance.now();
      await step();
      parts.grad.push(performance.now() - t0); parts.wait.push(0); parts.ar.push(0); parts.upd.push(0);
      continue;
    }
    if (train.timings() !== null) {
      await step();
      const t = train.timings()!;
      parts.grad.push(t.gradientMs); parts.wait.push(t.waitMs); parts.ar.push(t.reduceMs); parts.upd.push(t.updateMs);
      if (t.ranks.length > 0) {
        const grads = t.ranks.map((x) => x.gradientMs);
        const worst = grads.indexOf(Math.max(...grads));
        ranks.fast.push(Math.min(...grads)); ranks.slow.push(grads[worst]!);
        ranks.first.push(Math.min(...t.ranks.map((x) => x.startMs)));
        ranks.last.push(Math.max(...t.ranks.map((x) => x.startMs)));
        ranks.slowest.set(worst, (ranks.slowest.get(worst) ?? 0) + 1);
      }
      continue;
    }
    const t0 = performance.now();
    await train.gradFn(...(args as Parameters<typeof train.gradFn>));
    const t1 = performance.now();
    if (workers > 1) await synk.allReduce(train.optimizer.flatGrad, { op: 'sum' });
    const t2 = performance.now();
    await train.updateFn();
    parts.grad.push(t1 - t0); parts.wait.push(0); parts.ar.push(t2 - t1); parts.upd.push(performance.now() - t2);
  }
  const ms = median(total);
  return {
    workers, batch, msPerStep: ms, samplesPerSecond: (batch / ms) * 1000,
    gradMs: median(parts.grad), waitMs: median(parts.wait), allReduceMs: median(parts.ar), updateMs: median(parts.upd),
    p10Ms: quantile(total, 0.1), p90Ms: quantile(total, 0.9),
    ranks: ranks.fast.length === 0 ? null : {
      fastestGradMs: median(ranks.fast), slowestGradMs: median(ranks.slow), firstStartMs: median(ranks.first), lastStartMs: median(ranks.last),
      slowest: [...ranks.slowest].sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r}${n > 1 ? ` (${n}x)` : ''}`).join(', '),
    },
  };
}

/** One configuration's line: time per step, throughput, and what its parts were. */
export function timingLine(train: X.TrainFunction, r: TrainTiming): string {
  const how = train.timings() !== null
    ? 'one shared-state dispatch; rank 0: gradient / wait at barrier / reduce-scatter / update'
    : r.workers === 1 ? 'one program: gradient and update, / - / - / -' : 'three calls: gradient / - / all-reduce / update';
  const rest = r.msPerStep - r.gradMs - r.waitMs - r.allReduceMs - r.updateMs;
  const split = train.timings()?.columnSplit ?? 0;
  return `workers ${r.workers}, batch ${r.batch}: ${r.msPerStep.toFixed(1)} ms/step, ${Math.round(r.samplesPerSecond)} samples/s `
    + `(${how}: ${r.gradMs.toFixed(1)} / ${r.waitMs.toFixed(1)} / ${r.allReduceMs.toFixed(2)} / ${r.updateMs.toFixed(2)} ms; `
    + `dispatch and the rest ${rest.toFixed(1)} ms; p10 ${r.p10Ms.toFixed(2)}, p90 ${r.p90Ms.toFixed(2)} ms`
    + `${split ? `; ${split} weight gradients by the column split, their GEMMs in the reduce-scatter's time` : ''})`
    + (r.ranks ? `\n  ranks: gradient fastest / slowest ${r.ranks.fastestGradMs.toFixed(1)} / ${r.ranks.slowestGradMs.toFixed(1)} ms, `
      + `starts ${r.ranks.firstStartMs.toFixed(2)} to ${r.ranks.lastStartMs.toFixed(2)} ms after the call began; slowest rank: ${r.ranks.slowest}` : '');
}

/** The markdown table of every configuration. */
export function timingTable(results: readonly TrainTiming[]): string {
  const rows = results.map((r) => `| ${r.workers} | ${r.batch} | ${r.msPerStep.toFixed(1)} | ${Math.round(r.samplesPerSecond)} | `
    + `${r.gradMs.toFixed(1)} | ${r.waitMs.toFixed(1)} | ${r.allReduceMs.toFixed(2)} | ${r.updateMs.toFixed(2)} | `
    + `${(r.msPerStep - r.gradMs - r.waitMs - r.allReduceMs - r.updateMs).toFixed(1)} |`);
  const head = ['| workers | batch | ms/step | samples/s | gradient ms | wait ms | reduce ms | update ms | dispatch + rest ms |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|'];
  return ['', ...head, ...rows].join('\n');
}
