// NumPy-style printing of arrays (numpy.array2string and repr, non-legacy mode), so that values
// read the same here as in NumPy:
//   array([[0.1, 0.2],
//          [nan, inf]], dtype=float32)
// - More than `threshold` (1000) elements: each axis longer than 2 * `edgeItems` (3) shows its
//   first and last 3 entries around `...`; widths are computed from the shown entries only.
// - Floats: the shortest digits that round-trip in the array's own dtype (float32 through
//   Math.fround), at most 8 digits after the point, one format for the whole array with the
//   decimal points aligned; scientific notation when a non-zero magnitude is < 1e-4 or >= 1e8
//   (1e6 for float32), or the largest is more than 1000 times the smallest. `nan`, `inf` and `-inf` as in NumPy.
// - Integers right-aligned; bool as `true`/`false` (NumPy's True/False, in JS spelling).
// - Lines wrap at 75 characters. The shape is shown when the text does not tell it (summarised or
//   empty), as NumPy 2.2+ does. Unlike NumPy, the dtype is always shown: JS has no default dtype
//   a reader could assume (floatX here is float32, NumPy's default is float64).
import type { DType, TypedArray } from './dtype.js';
import { stridesOf } from './shape-math.js';

export interface FormatOptions {
  /** Summarise arrays with more elements than this (NumPy's threshold). */
  readonly threshold?: number;
  /** Entries shown at each end of a summarised axis (NumPy's edgeitems). */
  readonly edgeItems?: number;
  /** Wrap lines longer than this (NumPy's linewidth). */
  readonly lineWidth?: number;
}

/** What is printed: a dtype, a shape and row-major data (an NDArray, without importing it). */
export interface Printable {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TypedArray;
}

const FLOAT_PRECISION = 8;

/**
 * NumPy's repr: `array([...], dtype=...)`, with `shape=` too when the shape cannot be read from the
 * text (an empty array that is not 1-d, or a summarised one), as NumPy 2.2 and later print it.
 */
export function arrayRepr(a: Printable, options: FormatOptions = {}): string {
  const lineWidth = options.lineWidth ?? 75;
  const threshold = options.threshold ?? 1000;
  const prefix = 'array(';
  const size = a.data.length;
  const text = `${prefix}${arrayToString(a, { ...options, lineWidth: lineWidth - 1 }, prefix)},`;
  const shapeShown = (size === 0 && a.shape.length !== 1) || size > threshold;
  const shapeText = `(${a.shape.join(', ')}${a.shape.length === 1 ? ',' : ''})`;
  const extras = `${shapeShown ? `shape=${shapeText}, ` : ''}dtype=${a.dtype})`;
  const lastLine = text.length - (text.lastIndexOf('\n') + 1);
  const spacer = lastLine + extras.length + 1 > lineWidth ? `\n${' '.repeat(prefix.length)}` : ' ';
  return text + spacer + extras;
}

/**
 * NumPy's array2string with ', ' as separator: the nested brackets alone. `prefix` is the text the
 * caller puts before the first line, so that continuation lines are indented under the first bracket.
 */
export function arrayToString(a: Printable, options: FormatOptions = {}, prefix = ''): string {
  const threshold = options.threshold ?? 1000;
  const edgeItems = options.edgeItems ?? 3;
  const lineWidth = options.lineWidth ?? 75;
  if (a.data.length === 0) return '[]';
  const summarise = a.data.length > threshold;
  const shownEdge = summarise ? edgeItems : Infinity;
  const strides = stridesOf(a.shape);
  const format = formatterFor(a.dtype, a.shape.length, shownValues(a, strides, shownEdge));
  const separator = ', ';
  const recurse = (offset: number, axis: number, hangingIndent: string, width: number): string => {
    if (axis === a.shape.length) return format(a.data[offset]!);
    const nextIndent = `${hangingIndent} `;
    const nextWidth = width - 1;
    const length = a.shape[axis]!;
    const stride = strides[axis]!;
    const showSummary = summarise && 2 * edgeItems < length;
    const indices = showSummary ? [...range(0, edgeItems), -1, ...range(length - edgeItems, length)] : range(0, length);
    let s = '';
    if (axis === a.shape.length - 1) {
      // Each word leaves room for what follows it: the separator's ',' or the closing ']'.
      const room = width - 1;
      let line = hangingIndent;
      indices.forEach((i, k) => {
        const word = i < 0 ? '...' : recurse(offset + i * stride, axis + 1, nextIndent, nextWidth);
        const isLast = k === indices.length - 1;
        // A word longer than the line goes on a line of its own rather than after an empty one.
        if (line.length + word.length > room && line.length > hangingIndent.length) {
          s += `${line.trimEnd()}\n`;
          line = hangingIndent;
        }
        line += word;
        if (!isLast) line += separator;
      });
      s += line;
    } else {
      const lineSeparator = separator.trimEnd() + '\n'.repeat(a.shape.length - axis - 1);
      indices.forEach((i, k) => {
        const nested = i < 0 ? '...' : recurse(offset + i * stride, axis + 1, nextIndent, nextWidth);
        s += hangingIndent + nested + (k === indices.length - 1 ? '' : lineSeparator);
      });
    }
    return `[${s.slice(hangingIndent.length)}]`;
  };
  return recurse(0, 0, ' '.repeat(prefix.length + 1), lineWidth);
}

function longest(texts: readonly string[]): number {
  let n = 0;
  for (const t of texts) n = Math.max(n, t.length);
  return n;
}

function range(start: number, stop: number): number[] {
  const out: number[] = [];
  for (let i = start; i < stop; i++) out.push(i);
  return out;
}

/** The values that will be printed (the edges of each axis when summarising). */
function shownValues(a: Printable, strides: readonly number[], edge: number): number[] {
  const out: number[] = [];
  const walk = (offset: number, axis: number): void => {
    if (axis === a.shape.length) { out.push(a.data[offset]!); return; }
    const n = a.shape[axis]!;
    const cut = 2 * edge < n;
    for (let i = 0; i < n; i++) {
      if (cut && i === edge) i = n - edge;
      walk(offset + i * strides[axis]!, axis + 1);
    }
  };
  walk(0, 0);
  return out;
}

type ElementFormat = (x: number) => string;

function formatterFor(dtype: DType, ndim: number, values: readonly number[]): ElementFormat {
  switch (dtype) {
    case 'bool': {
      // NumPy pads True so that a column of True and False lines up, except for a 0-d array.
      const trueText = ndim > 0 ? ' true' : 'true';
      return (x) => (x !== 0 ? trueText : 'false');
    }
    case 'uint8':
    case 'int32': {
      let width = 0;
      for (const v of values) width = Math.max(width, String(v).length);
      return (x) => String(x).padStart(width);
    }
    case 'float32':
    case 'float64':
      return floatFormatter(dtype, values);
    default:
      return dtype satisfies never;
  }
}

/** A finite float's digits: value = sign digits[0].digits[1..] x 10^exponent (no trailing zeros). */
interface Decimal { readonly negative: boolean; readonly digits: string; readonly exponent: number }

const ZERO_DIGITS = { digits: '0', exponent: 0 };

function parseExponential(text: string): { digits: string; exponent: number } {
  const [mantissa, exp] = text.replace(/^-/, '').split('e') as [string, string];
  return { digits: mantissa.replace('.', '').replace(/0+$/, '') || '0', exponent: Number(exp) };
}

/** The exact decimal value of a finite double (every double is a finite decimal fraction). */
function exact(x: number): Decimal {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const negative = bits >> 63n === 1n;
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & 0xfffffffffffffn;
  const mantissa = biased === 0 ? fraction : fraction | (1n << 52n);
  if (mantissa === 0n) return { negative, ...ZERO_DIGITS };
  const power = (biased === 0 ? 1 : biased) - 1075;
  // mantissa * 2^power = mantissa * 5^-power / 10^-power for negative powers.
  const [whole, scale] = power >= 0 ? [mantissa << BigInt(power), 0] : [mantissa * 5n ** BigInt(-power), power];
  const text = whole.toString();
  return { negative, digits: text.replace(/0+$/, ''), exponent: text.length - 1 + scale };
}

/** `d` rounded to `n` significant digits, ties to even (NumPy's Dragon4 rounds without bias). */
function roundDigits(d: Decimal, n: number): Decimal {
  if (d.digits.length <= n) return d;
  if (n < 0) return { negative: d.negative, ...ZERO_DIGITS };
  const head = d.digits.slice(0, n);
  const rest = d.digits.slice(n);
  // `rest` has no trailing zeros, so a lone '5' is an exact tie.
  const lastOdd = n > 0 && Number(head[n - 1]) % 2 === 1;
  const up = rest[0]! > '5' || (rest[0] === '5' && (rest.length > 1 || lastOdd));
  if (!up) {
    const kept = head.replace(/0+$/, '');
    return kept === '' ? { negative: d.negative, ...ZERO_DIGITS } : { negative: d.negative, digits: kept, exponent: d.exponent };
  }
  const bumped = (BigInt(head === '' ? '0' : head) + 1n).toString();
  const carried = bumped.length > head.length;
  return { negative: d.negative, digits: bumped.replace(/0+$/, ''), exponent: d.exponent + (carried ? 1 : 0) };
}

function valueOf(d: Decimal): number {
  return Number(`${d.negative ? '-' : ''}${d.digits[0]}.${d.digits.slice(1)}e${d.exponent}`);
}

/** The shortest digits that read back as `x` in `dtype` (for float32: through Math.fround). */
function shortest(x: number, dtype: 'float32' | 'float64'): Decimal {
  const full = exact(x);
  // JS prints a double with its shortest round-trip digits (ties to even), as NumPy does.
  if (dtype === 'float64' || x === 0) return x === 0 ? full : { ...parseExponential(x.toExponential()), negative: full.negative };
  for (let n = 1; n < 9; n++) {
    const candidate = roundDigits(full, n);
    if (Math.fround(valueOf(candidate)) === x) return candidate;
  }
  return roundDigits(full, 9); // 9 significant digits always round-trip a float32
}

/** Positional parts (`-12` and `5`, or `3` and ``) of a finite float with at most `precision` fractional digits. */
function positional(x: number, dtype: 'float32' | 'float64', precision: number): { int: string; frac: string } {
  let d = shortest(x, dtype);
  if (d.digits.length - 1 - d.exponent > precision) d = roundDigits(exact(x), d.exponent + 1 + precision);
  let int: string;
  let frac: string;
  if (d.exponent >= 0) {
    int = d.digits.slice(0, d.exponent + 1).padEnd(d.exponent + 1, '0');
    frac = d.digits.slice(d.exponent + 1);
  } else {
    int = '0';
    frac = d.digits === '0' ? '' : `${'0'.repeat(-d.exponent - 1)}${d.digits}`;
  }
  return { int: (d.negative ? '-' : '') + int, frac };
}

/** Scientific parts of a finite float: at most `precision` mantissa fraction digits, and at least `minDigits`. */
function scientific(x: number, dtype: 'float32' | 'float64', precision: number, minDigits = 0): { int: string; frac: string; exp: number } {
  let d = shortest(x, dtype);
  if (d.digits.length - 1 > precision) d = roundDigits(exact(x), precision + 1);
  // Like NumPy's Dragon4, digits beyond the shortest ones are the exact value's digits.
  if (d.digits.length - 1 < minDigits) d = roundDigits(exact(x), minDigits + 1);
  const frac = d.digits.slice(1).padEnd(minDigits, '0');
  return { int: (d.negative ? '-' : '') + d.digits[0]!, frac, exp: d.exponent };
}

function floatFormatter(dtype: 'float32' | 'float64', values: readonly number[]): ElementFormat {
  const finite = values.filter((v) => Number.isFinite(v));
  let max = 0;
  let min = Infinity;
  for (const v of finite) if (v !== 0) { max = Math.max(max, Math.abs(v)); min = Math.min(min, Math.abs(v)); }
  // NumPy 2.3+ switches at 10^(decimal digits the dtype keeps), at most 1e8: 1e6 for float32.
  const largeCutoff = dtype === 'float32' ? 1e6 : 1e8;
  const exponential = max > 0 && (max >= largeCutoff || min < 1e-4 || max / min > 1000);
  let padLeft = 0;
  let padRight = 0;
  let body: (x: number) => string;
  if (finite.length === 0) {
    body = () => '';
  } else if (exponential) {
    const first = finite.map((v) => scientific(v, dtype, FLOAT_PRECISION));
    const precision = longest(first.map((p) => p.frac));
    const expSize = Math.max(2, longest(first.map((p) => String(Math.abs(p.exp)))));
    padLeft = longest(first.map((p) => p.int));
    padRight = expSize + 2 + precision;
    body = (x) => {
      const p = scientific(x, dtype, precision, precision);
      return `${p.int.padStart(padLeft)}.${p.frac}e${p.exp < 0 ? '-' : '+'}${String(Math.abs(p.exp)).padStart(expSize, '0')}`;
    };
  } else {
    const parts = finite.map((v) => positional(v, dtype, FLOAT_PRECISION));
    padLeft = longest(parts.map((p) => p.int));
    padRight = longest(parts.map((p) => p.frac));
    body = (x) => {
      const p = positional(x, dtype, FLOAT_PRECISION);
      return `${p.int.padStart(padLeft)}.${p.frac.padEnd(padRight)}`;
    };
  }
  if (finite.length !== values.length) {
    // Widen so that nan, inf and -inf fit in the common width.
    const infWidth = values.some((v) => v === -Infinity) ? 4 : 3;
    padLeft = Math.max(padLeft, 3 - (padRight + 1), infWidth - (padRight + 1));
  }
  const width = padLeft + padRight + 1;
  return (x) => {
    if (Number.isNaN(x)) return 'nan'.padStart(width);
    if (!Number.isFinite(x)) return (x < 0 ? '-inf' : 'inf').padStart(width);
    return body(x);
  };
}
