// The optimizers: Lasagne's eight update rules, exactly (lasagne/updates.py), plus AdamW as in
// PyTorch (decoupled weight decay). Each takes (params, options) with a loss (or grads) and returns
// the gradient function's update (write ONE flat gradient vector), the parameter updates (read that
// vector after the all-reduce), the flat vector and the hyper-parameters as shared scalars.
//
//   const opt = adam(params, { loss, rows: x.shape[0], learningRate: 1e-3 });
//   const gradFn = synk.fn({ inputs: [x, y], outputs: loss, updates: opt.gradUpdates });
//   const updateFn = synk.fn({ updates: opt.paramUpdates });
//   await gradFn(X, Y, { batch }); await synk.allReduce(opt.flatGrad, { op: 'sum' }); await updateFn();
import * as B from '../build/build.js';
import type { SharedVariable } from '../tensor/variable.js';
import { buildOptimizer, type GradSource, type Hyper, type HyperRule, type Optimizer, type RuleName, type UpdatePair } from './optimizer-core.js';

export {
  buildOptimizer,
  type GradSource,
  type Hyper,
  type HyperRule,
  type Optimizer,
  type RuleBody,
  type RuleName,
  type UpdatePair,
} from './optimizer-core.js';

const LR_REQUIRED: HyperRule = { default: undefined, check: 'positive' };
const lr = (d: number): HyperRule => ({ default: d, check: 'positive' });
const unit = (d: number): HyperRule => ({ default: d, check: 'unit' });
const eps = (d: number): HyperRule => ({ default: d, check: 'nonNegative' });

type Opts<H extends string> = GradSource & Partial<Record<H, Hyper>>;

/** p ← p − lr·g. learningRate is required. */
export function sgd(params: readonly SharedVariable[], options: Opts<'learningRate'>): Optimizer<'learningRate'> {
  return buildOptimizer('sgd', params, options, { learningRate: LR_REQUIRED }, ({ params: ps, grads, hyper }) =>
    ps.map((p, i): UpdatePair => [p, B.sub(p, B.mul(hyper.learningRate, grads[i]!))]),
  );
}

/** Lasagne's momentum: v ← m·v − lr·g; p ← p + v. learningRate required, momentum 0.9. */
export function momentum(params: readonly SharedVariable[], options: Opts<'learningRate' | 'momentum'>): Optimizer<'learningRate' | 'momentum'> {
  return buildOptimizer('momentum', params, options, { learningRate: LR_REQUIRED, momentum: unit(0.9) }, ({ params: ps, grads, hyper, slot }) =>
    ps.flatMap((p, i): UpdatePair[] => {
      const v = slot(p, 'velocity');
      const x = B.add(B.mul(hyper.momentum, v), B.sub(p, B.mul(hyper.learningRate, grads[i]!)));
      return [
        [v, B.sub(x, p)],
        [p, x],
      ];
    }),
  );
}

/** Lasagne's Nesterov momentum: x = m·v − lr·g; v ← x; p ← p + m·x − lr·g. */
export function nesterovMomentum(params: readonly SharedVariable[], options: Opts<'learningRate' | 'momentum'>): Optimizer<'learningRate' | 'momentum'> {
  return buildOptimizer('nesterovMomentum', params, options, { learningRate: LR_REQUIRED, momentum: unit(0.9) }, ({ params: ps, grads, hyper, slot }) =>
    ps.flatMap((p, i): UpdatePair[] => {
      const v = slot(p, 'velocity');
      const step = B.sub(p, B.mul(hyper.learningRate, grads[i]!));
      const x = B.sub(B.add(B.mul(hyper.momentum, v), step), p);
      return [
        [v, x],
        [p, B.add(B.mul(hyper.momentum, x), step)],
      ];
    }),
  );
}

/** Lasagne's adagrad: a ← a + g²; p ← p − lr·g / sqrt(a + ε). lr 1.0, ε 1e-6. */
export function adagrad(params: readonly SharedVariable[], options: Opts<'learningRate' | 'epsilon'>): Optimizer<'learningRate' | 'epsilon'> {
  return buildOptimizer('adagrad', params, options, { learningRate: lr(1.0), epsilon: eps(1e-6) }, ({ params: ps, grads, hyper, slot }) =>
    ps.flatMap((p, i): UpdatePair[] => {
      const g = grads[i]!;
      const a = slot(p, 'accu');
      const aNew = B.add(a, B.square(g));
      return [
        [a, aNew],
        [p, B.sub(p, B.div(B.mul(hyper.learningRate, g), B.sqrt(B.add(aNew, hyper.epsilon))))],
      ];
    }),
  );
}

/** Lasagne's rmsprop: a ← ρ·a + (1−ρ)·g²; p ← p − lr·g / sqrt(a + ε). lr 1.0, ρ 0.9, ε 1e-6. */
export function rmsprop(params: readonly SharedVariable[], options: Opts<'learningRate' | 'rho' | 'epsilon'>): Optimizer<'learningRate' | 'rho' | 'epsilon'> {
  return buildOptimizer('rmsprop', params, options, { learningRate: lr(1.0), rho: unit(0.9), epsilon: eps(1e-6) }, ({ params: ps, grads, hyper, slot }) =>
    ps.flatMap((p, i): UpdatePair[] => {
      const g = grads[i]!;
      const a = slot(p, 'accu');
      const aNew = B.add(B.mul(hyper.rho, a), B.mul(B.sub(1, hyper.rho), B.square(g)));
      return [
        [a, aNew],
        [p, B.sub(p, B.div(B.mul(hyper.learningRate, g), B.sqrt(B.add(aNew, hyper.epsilon))))],
      ];
    }),
  );
}

/**
 * Lasagne's adadelta: a ← ρ·a + (1−ρ)·g²; u = g·sqrt(d + ε)/sqrt(a + ε); p ← p − lr·u;
 * d ← ρ·d + (1−ρ)·u². lr 1.0, ρ 0.95, ε 1e-6.
 */
export function adadelta(params: readonly SharedVariable[], options: Opts<'learningRate' | 'rho' | 'epsilon'>): Optimizer<'learningRate' | 'rho' | 'epsilon'> {
  return buildOptimizer('adadelta', params, options, { learningRate: lr(1.0), rho: unit(0.95), epsilon: eps(1e-6) }, ({ params: ps, grads, hyper, slot }) =>
    ps.flatMap((p, i): UpdatePair[] => {
      const g = grads[i]!;
      const a = slot(p, 'accu');
      const d = slot(p, 'deltaAccu');
      const oneMinusRho = B.sub(1, hyper.rho);
      const aNew = B.add(B.mul(hyper.rho, a), B.mul(oneMinusRho, B.square(g)));
      const u = B.div(B.mul(g, B.sqrt(B.add(d, hyper.epsilon))), B.sqrt(B.add(aNew, hyper.epsilon)));
      return [
        [a, aNew],
        [p, B.sub(p, B.mul(hyper.learningRate, u))],
        [d, B.add(B.mul(hyper.rho, d), B.mul(oneMinusRho, B.square(u)))],
      ];
    }),
  );
}

type AdamH = 'learningRate' | 'beta1' | 'beta2' | 'epsilon';

/**
 * Lasagne's adam: t ← t + 1; a = lr·sqrt(1 − β2^t)/(1 − β1^t); m ← β1·m + (1−β1)·g;
 * v ← β2·v + (1−β2)·g²; p ← p − a·m/(sqrt(v) + ε). lr 1e-3, β1 0.9, β2 0.999, ε 1e-8.
 */
export function adam(params: readonly SharedVariable[], options: Opts<AdamH> = {}): Optimizer<AdamH> {
  return buildOptimizer(
    'adam',
    params,
    options,
    { learningRate: lr(1e-3), beta1: unit(0.9), beta2: unit(0.999), epsilon: eps(1e-8) },
    ({ params: ps, grads, hyper: h, slot, scalarSlot }) => {
      const tPrev = scalarSlot('t');
      const t = B.add(tPrev, 1);
      const a = B.div(B.mul(h.learningRate, B.sqrt(B.sub(1, B.pow(h.beta2, t)))), B.sub(1, B.pow(h.beta1, t)));
      const out: UpdatePair[] = [];
      ps.forEach((p, i) => {
        const g = grads[i]!;
        const m = slot(p, 'm');
        const v = slot(p, 'v');
        const mNew = B.add(B.mul(h.beta1, m), B.mul(B.sub(1, h.beta1), g));
        const vNew = B.add(B.mul(h.beta2, v), B.mul(B.sub(1, h.beta2), B.square(g)));
        out.push([m, mNew], [v, vNew], [p, B.sub(p, B.div(B.mul(a, mNew), B.add(B.sqrt(vNew), h.epsilon)))]);
      });
      out.push([tPrev, t]);
      return out;
    },
  );
}

/**
 * Lasagne's adamax: t ← t + 1; a = lr/(1 − β1^t); m ← β1·m + (1−β1)·g; u ← max(β2·u, |g|);
 * p ← p − a·m/(u + ε). lr 2e-3, β1 0.9, β2 0.999, ε 1e-8.
 */
export function adamax(params: readonly SharedVariable[], options: Opts<AdamH> = {}): Optimizer<AdamH> {
  return buildOptimizer(
    'adamax',
    params,
    options,
    { learningRate: lr(2e-3), beta1: unit(0.9), beta2: unit(0.999), epsilon: eps(1e-8) },
    ({ params: ps, grads, hyper: h, slot, scalarSlot }) => {
      const tPrev = scalarSlot('t');
      const t = B.add(tPrev, 1);
      const a = B.div(h.learningRate, B.sub(1, B.pow(h.beta1, t)));
      const out: UpdatePair[] = [];
      ps.forEach((p, i) => {
        const g = grads[i]!;
        const m = slot(p, 'm');
        const u = slot(p, 'u');
        const mNew = B.add(B.mul(h.beta1, m), B.mul(B.sub(1, h.beta1), g));
        const uNew = B.maximum(B.mul(h.beta2, u), B.abs(g));
        out.push([m, mNew], [u, uNew], [p, B.sub(p, B.div(B.mul(a, mNew), B.add(uNew, h.epsilon)))]);
      });
      out.push([tPrev, t]);
      return out;
    },
  );
}

type AdamWH = AdamH | 'weightDecay';

/**
 * AdamW (Loshchilov and Hutter; PyTorch's torch.optim.AdamW): p ← p·(1 − lr·λ) −
 * (lr/(1 − β1^t))·m/(sqrt(v)/sqrt(1 − β2^t) + ε). lr 1e-3, β1 0.9, β2 0.999, ε 1e-8, λ 1e-2.
 */
export function adamw(params: readonly SharedVariable[], options: Opts<AdamWH> = {}): Optimizer<AdamWH> {
  const table = { learningRate: lr(1e-3), beta1: unit(0.9), beta2: unit(0.999), epsilon: eps(1e-8), weightDecay: eps(1e-2) };
  return buildOptimizer('adamw', params, options, table, ({ params: ps, grads, hyper: h, slot, scalarSlot }) => {
    const tPrev = scalarSlot('t');
    const t = B.add(tPrev, 1);
    const stepSize = B.div(h.learningRate, B.sub(1, B.pow(h.beta1, t)));
    const sqrtBc2 = B.sqrt(B.sub(1, B.pow(h.beta2, t)));
    const decay = B.sub(1, B.mul(h.learningRate, h.weightDecay));
    const out: UpdatePair[] = [];
    ps.forEach((p, i) => {
      const g = grads[i]!;
      const m = slot(p, 'm');
      const v = slot(p, 'v');
      const mNew = B.add(B.mul(h.beta1, m), B.mul(B.sub(1, h.beta1), g));
      const vNew = B.add(B.mul(h.beta2, v), B.mul(B.sub(1, h.beta2), B.square(g)));
      const denom = B.add(B.div(B.sqrt(vNew), sqrtBc2), h.epsilon);
      out.push([m, mNew], [v, vNew], [p, B.sub(B.mul(p, decay), B.div(B.mul(stepSize, mNew), denom))]);
    });
    out.push([tPrev, t]);
    return out;
  });
}

/** Every optimizer by name (for makeTrainFunction's rule argument). */
export const optimizers = { sgd, momentum, nesterovMomentum, adagrad, rmsprop, adadelta, adam, adamax, adamw } as const satisfies Record<RuleName, unknown>;

/** A rule given by name with its options, or a function building an optimizer from a gradient source. */
export type Rule = RuleName | ((params: readonly SharedVariable[], source: GradSource) => Optimizer);

/**
 * Builds an optimizer: a rule by name with its hyper-parameters (`makeOptimizer('adam', params, source, { learningRate: 1e-3 })`),
 * or a function that builds one.
 */
export function makeOptimizer(rule: Rule, params: readonly SharedVariable[], source: GradSource, hyper: Readonly<Record<string, Hyper>> = {}): Optimizer {
  if (typeof rule === 'function') {
    if (Object.keys(hyper).length) throw new TypeError('makeOptimizer: hyper-parameters go into the rule function when the rule is a function');
    return rule(params, source);
  }
  const make = (optimizers as unknown as Record<string, (p: readonly SharedVariable[], o: GradSource) => Optimizer>)[rule as string];
  if (!make) throw new TypeError(`makeOptimizer: unknown rule ${JSON.stringify(rule)}; expected one of ${Object.keys(optimizers).join(', ')} or a function`);
  return make(params, { ...source, ...hyper } as GradSource);
}
