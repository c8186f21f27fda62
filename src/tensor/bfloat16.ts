// bfloat16 (1 sign, 8 exponent, 7 fraction bits: float32's range, 8 bits of precision) as the
// operand rounding of the 'bf16' precision policy: a float32 value rounded to the nearest bfloat16
// (ties to even), kept as a float32. The reference ops and the CPU device emulate bfloat16 matrix
// products with it; the CUDA device rounds the same way on the GPU (to_bf16_f32 in codegen/misc.ts).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** `x` (read as float32) rounded to the nearest bfloat16, ties to even; NaN stays NaN, infinities stay. */
export function roundToBf16(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return Number.NaN;
  // Adding 0x7fff plus the lowest kept bit and truncating rounds to nearest, ties to even; a carry
  // into the exponent is the right answer (up to infinity past the largest finite bfloat16).
  u32[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  return f32[0]!;
}

/** Rounds every element of `src` into `dst` (the same length; may be the same array). */
export function roundArrayToBf16(src: ArrayLike<number>, dst: Float32Array): Float32Array {
  for (let i = 0; i < src.length; i++) dst[i] = roundToBf16(src[i]!);
  return dst;
}
