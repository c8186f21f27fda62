// The tests' own bfloat16 rounding, written apart from src/tensor/bfloat16.ts (arithmetic, not bits).

/**
 * The oracle's rounding, by arithmetic on float64: the nearest multiple of the bfloat16 spacing at x's
 * binade (8 significant bits; float32's subnormal spacing below 2^-126), ties to the even multiple.
 */
export function bf16Oracle(v: number): number {
  const x = Math.fround(v);
  if (x === 0 || !Number.isFinite(x)) return x;
  let e = Math.max(-126, Math.floor(Math.log2(Math.abs(x))));
  if (e > -126 && 2 ** e > Math.abs(x)) e--;
  if (2 ** (e + 1) <= Math.abs(x)) e++;
  const spacing = 2 ** (e - 7);
  const q = x / spacing; // exact: x has at most 24 significant bits
  const fl = Math.floor(q);
  const r = q - fl === 0.5 ? (fl % 2 === 0 ? fl : fl + 1) : Math.round(q);
  return r * spacing;
}
