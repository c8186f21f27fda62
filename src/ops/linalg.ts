// Linear algebra: one primitive, `matmul` over the last two axes with optional transposes of
// either operand (so a fast device maps it to one (batched) GEMM call and gradients such as
// g·Bᵀ never materialise a transpose). Leading batch axes broadcast as in NumPy's matmul.
// `dot`, `outer` and the 1-d cases are built from it in src/build/build-linalg.ts.
import { NDArray, shapeToString, sizeOf, stridesOf } from '../tensor/ndarray.js';
import { TensorType } from '../tensor/type.js';
import { isBool, upcast } from '../tensor/dtype.js';
import { broadcastPattern, broadcastShapes } from './broadcast.js';
import { OpRuntimeError, OpTypeError, type OpDef } from './op.js';
import { checkOperandPrecision, roundOperands, type OperandPrecision } from './operand-precision.js';

export type MatmulAttrs = {
  /** Use the transpose of the last two axes of the first operand. */
  readonly transA: boolean;
  /** Use the transpose of the last two axes of the second operand. */
  readonly transB: boolean;
  /** 'bf16': the operands are rounded to bfloat16 and the products summed in float32 or wider (see operand-precision.ts). */
  readonly precision?: OperandPrecision;
};

/** Rows/cols of op(X) for an array of shape `s` (last two axes). */
function opDims(s: readonly number[], trans: boolean): [number, number] {
  const r = s[s.length - 2]!;
  const c = s[s.length - 1]!;
  return trans ? [c, r] : [r, c];
}

export const linalgOps = {
  /**
   * C[..., i, j] = sum_k op(A)[..., i, k] * op(B)[..., k, j], op(X) = X or its last-two-axes transpose.
   * Both operands have ndim >= 2; batch axes (all but the last two) broadcast, aligned on the right.
   */
  matmul: {
    name: 'matmul',
    inferType(inputs, attrs) {
      if (inputs.length !== 2) throw new OpTypeError('matmul', inputs, `expects 2 inputs, got ${inputs.length}`);
      const [a, b] = inputs as [TensorType, TensorType];
      if (a.ndim < 2 || b.ndim < 2) throw new OpTypeError('matmul', inputs, 'both operands need ndim >= 2 (use dot for vectors and scalars)');
      if (typeof attrs.transA !== 'boolean' || typeof attrs.transB !== 'boolean')
        throw new OpTypeError('matmul', inputs, 'attrs transA and transB must be booleans');
      checkOperandPrecision('matmul', inputs, attrs.precision);
      const dtype = upcast(a.dtype, b.dtype);
      const batch = broadcastPattern([a.broadcastable.slice(0, -2), b.broadcastable.slice(0, -2)]);
      const aRows = a.broadcastable[attrs.transA ? a.ndim - 1 : a.ndim - 2]!;
      const bCols = b.broadcastable[attrs.transB ? b.ndim - 2 : b.ndim - 1]!;
      return new TensorType(isBool(dtype) ? 'int32' : dtype, [...batch, aRows, bCols]);
    },
    perform(inputs, attrs, out) {
      const [a, b] = roundOperands(inputs, attrs.precision) as [NDArray, NDArray];
      const [m, k] = opDims(a.shape, attrs.transA);
      const [k2, n] = opDims(b.shape, attrs.transB);
      const shapes = `${shapeToString(a.shape)}${attrs.transA ? 'ᵀ' : ''} and ${shapeToString(b.shape)}${attrs.transB ? 'ᵀ' : ''}`;
      if (k !== k2) throw new OpRuntimeError('matmul', `inner dimensions differ: ${shapes} (${k} vs ${k2})`);
      const aBatch = a.shape.slice(0, -2);
      const bBatch = b.shape.slice(0, -2);
      let batch: number[];
      try {
        batch = broadcastShapes('matmul', [aBatch, bBatch]);
      } catch {
        throw new OpRuntimeError('matmul', `batch axes of ${shapes} do not broadcast`);
      }
      const res = new NDArray(out.dtype, [...batch, m, n]);
      const nb = sizeOf(batch);
      // Offsets of each batch entry in a and b (0 stride on broadcast axes).
      const aStr = stridesOf(aBatch).map((s, i) => (aBatch[i] === 1 ? 0 : s * m * k));
      const bStr = stridesOf(bBatch).map((s, i) => (bBatch[i] === 1 ? 0 : s * k * n));
      const bs = stridesOf(batch);
      // Element strides of op(A)[i, p] and op(B)[p, j].
      const [aI, aP] = attrs.transA ? [1, m] : [k, 1];
      const [bP, bJ] = attrs.transB ? [1, k] : [n, 1];
      const A = a.data;
      const Bd = b.data;
      const C = res.data;
      for (let t = 0; t < nb; t++) {
        let aOff = 0;
        let bOff = 0;
        for (let ax = 0; ax < batch.length; ax++) {
          const idx = Math.floor(t / bs[ax]!) % batch[ax]!;
          const ia = ax - (batch.length - aBatch.length);
          const ib = ax - (batch.length - bBatch.length);
          if (ia >= 0) aOff += idx * aStr[ia]!;
          if (ib >= 0) bOff += idx * bStr[ib]!;
        }
        const cOff = t * m * n;
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let p = 0; p < k; p++) s += A[aOff + i * aI + p * aP]! * Bd[bOff + p * bP + j * bJ]!;
            C[cOff + i * n + j] = s;
          }
        }
      }
      return res;
    },
  } satisfies OpDef<MatmulAttrs>,
};
