// A tiny WebAssembly binary encoder: just what the GEMM and elementwise kernels need (i32
// arithmetic, structured control flow, loads/stores, and the v128 SIMD subset), no dependency.
// Function bodies are written with `Code`, a byte builder with one method per opcode (`simdOp`
// for the SIMD opcodes without a method); `encodeModule` assembles a module with one memory
// (its own, exported, or one imported from the host) and exported functions.

export type ValType = 'i32' | 'f32' | 'f64' | 'v128';

const VALTYPE: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, f64: 0x7c, v128: 0x7b };

export function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

export function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function encodeString(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

function vector(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, payload: number[]): number[] {
  return [id, ...uleb(payload.length), ...payload];
}

/** A function body under construction: each method appends one instruction. */
export class Code {
  readonly bytes: number[] = [];
  private op(...b: number[]): this {
    for (const x of b) this.bytes.push(x);
    return this;
  }
  private simd(opcode: number, ...imm: number[]): this {
    return this.op(0xfd, ...uleb(opcode), ...imm);
  }
  /** Any SIMD instruction by its opcode (after the 0xfd prefix) and immediate bytes. */
  simdOp(opcode: number, ...imm: number[]): this {
    return this.simd(opcode, ...imm);
  }
  private memarg(alignLog2: number, offset: number): number[] {
    return [...uleb(alignLog2), ...uleb(offset)];
  }
  // control
  block(): this { return this.op(0x02, 0x40); }
  loop(): this { return this.op(0x03, 0x40); }
  if(): this { return this.op(0x04, 0x40); }
  else(): this { return this.op(0x05); }
  end(): this { return this.op(0x0b); }
  br(depth: number): this { return this.op(0x0c, ...uleb(depth)); }
  brIf(depth: number): this { return this.op(0x0d, ...uleb(depth)); }
  // locals
  get(local: number): this { return this.op(0x20, ...uleb(local)); }
  set(local: number): this { return this.op(0x21, ...uleb(local)); }
  tee(local: number): this { return this.op(0x22, ...uleb(local)); }
  // i32
  i32(value: number): this { return this.op(0x41, ...sleb(value)); }
  add(): this { return this.op(0x6a); }
  sub(): this { return this.op(0x6b); }
  mul(): this { return this.op(0x6c); }
  eqz(): this { return this.op(0x45); }
  ne(): this { return this.op(0x47); }
  ltU(): this { return this.op(0x49); }
  // memory (offsets are byte immediates added to the address on the stack)
  i32Load(offset = 0): this { return this.op(0x28, ...this.memarg(2, offset)); }
  i32Store(offset = 0): this { return this.op(0x36, ...this.memarg(2, offset)); }
  f32Load(offset = 0): this { return this.op(0x2a, ...this.memarg(2, offset)); }
  f32Store(offset = 0): this { return this.op(0x38, ...this.memarg(2, offset)); }
  f64Load(offset = 0): this { return this.op(0x2b, ...this.memarg(3, offset)); }
  f64Store(offset = 0): this { return this.op(0x39, ...this.memarg(3, offset)); }
  f32Mul(): this { return this.op(0x94); }
  f64Mul(): this { return this.op(0xa2); }
  f32Const(value: number): this { return this.op(0x43, ...new Uint8Array(new Float32Array([value]).buffer)); }
  f64Const(value: number): this { return this.op(0x44, ...new Uint8Array(new Float64Array([value]).buffer)); }
  v128Load(offset = 0): this { return this.simd(0x00, ...this.memarg(4, offset)); }
  v128Load32Splat(offset = 0): this { return this.simd(0x09, ...this.memarg(2, offset)); }
  v128Load64Splat(offset = 0): this { return this.simd(0x0a, ...this.memarg(3, offset)); }
  v128Store(offset = 0): this { return this.simd(0x0b, ...this.memarg(4, offset)); }
  v128Zero(): this { return this.simd(0x0c, ...new Array<number>(16).fill(0)); }
  v128Const(bytes: Uint8Array): this { return this.simd(0x0c, ...bytes); }
  // lanes
  f32x4Add(): this { return this.simd(0xe4); }
  f32x4Mul(): this { return this.simd(0xe6); }
  f64x2Add(): this { return this.simd(0xf0); }
  f64x2Mul(): this { return this.simd(0xf2); }
}

export interface FunctionDef {
  name: string;
  params: ValType[];
  results: ValType[];
  /** Extra locals after the parameters, in order. */
  locals: ValType[];
  body: Code;
}

/** Where a module's memory comes from: `env.memory` of the imports, or its own (exported as `memory`). */
export interface MemoryImport {
  readonly importFrom: 'env.memory';
  readonly minPages: number;
}

/** Assembles a module exporting `memory` (initial pages, growable) and every function. */
export function encodeModule(functions: FunctionDef[], initialPages: number | MemoryImport = 1): Uint8Array {
  const imported = typeof initialPages === 'object';
  const types = functions.map((f) => [
    0x60,
    ...vector(f.params.map((t) => [VALTYPE[t]])),
    ...vector(f.results.map((t) => [VALTYPE[t]])),
  ]);
  const funcIndices = functions.map((_, i) => uleb(i));
  const limits = [0x00, ...uleb(imported ? initialPages.minPages : initialPages)];
  const exports = vector([
    ...(imported ? [] : [[...encodeString('memory'), 0x02, 0x00]]),
    ...functions.map((f, i) => [...encodeString(f.name), 0x00, ...uleb(i)]),
  ]);
  const bodies = functions.map((f) => {
    const groups: number[][] = [];
    for (const t of f.locals) {
      const last = groups[groups.length - 1];
      if (last !== undefined && last[1] === VALTYPE[t]) last[0] = (last[0] ?? 0) + 1;
      else groups.push([1, VALTYPE[t]]);
    }
    const localBytes = vector(groups.map(([count, type]) => [...uleb(count ?? 0), type ?? 0]));
    const body = [...localBytes, ...f.body.bytes, 0x0b];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vector(types)),
    ...(imported ? section(2, vector([[...encodeString('env'), ...encodeString('memory'), 0x02, ...limits]])) : []),
    ...section(3, vector(funcIndices)),
    ...(imported ? [] : section(5, vector([limits]))),
    ...section(7, exports),
    ...section(10, vector(bodies)),
  ]);
}
