// The nine optimizer rules as fused kernels over one flat range: one pass reads the mean gradient,
// the parameter and its state and writes them back in place (PyTorch's fused/foreach optimizers do
// the same). Each kernel follows its symbolic rule in src/extensions/optimizers.ts operation for
// operation; tests hold the two to each other on every rule. Arithmetic is in float64 and each
// stored value is rounded once to the parameter's dtype.

/** Float storage of parameters, state and gradient. */
export type FloatArray = Float32Array | Float64Array;

/** One rule's fused update: which hyper-parameters it reads, which state vectors it keeps. */
export interface FusedRule {
  /** Hyper-parameter names, in the order the rule's table declares them. */
  readonly hyper: readonly string[];
  /** Per-parameter state vectors, in the order the symbolic rule creates them (slot names). */
  readonly state: readonly string[];
  /** Whether the rule keeps a step counter (a scalar slot created before the vectors). */
  readonly counter: boolean;
  /**
   * Updates p[lo, hi) in place. The mean gradient of element i is g[i - lo] * scale; s holds the
   * state vectors (indexed like p); h the hyper-parameter values in `hyper` order; t the new step count.
   */
  update(p: FloatArray, g: FloatArray, scale: number, s: readonly FloatArray[], lo: number, hi: number, h: readonly number[], t: number): void;
}

const sgd: FusedRule = {
  hyper: ['learningRate'], state: [], counter: false,
  update(p, g, scale, _s, lo, hi, [lr]) {
    for (let i = lo; i < hi; i++) p[i] = p[i]! - lr! * (g[i - lo]! * scale);
  },
};

const momentum: FusedRule = {
  hyper: ['learningRate', 'momentum'], state: ['velocity'], counter: false,
  update(p, g, scale, [v], lo, hi, [lr, mu]) {
    for (let i = lo; i < hi; i++) {
      const x = mu! * v![i]! + (p[i]! - lr! * (g[i - lo]! * scale));
      v![i] = x - p[i]!;
      p[i] = x;
    }
  },
};

const nesterovMomentum: FusedRule = {
  hyper: ['learningRate', 'momentum'], state: ['velocity'], counter: false,
  update(p, g, scale, [v], lo, hi, [lr, mu]) {
    for (let i = lo; i < hi; i++) {
      const step = p[i]! - lr! * (g[i - lo]! * scale);
      const x = mu! * v![i]! + step - p[i]!;
      v![i] = x;
      p[i] = mu! * x + step;
    }
  },
};

const adagrad: FusedRule = {
  hyper: ['learningRate', 'epsilon'], state: ['accu'], counter: false,
  update(p, g, scale, [a], lo, hi, [lr, eps]) {
    for (let i = lo; i < hi; i++) {
      const gi = g[i - lo]! * scale;
      const aNew = a![i]! + gi * gi;
      a![i] = aNew;
      p[i] = p[i]! - (lr! * gi) / Math.sqrt(aNew + eps!);
    }
  },
};

const rmsprop: FusedRule = {
  hyper: ['learningRate', 'rho', 'epsilon'], state: ['accu'], counter: false,
  update(p, g, scale, [a], lo, hi, [lr, rho, eps]) {
    for (let i = lo; i < hi; i++) {
      const gi = g[i - lo]! * scale;
      const aNew = rho! * a![i]! + (1 - rho!) * gi * gi;
      a![i] = aNew;
      p[i] = p[i]! - (lr! * gi) / Math.sqrt(aNew + eps!);
    }
  },
};

const adadelta: FusedRule = {
  hyper: ['learningRate', 'rho', 'epsilon'], state: ['accu', 'deltaAccu'], counter: false,
  update(p, g, scale, [a, d], lo, hi, [lr, rho, eps]) {
    for (let i = lo; i < hi; i++) {
      const gi = g[i - lo]! * scale;
      const aNew = rho! * a![i]! + (1 - rho!) * gi * gi;
      const u = (gi * Math.sqrt(d![i]! + eps!)) / Math.sqrt(aNew + eps!);
      a![i] = aNew;
      p[i] = p[i]! - lr! * u;
      d![i] = rho! * d![i]! + (1 - rho!) * u * u;
    }
  },
};

const adam: FusedRule = {
  hyper: ['learningRate', 'beta1', 'beta2', 'epsilon'], state: ['m', 'v'], counter: true,
  update(p, g, scale, [m, v], lo, hi, [lr, b1, b2, eps], t) {
    const a = (lr! * Math.sqrt(1 - b2! ** t)) / (1 - b1! ** t);
    for (let i = lo; i < hi; i++) {
      const gi = g[i - lo]! * scale;
      const mNew = b1! * m![i]! + (1 - b1!) * gi;
      const vNew = b2! * v![i]! + (1 - b2!) * gi * gi;
      m![i] = mNew;
      v![i] = vNew;
      p[i] = p[i]! - (a * mNew) / (Math.sqrt(vNew) + eps!);
    }
  },
};

const adamax: FusedRule = {
  hyper: ['learningRate', 'beta1', 'beta2', 'epsilon'], state: ['m', 'u'], counter: true,
  update(p, g, scale, [m, u], lo, hi, [lr, b1, b2, eps], t) {
    const a = lr! / (1 - b1! ** t);
    for (let i = lo; i < hi; i++) {
      const gi = g[i - lo]! * scale;
      const mNew = b1! * m![i]! + (1 - b1!) * gi;
      const uNew = Math.max(b2! * u![i]!, Math.abs(gi));
      m![i] = mNew;
      u![i] = uNew;
      p[i] = p[i]! - (a * mNew) / (uNew + eps!);
    }
  },
};

const adamw: FusedRule = {
  hyper: ['learningRate', 'beta1', 'beta2', 'epsilon', 'weightDecay'], state: ['m', 'v'], counter: true,
  update(p, g, scale, [m, v], lo, hi, [lr, b1, b2, eps, wd], t) {
    const stepSize = lr! / (1 - b1! ** t);
    const sqrtBc2 = Math.sqrt(1 - b2! ** t);
    const decay = 1 - lr! * wd!;
    for (let i = lo; i < hi; i++) {
      const gi = g[i - lo]! * scale;
      const mNew = b1! * m![i]! + (1 - b1!) * gi;
      const vNew = b2! * v![i]! + (1 - b2!) * gi * gi;
      m![i] = mNew;
      v![i] = vNew;
      p[i] = p[i]! * decay - (stepSize * mNew) / (Math.sqrt(vNew) / sqrtBc2 + eps!);
    }
  },
};

/** The fused kernels by rule name (the same names as the symbolic rules). */
export const FUSED_RULES = { sgd, momentum, nesterovMomentum, adagrad, rmsprop, adadelta, adam, adamax, adamw } as const;

/** A rule that has a fused kernel. */
export type FusedRuleName = keyof typeof FUSED_RULES;

/** The fused kernel of a rule, or a clear error. */
export function fusedRule(name: string): FusedRule {
  const rule = (FUSED_RULES as Readonly<Record<string, FusedRule>>)[name];
  if (!rule) throw new TypeError(`fused optimizer: no fused kernel for rule ${JSON.stringify(name)}; known: ${Object.keys(FUSED_RULES).join(', ')}`);
  return rule;
}
