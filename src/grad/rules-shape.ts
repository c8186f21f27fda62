// Gradient rules of the structural, shape and indexing ops: each moves the output gradient back
// through the same rearrangement (a slice's gradient is an increment of zeros, and so on).
import type { DType } from '../tensor/dtype.js';
import { isFloat } from '../tensor/dtype.js';
import type { Variable } from '../tensor/variable.js';
import { applyOp } from '../ops/apply.js';
import { shiftEntries } from '../ops/indexing.js';
import type { indexingOps } from '../ops/indexing.js';
import type { shapeOps } from '../ops/shape.js';
import type { structuralOps } from '../ops/structural.js';
import * as B from '../build/build.js';
import * as S from '../build/build-shape.js';
import type { GradRules } from './rule-types.js';

type ShapeOpName = keyof typeof structuralOps | keyof typeof shapeOps | keyof typeof indexingOps;

/** g reshaped to `dims`, summed over `sumAxes` and given x's broadcast pattern (repeat and tile). */
function sumSplit(g: Variable, x: Variable, dims: (number | Variable)[], sumAxes: number[]): Variable {
  return B.rebroadcastLike(B.sum(B.reshape(g, dims), sumAxes), x);
}

const zeroLike = (g: Variable): Variable => B.constant(0, { dtype: g.dtype });

/**
 * 1 where an index position is the last to name its target along an axis of size n, else 0 (shaped
 * like idx). Built from the set-scatter itself, so it picks the same winner as the forward pass:
 * each target records the position that wrote it last, and a position wins if it reads itself back.
 */
function lastWriteMask(idx: Variable, n: Variable, dtype: DType): Variable {
  const flat = B.flatten(idx);
  const positions = S.arange(B.shapeOf(flat)[0]!);
  const winners: Variable = applyOp('incTake', [S.alloc(B.constant(-1, { dtype: 'int32' }), [n]), positions, flat], { axis: 0, set: true });
  const wins = B.eq(applyOp('take', [winners, flat], { axis: 0 }), positions);
  return B.reshape(B.cast(wins, dtype), B.shapeOf(idx));
}

/** The structural, shape and indexing ops' gradient rules. */
export const shapeGradRules: GradRules<ShapeOpName> = {
  shapeI: () => [null],
  sumToLike: (ctx) => [B.broadcastLike(ctx.gOut, ctx.inputs[0]!), null],
  broadcastLike: (ctx) => [B.sumToLike(ctx.gOut, ctx.inputs[0]!), null],
  fillLike: () => [null],
  dimshuffle: (ctx) => {
    const x = ctx.inputs[0]!;
    const pattern = ctx.attrs.pattern;
    const kept = pattern.map((p, i) => [p, i] as const).filter(([p]) => p !== 'x');
    // Drop the 'x' axes of g, then move axes back (dropped input axes come back as 'x').
    const dropX = kept.map(([, i]) => i);
    const gKept = B.dimshuffle(B.addBroadcast(ctx.gOut, pattern.map((p, i) => (p === 'x' ? i : -1)).filter((i) => i >= 0)), dropX);
    const inverse: (number | 'x')[] = [];
    for (let j = 0; j < x.ndim; j++) {
      const pos = kept.findIndex(([p]) => p === j);
      inverse.push(pos >= 0 ? pos : 'x');
    }
    return [B.dimshuffle(gKept, inverse)];
  },
  reshape: (ctx) => [B.reshape(ctx.gOut, B.shapeOf(ctx.inputs[0]!)), ...ctx.inputs.slice(1).map(() => null)],
  rebroadcast: (ctx) => [B.rebroadcastLike(ctx.gOut, ctx.inputs[0]!)],
  scalarFromNumber: null,
  concatenate: (ctx): (Variable | null)[] => {
    const ax = ctx.attrs.axis;
    let start: Variable | number = 0;
    return ctx.inputs.map((x) => {
      const stop: Variable = B.add(start, B.shapeOf(x)[ax]!);
      const entries = [...new Array<null>(ax).fill(null), [start, stop] as const];
      const g = isFloat(x.dtype) ? B.rebroadcastLike(S.subtensor(ctx.gOut, entries), x) : null;
      start = stop;
      return g;
    });
  },
  alloc: (ctx) => [B.sumToLike(ctx.gOut, ctx.inputs[0]!), ...ctx.inputs.slice(1).map(() => null)],
  arange: (ctx) => ctx.inputs.map(() => null),
  oneHot: (ctx) => ctx.inputs.map(() => null),
  repeat: (ctx): (Variable | null)[] => {
    const x = ctx.inputs[0]!;
    const { axis, repeats } = ctx.attrs;
    const s = B.shapeOf(x);
    return [sumSplit(ctx.gOut, x, [...s.slice(0, axis + 1), repeats, ...s.slice(axis + 1)], [axis + 1])];
  },
  tile: (ctx): (Variable | null)[] => {
    const x = ctx.inputs[0]!;
    const s = B.shapeOf(x);
    const dims = ctx.attrs.reps.flatMap((r, i) => [r, s[i]!]);
    return [sumSplit(ctx.gOut, x, dims, ctx.attrs.reps.map((_, i) => 2 * i))];
  },
  subtensor: (ctx): (Variable | null)[] => {
    const [x, ...ints] = ctx.inputs as [Variable, ...Variable[]];
    const gx: Variable = applyOp('incSubtensor', [B.zerosLike(x), ctx.gOut, ...ints], { entries: shiftEntries(ctx.attrs.entries, 1), set: false });
    return [gx, ...ints.map(() => null)];
  },
  incSubtensor: (ctx): (Variable | null)[] => {
    const [, y, ...ints] = ctx.inputs as [Variable, Variable, ...Variable[]];
    const g = ctx.gOut;
    const gx: Variable = ctx.attrs.set ? applyOp('incSubtensor', [g, zeroLike(g), ...ints], { entries: ctx.attrs.entries, set: true }) : g;
    const gRegion: Variable = applyOp('subtensor', [g, ...ints], { entries: shiftEntries(ctx.attrs.entries, -1) });
    return [gx, B.sumToLike(gRegion, y), ...ints.map(() => null)];
  },
  take: (ctx): (Variable | null)[] => {
    const [x, idx] = ctx.inputs as [Variable, Variable];
    return [applyOp('incTake', [B.zerosLike(x), ctx.gOut, idx], { axis: ctx.attrs.axis, set: false }), null];
  },
  incTake: (ctx): (Variable | null)[] => {
    const [x, y, idx] = ctx.inputs as [Variable, Variable, Variable];
    const { axis, set } = ctx.attrs;
    const g = ctx.gOut;
    const gx: Variable = set ? applyOp('incTake', [g, zeroLike(g), idx], { axis, set: true }) : g;
    let gRegion: Variable = applyOp('take', [g, idx], { axis });
    if (set) {
      // With repeated indices only the last write of each position survives (as in the forward
      // pass); the overwritten ones get no gradient.
      const pad = (n: number): 'x'[] => new Array<'x'>(n).fill('x');
      const pattern: (number | 'x')[] = [...pad(axis), ...idx.broadcastable.map((_, i) => i), ...pad(x.ndim - axis - 1)];
      gRegion = B.mul(gRegion, B.dimshuffle(lastWriteMask(idx, B.shapeOf(x)[axis]!, g.dtype), pattern));
    }
    return [gx, B.sumToLike(gRegion, y), null];
  },
};
