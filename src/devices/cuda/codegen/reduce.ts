// Generated reductions: a functor struct per (kind, dtypes) and nine entry points around the
// sk_rows / sk_cols templates of the prelude (rows with a warp or a block per row, columns; each
// as a single pass, a first pass writing partials, or a pass combining partials).
import type { DType } from '../../../tensor/dtype.js';
import { bytesPerElement, isFloat, previewValue } from '../../../tensor/dtype.js';
import { ctype, dtag, literal, storeFn } from './ctypes.js';
import { shortHash, type ModuleBuilder } from './module.js';

/**
 * What a reduction computes. 'varMean' and 'lseMax' are first phases (into float64), 'varDev' and
 * 'lseSum' second phases that read the first phase's result as Aux.
 */
export type ReduceKind =
  | 'sum' | 'prod' | 'mean' | 'max' | 'min' | 'all' | 'any' | 'argmax' | 'argmin'
  | 'varMean' | 'varDev' | 'lseMax' | 'lseSum';

export interface ReduceSpec {
  readonly kind: ReduceKind;
  readonly input: DType;
  /** Output dtype (float64 for first phases). */
  readonly output: DType;
  /** var's ddof (varDev only). */
  readonly ddof?: number;
}

export interface ReduceKernels {
  readonly name: string;
  /** Bytes of one accumulator (the partials' element size). */
  readonly accBytes: number;
  /** (x, aux, out, rows, n, count, splits, G, final): [first pass over the input, pass over partials]. */
  readonly rows: readonly [string, string];
  /** (x, aux, out, outer, n, inner, count, splits, final): likewise. */
  readonly cols: readonly [string, string];
  readonly usesAux: boolean;
}

interface Functor { acc: string; accBytes: number; aux: string; init: string; map: string; comb: string; fin: string; pre?: string }

function extremeInit(d: DType, max: boolean): string {
  if (isFloat(d)) return max ? `-(${ctype(d)})SK_INF_D` : `(${ctype(d)})SK_INF_D`;
  if (d === 'int32') return max ? '(int)0x80000000' : '(int)0x7fffffff';
  return max ? '(unsigned char)0' : '(unsigned char)255';
}

function functor(spec: ReduceSpec, argName: string): Functor {
  const TI = ctype(spec.input);
  const st = storeFn(spec.output);
  const sum = { acc: 'double', accBytes: 8, aux: 'double', init: '0.0', map: '(double)x', comb: 'a + b' };
  switch (spec.kind) {
    case 'sum': return { ...sum, fin: `${st}(a)` };
    case 'mean': return { ...sum, fin: `${st}(a / (double)count)` };
    case 'varMean': return { ...sum, fin: 'a / (double)count' };
    case 'prod': return { ...sum, init: '1.0', comb: 'a * b', fin: `${st}(a)` };
    case 'varDev':
      return { ...sum, map: '((double)x - aux) * ((double)x - aux)', fin: `${st}(a / fmax((double)count - ${literal(spec.ddof ?? 0, 'float64')}, 0.0))` };
    case 'lseMax': return { ...sum, init: '-SK_INF_D', comb: 'sk_max<double>(a, b)', fin: 'a' };
    case 'lseSum':
      return {
        ...sum,
        map: 'sk_finite(aux) ? exp((double)x - aux) : ((double)x == aux ? 1.0 : 0.0)',
        fin: `sk_finite(aux) ? ${st}(aux + log(a)) : ${st}(aux)`,
      };
    case 'max':
    case 'min': {
      const f = spec.kind === 'max' ? 'sk_max' : 'sk_min';
      return {
        acc: TI, accBytes: bytesPerElement(spec.input), aux: 'double', init: extremeInit(spec.input, spec.kind === 'max'),
        map: 'x', comb: `${f}<${TI}>(a, b)`, fin: `${st}(a)`,
      };
    }
    case 'all': return { acc: 'int', accBytes: 4, aux: 'double', init: '1', map: '(x != 0) ? 1 : 0', comb: 'a & b', fin: `${st}(a)` };
    case 'any': return { acc: 'int', accBytes: 4, aux: 'double', init: '0', map: '(x != 0) ? 1 : 0', comb: 'a | b', fin: `${st}(a)` };
    case 'argmax':
    case 'argmin': {
      const better = spec.kind === 'argmax' ? '>' : '<';
      const acc = `${argName}_acc`;
      const pre = `struct ${acc} { ${TI} v; i64 i; };`;
      const comb = `if (a.i < 0) return b; if (b.i < 0) return a;
    const bool an = a.v != a.v, bn = b.v != b.v;
    if (an || bn) return (an && bn) ? (a.i < b.i ? a : b) : (an ? a : b);
    return (b.v ${better} a.v || (b.v == a.v && b.i < a.i)) ? b : a`;
      return { acc, accBytes: 16, aux: 'double', init: `${acc}{(${TI})0, -1}`, map: `${acc}{x, j}`, comb, fin: `${st}(a.i)`, pre };
    }
    default:
      return spec.kind satisfies never;
  }
}

/** The kernel-name suffix of a ddof: its digits when a small integer, else a hash (the name must stay an identifier). */
function ddofTag(ddof: number): string {
  if (typeof ddof !== 'number' || !Number.isFinite(ddof)) throw new TypeError(`cuda codegen: var's ddof must be a finite number, got ${previewValue(ddof)}`);
  if (ddof === 0) return '';
  return Number.isSafeInteger(ddof) && ddof > 0 ? `_d${ddof}` : `_d${shortHash(String(ddof))}`;
}

/** Adds a reduction's functor and entry points to the module. */
export function reduceKernels(mb: ModuleBuilder, spec: ReduceSpec): ReduceKernels {
  const name = `rd_${spec.kind}_${dtag(spec.input)}_${dtag(spec.output)}${ddofTag(spec.ddof ?? 0)}`;
  const f = functor(spec, name);
  const TI = ctype(spec.input);
  const TO = ctype(spec.output);
  const result: ReduceKernels = {
    name, accBytes: f.accBytes, usesAux: spec.kind === 'varDev' || spec.kind === 'lseSum',
    rows: [`${name}_r1`, `${name}_r0`], cols: [`${name}_c1`, `${name}_c0`],
  };
  if (mb.has(name)) return result;
  const R = `${name}_R`;
  const body = (e: string) => (e.includes('return') ? e : `return ${e}`);
  const src: string[] = [];
  if (f.pre) src.push(f.pre);
  src.push(`struct ${R} {
  typedef ${f.acc} Acc; typedef ${f.aux} Aux; typedef ${TO} Out;
  static DEVM Acc init() { return ${f.init}; }
  static DEVM Acc map(${TI} x, i64 j, Aux aux) { (void)j; (void)aux; return ${f.map}; }
  static DEVM Acc comb(Acc a, Acc b) { ${body(f.comb)}; }
  static DEVM Out fin(Acc a, i64 count, Aux aux) { (void)count; (void)aux; return ${f.fin}; }
};`);
  for (const first of [true, false]) {
    const xt = first ? TI : `${R}::Acc`;
    const v = first ? '1' : '0';
    src.push(`extern "C" __global__ void __launch_bounds__(256) ${name}_r${v}(` +
      `const ${xt}* x, const double* aux, void* out, i64 rows, i64 n, i64 count, i64 splits, int G, int final) ` +
      `{ sk_rows<${R}, ${first}>(x, aux, out, rows, n, count, splits, G, final); }`);
    src.push(`extern "C" __global__ void __launch_bounds__(256) ${name}_c${v}(` +
      `const ${xt}* x, const double* aux, void* out, i64 outer, i64 n, i64 inner, i64 count, i64 splits, int final) ` +
      `{ sk_cols<${R}, ${first}>(x, aux, out, outer, n, inner, count, splits, final); }`);
  }
  mb.define(name, src.join('\n'), [...result.rows, ...result.cols], ['reduce']);
  return result;
}
