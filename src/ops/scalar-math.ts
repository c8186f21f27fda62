// Scalar functions of the reference implementations; the CPU device's generated kernels call the
// same functions (SCALAR_HELPERS in src/devices/cpu/elementwise-templates.ts), so both agree bit for bit.

/** erf with |error| < 1.2e-7 (Numerical Recipes' erfc via Chebyshev fit), enough for float32 and gradients checks. */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** log(1 + exp(x)) without overflow. */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** Round half to even, as NumPy's round. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Python-style modulo (sign of the divisor, also for a zero result), as NumPy's mod. */
export function pyMod(a: number, b: number): number {
  const m = a % b;
  if (m === 0) return b < 0 ? -0 : 0;
  return (m < 0) !== (b < 0) ? m + b : m;
}

/**
 * Floor division as NumPy's floor_divide (npy_divmod): from the exact remainder fmod(a, b), so
 * that a = floorDiv(a, b) * b + pyMod(a, b) holds; Math.floor(a / b) rounds a / b first and gives
 * 75 for 7.5 // 0.1 where NumPy and Python give 74. A zero divisor gives a / b (inf or NaN).
 */
export function floorDiv(a: number, b: number): number {
  if (b === 0) return a / b;
  const m = a % b;
  let d = (a - m) / b;
  if (m !== 0 && (b < 0) !== (m < 0)) d -= 1;
  if (d === 0) {
    const q = a / b;
    return q < 0 || Object.is(q, -0) ? -0 : 0; // copysign(0, a / b)
  }
  const f = Math.floor(d);
  return d - f > 0.5 ? f + 1 : f; // (a - m) / b is within rounding of an integer: snap to it
}

export function sign(x: number): number {
  return x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : NaN;
}

/** NaN-propagating max/min, as NumPy's maximum/minimum. */
export function nanMax(a: number, b: number): number {
  return a !== a || b !== b ? NaN : a > b ? a : b;
}

export function nanMin(a: number, b: number): number {
  return a !== a || b !== b ? NaN : a < b ? a : b;
}

/** pow with C99 / NumPy special cases: pow(1, y) = 1 and pow(-1, ±Inf) = 1 even for NaN or infinite y. */
export function cPow(a: number, b: number): number {
  if (a === 1 || b === 0) return 1;
  if (a === -1 && (b === Infinity || b === -Infinity)) return 1;
  return Math.pow(a, b);
}

/**
 * Integer power in two's complement (int32 wraps as in NumPy and C on unsigned), by repeated squaring;
 * a negative exponent gives 1 for base 1, +-1 for base -1 and 0 otherwise (the CUDA device's rule).
 * uint8 stores keep the low byte, which is the same modular result.
 */
export function intPow(a: number, b: number): number {
  if (b < 0) return a === 1 ? 1 : a === -1 ? (b % 2 === 0 ? 1 : -1) : 0;
  let r = 1;
  let x = a | 0;
  for (let e = b >>> 0; e > 0; e >>>= 1) {
    if (e & 1) r = Math.imul(r, x);
    x = Math.imul(x, x);
  }
  return r;
}
