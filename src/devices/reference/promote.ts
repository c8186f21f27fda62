// Rewrites a program to compute every float32 value in float64 (for the float64 oracle).
import type { DType } from '../../tensor/dtype.js';
import type { Program } from '../../compile/program.js';

const up = (d: DType): DType => (d === 'float32' ? 'float64' : d);

function promoteAttrs(attrs: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'dtype' && v === 'float32') out[k] = 'float64';
    else if (k === 'steps' && Array.isArray(v)) {
      out[k] = v.map((s: { dtype: DType; attrs: Readonly<Record<string, unknown>> }) => ({
        ...s,
        dtype: up(s.dtype),
        attrs: promoteAttrs(s.attrs),
      }));
    }
    else out[k] = v;
  }
  return out;
}

export function promoteFloats(p: Program): Program {
  return {
    ...p,
    slots: p.slots.map((s) => ({ ...s, dtype: up(s.dtype) })),
    constants: p.constants.map((c) => ({ ...c, value: { ...c.value, dtype: up(c.value.dtype) } })),
    steps: p.steps.map((s) => ({ ...s, attrs: promoteAttrs(s.attrs) })),
  };
}
