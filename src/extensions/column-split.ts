// Which weight gradients a shared-state step computes by the column split (src/parallel/shared-split.ts)
// and the gradient functions that publish their operands instead of computing them per rank.
//
// A candidate is a 2-D parameter whose gradient is one product Aᵀ·G (what a dense layer's x·W gives:
// matmul(x, gy, transA)), in the parameters' dtype and the default precision. Per step and per
// candidate, the rule (measured, BENCHMARKS.md "column split"): split when the step has at most
// SPLIT_MAX_ROWS_PER_RANK rows per rank (SPLIT_MAX_ROWS_PER_RANK_MANY from 8 ranks) and the whole
// batch is at most SPLIT_ROWS_PER_INPUT times the weight's input width. The cost model behind it: per rank, the row split writes a full dW
// replica (in·out), copies it into its arena slot and the reduce-scatter reads every rank's shard,
// about 3·in·out elements moved; the column split reads every rank's operand rows of G (batch·out)
// and writes only its shard. So the split wins while batch < ~3·in, and by more the more ranks share
// it; forced on or off with makeTrainFunction's `columnSplit` option or SYNK_COLUMN_SPLIT.
// Measured (bench/column-split.ts, 2 workers on the dev machine, steps of both interleaved): the split
// took 0.62-0.75 of the row split's time per step at 16-32 rows per rank, 0.85 at 64, and 1.07-1.08 at
// 128-256 (where the row split's GEMM has K large enough to hide its replica), hence 64 rows per rank.
// On 16 workers (the 16-core machine, bench/column-split.ts, every weight split) the split took 0.41,
// 0.37, 0.54, 0.67 and 0.80 of the row split's time at 8, 16, 32, 64 and 128 rows per rank: with more
// ranks there are more replicas to avoid, so from 8 ranks up the bound is 128 rows per rank.
import type { Variable } from '../tensor/variable.js';
import { config } from '../devices/config.js';
import type { SynkFn } from '../parallel/function.js';
import type { SplitChoice } from '../parallel/shared-train.js';
import type { SplitLayer } from '../parallel/shared-split.js';
import type { Optimizer } from './optimizer-core.js';

/** 'auto': the measured rule; 'on': every candidate whenever a step can split; 'off': never. */
export type ColumnSplitMode = 'auto' | 'on' | 'off';

/** The rule's bounds (see the file comment); measured on the dev machine and the 16-core machine. */
export const SPLIT_MAX_ROWS_PER_RANK = 64;
/** The bound from SPLIT_MANY_RANKS ranks up. */
export const SPLIT_MAX_ROWS_PER_RANK_MANY = 128;
export const SPLIT_MANY_RANKS = 8;
export const SPLIT_ROWS_PER_INPUT = 3;

interface Candidate {
  readonly param: number;
  readonly layer: SplitLayer;
  readonly operands: readonly [Variable, Variable];
}

/** The operands [A, G] of a gradient Aᵀ·G, or null when it is not one plain product. */
function productOperands(g: Variable, dtype: string): readonly [Variable, Variable] | null {
  let v = g;
  while (v.owner?.op === 'rebroadcast') v = v.owner.inputs[0]!;
  const o = v.owner;
  if (!o || o.op !== 'matmul' || o.attrs['transA'] !== true || o.attrs['transB'] !== false) return null;
  if (o.attrs['precision'] !== undefined) return null; // a bf16 product stays where the policy computes it
  const [a, b] = o.inputs as [Variable, Variable];
  return a.ndim === 2 && b.ndim === 2 && a.dtype === dtype && b.dtype === dtype ? [a, b] : null;
}

export function checkColumnSplit(v: unknown, what: string): ColumnSplitMode {
  const given = v ?? envMode();
  if (given !== 'auto' && given !== 'on' && given !== 'off') {
    throw new TypeError(`${what}: columnSplit must be 'auto', 'on' or 'off', got ${JSON.stringify(given)}`);
  }
  return given;
}

function envMode(): string {
  const raw = config().columnSplit;
  return raw === undefined || raw === '' ? 'auto' : raw === '1' ? 'on' : raw === '0' ? 'off' : raw;
}

/** The column split of one training function: its candidates and a gradient function per set of split weights. */
export class ColumnSplit {
  private readonly candidates: Candidate[] = [];
  private readonly fns = new Map<number, SynkFn>();
  /** Set when a step's operands did not fit its rows per rank (a product over other rows): never split again. */
  disabled = false;

  constructor(
    optimizer: Optimizer,
    readonly mode: ColumnSplitMode,
    private readonly gradFnFor: (flat: Variable, name: string) => SynkFn,
  ) {
    if (mode === 'off' || !optimizer.rankGrads || !optimizer.packSplit) return;
    const dtype = optimizer.params[0]!.dtype;
    optimizer.layout.params.forEach((e, i) => {
      const ops = e.shape.length === 2 ? productOperands(optimizer.rankGrads![i]!, dtype) : null;
      // The mask is a 32-bit integer's bits: 30 candidates at most (the rest keep the row split).
      if (ops && this.candidates.length < 30) {
        this.candidates.push({ param: i, layer: { offset: e.offset, inDim: e.shape[0]!, outDim: e.shape[1]! }, operands: ops });
      }
    });
    this.packSplit = optimizer.packSplit;
  }

  private readonly packSplit: Optimizer['packSplit'] | undefined;

  /** The weights a step may split, in flat-vector order (the plan's layers). */
  get layers(): SplitLayer[] {
    return this.candidates.map((c) => c.layer);
  }

  /** This step's split, given each rank's rows (null: unknown), or null for none. */
  choose(rows: readonly number[] | null, numSlices: number): SplitChoice | null {
    if (this.disabled || this.mode === 'off' || this.candidates.length === 0 || rows === null || rows.length < 2 || numSlices !== 1) return null;
    const stride = Math.max(...rows);
    const total = rows.reduce((a, b) => a + b, 0);
    if (stride === 0) return null;
    let mask = 0;
    this.candidates.forEach((c, l) => {
      const rowsBound = total >= SPLIT_MANY_RANKS * stride ? SPLIT_MAX_ROWS_PER_RANK_MANY : SPLIT_MAX_ROWS_PER_RANK;
      const auto = stride <= rowsBound && total <= SPLIT_ROWS_PER_INPUT * c.layer.inDim;
      if (this.mode === 'on' || auto) mask |= 1 << l;
    });
    return mask === 0 ? null : { mask, stride, gradFn: this.fnFor(mask) };
  }

  private fnFor(mask: number): SynkFn {
    let f = this.fns.get(mask);
    if (!f) {
      const split = new Map(this.candidates.filter((_, l) => (mask >> l) & 1).map((c) => [c.param, c.operands] as const));
      f = this.gradFnFor(this.packSplit!(split), `gradient (column split ${mask.toString(2)})`);
      this.fns.set(mask, f);
    }
    return f;
  }
}
