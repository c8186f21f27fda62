// The shared step's reduce-scatter and fused optimizer rules in WebAssembly SIMD, running on the
// shared WebAssembly.Memory that holds the gradient arena, the parameters and the optimizer state
// (no copy: every Float32Array/Float64Array view of that memory stays the same storage).
//
// Each rule is written once below as a small expression list (the same operations, in the same
// order, as its JavaScript kernel in fused-rules.ts) and compiled for one of three lane layouts:
//   - float32 storage, float32 arithmetic (f32x4, 4 lanes): the fast default. Every operation
//     rounds to float32, where the JavaScript kernel computes in float64 and rounds once, so a
//     stored value may differ from it by a few float32 ulps per step (tests bound it).
//   - float32 storage, float64 arithmetic (f64x2 after promotion): bit for bit the JavaScript kernel.
//   - float64 storage, float64 arithmetic (f64x2): bit for bit the JavaScript kernel.
// The reduce (sum of the ranks' slots into slot 0) rounds every add to the storage type, as the
// JavaScript loop does, so it is exact in every layout. Hyper-parameter expressions (bias
// corrections, 1 - beta) are computed in JavaScript in float64, as the JavaScript kernels do.
import { Code, uleb, type ValType } from '../devices/cpu/wasm-emit.js';

/** The slice of a shared WebAssembly.Memory used here (the project's lib does not declare WebAssembly). */
export interface SharedWasmMemory {
  /** A SharedArrayBuffer over the whole memory (a new object after grow; old views stay valid). */
  readonly buffer: SharedArrayBuffer;
  grow(deltaPages: number): number;
}

interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum: number; shared: true }) => SharedWasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { readonly exports: Record<string, unknown> };
  validate(bytes: Uint8Array): boolean;
}

const api = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/** Bytes per WebAssembly page. */
export const WASM_PAGE_BYTES = 65536;
/** The most pages a 32-bit memory can have (4 GiB): larger plans keep the JavaScript kernels. */
export const WASM_MAX_PAGES = 65536;

/** Storage dtype and arithmetic precision of a compiled kernel. */
export type SimdLayout = 'f32' | 'f32-exact' | 'f64';

type Input = 'g' | 'p' | 's0' | 's1';
type Expr = Input | { k: number } | { v: string } | readonly [BinOp, Expr, Expr] | readonly [UnOp, Expr];
type BinOp = 'add' | 'sub' | 'mul' | 'div' | 'max';
type UnOp = 'sqrt' | 'abs';

/** One rule as vector code: constants per step, named intermediates, then the stores. */
interface SimdRule {
  /** The vector constants of a step from the hyper-parameters (rule order), the step count and the gradient scale. */
  consts(h: readonly number[], t: number, scale: number): number[];
  readonly lets: readonly (readonly [string, Expr])[];
  readonly stores: readonly (readonly [Exclude<Input, 'g'>, Expr])[];
}

const k = (i: number): Expr => ({ k: i });
const v = (name: string): Expr => ({ v: name });
const add = (a: Expr, b: Expr): Expr => ['add', a, b];
const sub = (a: Expr, b: Expr): Expr => ['sub', a, b];
const mul = (a: Expr, b: Expr): Expr => ['mul', a, b];
const div = (a: Expr, b: Expr): Expr => ['div', a, b];
const gi = ['gi', mul('g', k(0))] as const; // the mean gradient: every rule's constant 0 is the scale

// Each rule mirrors its JavaScript kernel in fused-rules.ts operation for operation.
const SIMD_RULES: Readonly<Record<string, SimdRule>> = {
  sgd: { consts: ([lr], _t, s) => [s, lr!], lets: [gi], stores: [['p', sub('p', mul(k(1), v('gi')))]] },
  momentum: {
    consts: ([lr, mu], _t, s) => [s, lr!, mu!],
    lets: [gi, ['x', add(mul(k(2), 's0'), sub('p', mul(k(1), v('gi'))))]],
    stores: [['s0', sub(v('x'), 'p')], ['p', v('x')]],
  },
  nesterovMomentum: {
    consts: ([lr, mu], _t, s) => [s, lr!, mu!],
    lets: [gi, ['step', sub('p', mul(k(1), v('gi')))], ['x', sub(add(mul(k(2), 's0'), v('step')), 'p')]],
    stores: [['s0', v('x')], ['p', add(mul(k(2), v('x')), v('step'))]],
  },
  adagrad: {
    consts: ([lr, eps], _t, s) => [s, lr!, eps!],
    lets: [gi, ['a', add('s0', mul(v('gi'), v('gi')))]],
    stores: [['s0', v('a')], ['p', sub('p', div(mul(k(1), v('gi')), ['sqrt', add(v('a'), k(2))]))]],
  },
  rmsprop: {
    consts: ([lr, rho, eps], _t, s) => [s, lr!, rho!, 1 - rho!, eps!],
    lets: [gi, ['a', add(mul(k(2), 's0'), mul(mul(k(3), v('gi')), v('gi')))]],
    stores: [['s0', v('a')], ['p', sub('p', div(mul(k(1), v('gi')), ['sqrt', add(v('a'), k(4))]))]],
  },
  adadelta: {
    consts: ([lr, rho, eps], _t, s) => [s, lr!, rho!, 1 - rho!, eps!],
    lets: [gi, ['a', add(mul(k(2), 's0'), mul(mul(k(3), v('gi')), v('gi')))],
      ['u', div(mul(v('gi'), ['sqrt', add('s1', k(4))]), ['sqrt', add(v('a'), k(4))])]],
    stores: [['s0', v('a')], ['p', sub('p', mul(k(1), v('u')))], ['s1', add(mul(k(2), 's1'), mul(mul(k(3), v('u')), v('u')))]],
  },
  adam: {
    consts: ([lr, b1, b2, eps], t, s) => [s, (lr! * Math.sqrt(1 - b2! ** t)) / (1 - b1! ** t), b1!, 1 - b1!, b2!, 1 - b2!, eps!],
    lets: [gi, ['m', add(mul(k(2), 's0'), mul(k(3), v('gi')))], ['v', add(mul(k(4), 's1'), mul(mul(k(5), v('gi')), v('gi')))]],
    stores: [['s0', v('m')], ['s1', v('v')], ['p', sub('p', div(mul(k(1), v('m')), add(['sqrt', v('v')], k(6))))]],
  },
  adamax: {
    consts: ([lr, b1, b2, eps], t, s) => [s, lr! / (1 - b1! ** t), b1!, 1 - b1!, b2!, eps!],
    lets: [gi, ['m', add(mul(k(2), 's0'), mul(k(3), v('gi')))], ['u', ['max', mul(k(4), 's1'), ['abs', v('gi')]]]],
    stores: [['s0', v('m')], ['s1', v('u')], ['p', sub('p', div(mul(k(1), v('m')), add(v('u'), k(5))))]],
  },
  adamw: {
    consts: ([lr, b1, b2, eps, wd], t, s) => [s, lr! / (1 - b1! ** t), Math.sqrt(1 - b2! ** t), 1 - lr! * wd!, b1!, 1 - b1!, b2!, 1 - b2!, eps!],
    lets: [gi, ['m', add(mul(k(4), 's0'), mul(k(5), v('gi')))], ['v', add(mul(k(6), 's1'), mul(mul(k(7), v('gi')), v('gi')))]],
    stores: [['s0', v('m')], ['s1', v('v')],
      ['p', sub(mul('p', k(3)), div(mul(k(1), v('m')), add(div(['sqrt', v('v')], k(2)), k(8))))]],
  },
};

/** Rules with a SIMD kernel (all nine fused rules). */
export const SIMD_RULE_NAMES: readonly string[] = Object.keys(SIMD_RULES);

const MAX_CONSTS = 9;
const INPUTS: readonly Input[] = ['g', 'p', 's0', 's1'];
// update(p, g, s0, s1, nBytes, c0..c8): byte addresses of element lo of each array, then the constants.
const U = { n: 4, c0: 5, i: 5 + MAX_CONSTS, end: 6 + MAX_CONSTS, vc0: 7 + MAX_CONSTS } as const;

// SIMD opcodes (after the 0xfd prefix) that Code has no method for.
const OP = {
  load32Zero: 0x5c, load64Zero: 0x5d, store32Lane: 0x5a, store64Lane: 0x5b, f32x4Splat: 0x13, f64x2Splat: 0x14,
  demote: 0x5e, promote: 0x5f,
} as const;
const LANE_OPS: Record<'f32' | 'f64', Record<BinOp | UnOp, number>> = {
  f32: { abs: 0xe0, sqrt: 0xe3, add: 0xe4, sub: 0xe5, mul: 0xe6, div: 0xe7, max: 0xe9 },
  f64: { abs: 0xec, sqrt: 0xef, add: 0xf0, sub: 0xf1, mul: 0xf2, div: 0xf3, max: 0xf5 },
};

function raw(code: Code, ...bytes: number[]): Code {
  for (const b of bytes) code.bytes.push(b);
  return code;
}

/** Loads `count` storage elements at the address on the stack as a vector of the arithmetic type. */
function emitLoad(code: Code, layout: SimdLayout, count: number): void {
  if (layout === 'f32') code.simdOp(count === 4 ? 0x00 : OP.load32Zero, ...(count === 4 ? [4, 0] : [2, 0]));
  else if (layout === 'f64') code.simdOp(count === 2 ? 0x00 : OP.load64Zero, ...(count === 2 ? [4, 0] : [3, 0]));
  else {
    code.simdOp(count === 2 ? OP.load64Zero : OP.load32Zero, count === 2 ? 3 : 2, 0);
    code.simdOp(OP.promote);
  }
}

/** Stores the vector on the stack as `count` storage elements at the address below it. */
function emitStore(code: Code, layout: SimdLayout, count: number): void {
  if (layout === 'f32-exact') code.simdOp(OP.demote);
  const bytes = layout === 'f64' ? 8 : 4;
  if (count * bytes === 16) code.v128Store();
  else if (count * bytes === 8) code.simdOp(OP.store64Lane, 3, 0, 0);
  else code.simdOp(OP.store32Lane, 2, 0, 0);
}

function inputsOf(e: Expr, into: Set<Input>): void {
  if (typeof e === 'string') into.add(e);
  else if (Array.isArray(e)) (e as readonly unknown[]).slice(1).forEach((x) => inputsOf(x as Expr, into));
}

/** The update function of one rule: a vector loop, then an element loop for the tail. */
function emitUpdate(rule: SimdRule, layout: SimdLayout): Code {
  const code = new Code();
  const lanes: 'f32' | 'f64' = layout === 'f32' ? 'f32' : 'f64';
  const used = new Set<Input>();
  rule.lets.forEach(([, e]) => inputsOf(e, used));
  rule.stores.forEach(([, e]) => inputsOf(e, used));
  const inputLocal = (x: Input) => U.vc0 + MAX_CONSTS + INPUTS.indexOf(x);
  const letLocal = new Map(rule.lets.map(([name], j) => [name, U.vc0 + MAX_CONSTS + INPUTS.length + j]));
  const compile = (e: Expr): void => {
    if (typeof e === 'string') code.get(inputLocal(e));
    else if ('k' in e) code.get(U.vc0 + e.k);
    else if ('v' in e) code.get(letLocal.get(e.v)!);
    else {
      for (const x of e.slice(1) as Expr[]) compile(x);
      code.simdOp(LANE_OPS[lanes][e[0]]);
    }
  };
  for (let j = 0; j < MAX_CONSTS; j++) {
    code.get(U.c0 + j);
    if (lanes === 'f32') raw(code, 0xb6).simdOp(OP.f32x4Splat); // f32.demote_f64, then splat
    else code.simdOp(OP.f64x2Splat);
    code.set(U.vc0 + j);
  }
  const bytes = layout === 'f64' ? 8 : 4;
  const wide = layout === 'f32' ? 4 : 2;
  code.get(U.n).i32(-(wide * bytes)); raw(code, 0x71).set(U.end); // i32.and: the vector part of nBytes
  const loop = (count: number, endLocal: number) => {
    code.block().loop();
    code.get(U.i).get(endLocal).ltU().eqz().brIf(1);
    for (const x of INPUTS) {
      if (!used.has(x)) continue;
      code.get(INPUTS.indexOf(x)).get(U.i).add();
      emitLoad(code, layout, count);
      code.set(inputLocal(x));
    }
    for (const [name, e] of rule.lets) { compile(e); code.set(letLocal.get(name)!); }
    for (const [x, e] of rule.stores) {
      code.get(INPUTS.indexOf(x)).get(U.i).add();
      compile(e);
      emitStore(code, layout, count);
    }
    code.get(U.i).i32(count * bytes).add().set(U.i);
    code.br(0).end().end();
  };
  loop(wide, U.end);
  loop(1, U.n);
  return code;
}

/** reduce(at, end, stride, size): slot 0 bytes [at, end) += the same bytes of slots 1..size-1 (stride bytes apart). */
function emitReduce(layout: SimdLayout): Code {
  // params 0 at, 1 end, 2 stride, 3 size; locals 4 q, 5 r, 6 mainEnd (i32), 7..10 acc (v128)
  const code = new Code();
  const lanes: 'f32' | 'f64' = layout === 'f64' ? 'f64' : 'f32';
  const addOp = LANE_OPS[lanes].add;
  code.get(0).get(1).get(0).sub().i32(-64); raw(code, 0x71).add().set(6);
  const ranks = (body: () => void) => {
    code.get(0).set(4).get(3).i32(1).sub().set(5);
    code.block().loop();
    code.get(5).eqz().brIf(1);
    code.get(4).get(2).add().set(4);
    body();
    code.get(5).i32(1).sub().set(5);
    code.br(0).end().end();
  };
  // 64 bytes (four vectors) per pass over the ranks
  code.block().loop();
  code.get(0).get(6).ltU().eqz().brIf(1);
  for (let j = 0; j < 4; j++) code.get(0).v128Load(16 * j).set(7 + j);
  ranks(() => { for (let j = 0; j < 4; j++) code.get(7 + j).get(4).v128Load(16 * j).simdOp(addOp).set(7 + j); });
  for (let j = 0; j < 4; j++) code.get(0).get(7 + j).v128Store(16 * j);
  code.get(0).i32(64).add().set(0);
  code.br(0).end().end();
  // the tail, one element at a time
  const bytes = layout === 'f64' ? 8 : 4;
  const load = () => code.simdOp(bytes === 8 ? OP.load64Zero : OP.load32Zero, bytes === 8 ? 3 : 2, 0);
  code.block().loop();
  code.get(0).get(1).ltU().eqz().brIf(1);
  code.get(0); load(); code.set(7);
  ranks(() => { code.get(7).get(4); load(); code.simdOp(addOp).set(7); });
  code.get(0).get(7).simdOp(bytes === 8 ? OP.store64Lane : OP.store32Lane, bytes === 8 ? 3 : 2, 0, 0);
  code.get(0).i32(bytes).add().set(0);
  code.br(0).end().end();
  return code;
}

interface FunctionDef {
  readonly params: readonly ValType[];
  readonly locals: readonly ValType[];
  readonly body: Code;
}

const VALTYPE: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, f64: 0x7c, v128: 0x7b };
const str = (s: string): number[] => [...uleb(s.length), ...[...s].map((c) => c.charCodeAt(0))];
const vec = (items: readonly number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, payload: number[]): number[] => [id, ...uleb(payload.length), ...payload];

/**
 * A module importing `env.memory` as a shared memory (limits flag 3: shared, with a maximum),
 * exporting `reduce` and `update` (wasm-emit's encodeModule imports unshared memories only).
 */
function encodeSharedModule(functions: readonly [string, FunctionDef][]): Uint8Array {
  const types = functions.map(([, f]) => [0x60, ...vec(f.params.map((t) => [VALTYPE[t]])), 0x00]);
  const bodies = functions.map(([, f]) => {
    const locals = vec(f.locals.map((t) => [1, VALTYPE[t]]));
    const body = [...locals, ...f.body.bytes, 0x0b];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec([[...str('env'), ...str('memory'), 0x02, 0x03, ...uleb(0), ...uleb(WASM_MAX_PAGES)]])),
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    ...section(7, vec(functions.map(([name], i) => [...str(name), 0x00, ...uleb(i)]))),
    ...section(10, vec(bodies)),
  ]);
}

function moduleBytes(rule: string, layout: SimdLayout): Uint8Array {
  const simd = SIMD_RULES[rule];
  if (!simd) throw new TypeError(`SIMD optimizer: no kernel for rule ${JSON.stringify(rule)}`);
  const nLets = simd.lets.length;
  return encodeSharedModule([
    ['reduce', { params: ['i32', 'i32', 'i32', 'i32'], locals: ['i32', 'i32', 'i32', 'v128', 'v128', 'v128', 'v128'], body: emitReduce(layout) }],
    ['update', {
      params: ['i32', 'i32', 'i32', 'i32', 'i32', ...new Array<ValType>(MAX_CONSTS).fill('f64')],
      locals: ['i32', 'i32', ...new Array<ValType>(MAX_CONSTS + INPUTS.length + nLets).fill('v128')],
      body: emitUpdate(simd, layout),
    }],
  ]);
}

const modules = new Map<string, object>();
let support: boolean | null = null;

/** Whether this engine runs WebAssembly SIMD on shared memories (checked once by compiling a kernel). */
export function simdSupported(): boolean {
  if (support === null) {
    try {
      support = api !== undefined && api.validate(moduleBytes('sgd', 'f32'));
    } catch {
      support = false;
    }
  }
  return support;
}

/**
 * A shared memory of `bytes` bytes that can grow to 4 GiB, or null where WebAssembly SIMD or
 * shared memories are missing, or the engine cannot reserve it (the caller keeps plain
 * SharedArrayBuffers and the JavaScript kernels).
 */
export function allocateSharedMemory(bytes: number): SharedWasmMemory | null {
  const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE_BYTES));
  if (pages > WASM_MAX_PAGES || !simdSupported()) return null;
  try {
    return new api!.Memory({ initial: pages, maximum: WASM_MAX_PAGES, shared: true });
  } catch {
    return null;
  }
}

/** Grows `memory` to at least `bytes`; false when it cannot (over 4 GiB, or out of memory). */
export function ensureMemoryBytes(memory: SharedWasmMemory, bytes: number): boolean {
  const have = memory.buffer.byteLength;
  if (bytes <= have) return true;
  const pages = Math.ceil((bytes - have) / WASM_PAGE_BYTES);
  if (have / WASM_PAGE_BYTES + pages > WASM_MAX_PAGES) return false;
  try {
    memory.grow(pages);
    return true;
  } catch {
    return false;
  }
}

type ReduceFn = (at: number, end: number, stride: number, size: number) => void;
type UpdateFn = (g: number, p: number, s0: number, s1: number, nBytes: number, ...c: number[]) => void;

/** One rule's SIMD kernels bound to a shared memory; all addresses are byte offsets into it. */
export class SimdKernels {
  private readonly reduceFn: ReduceFn;
  private readonly updateFn: UpdateFn;
  private readonly rule: SimdRule;
  private readonly bytes: number;
  private consts: number[] = [];

  constructor(memory: SharedWasmMemory, rule: string, readonly layout: SimdLayout) {
    const key = `${rule}/${layout}`;
    let module = modules.get(key);
    if (!module) {
      module = new api!.Module(moduleBytes(rule, layout));
      modules.set(key, module);
    }
    const { exports } = new api!.Instance(module, { env: { memory } });
    this.reduceFn = exports['reduce'] as ReduceFn;
    this.updateFn = exports['update'] as UpdateFn;
    this.rule = SIMD_RULES[rule]!;
    this.bytes = layout === 'f64' ? 8 : 4;
  }

  /** Sets the constants of the next updates (hyper-parameters in the rule's order, step count, gradient scale). */
  prepare(hyper: readonly number[], step: number, scale: number): void {
    const c = this.rule.consts(hyper, step, scale);
    while (c.length < MAX_CONSTS) c.push(0);
    this.consts = c;
  }

  /** Slot 0 elements [lo, hi) += slots 1..size-1's; `arena` and `stride` in bytes. */
  reduce(arena: number, stride: number, size: number, lo: number, hi: number): void {
    this.reduceFn(arena + lo * this.bytes, arena + hi * this.bytes, stride, size);
  }

  /**
   * The rule over elements [lo, hi) of the parameters at byte `p` and the state vectors at `state`,
   * with the mean gradient g[i]·scale read at byte `g` + i (the gradient starts at element lo).
   */
  update(p: number, g: number, state: readonly number[], lo: number, hi: number): void {
    const b = this.bytes;
    const at = (base: number | undefined) => (base === undefined ? 0 : base + lo * b);
    this.updateFn(g, at(p), at(state[0]), at(state[1]), (hi - lo) * b, ...this.consts);
  }
}
