// Emits the WebAssembly SIMD GEMM kernel: a register-blocked micro-kernel (MR rows by
// NR = NRV * lanes columns of C held in v128 locals) inside the two inner loops of the
// Goto/BLIS loop nest. Operands are packed beforehand (see wasm-gemm.ts):
//   A panel: kc x MR, k-major (MR consecutive values per k), one per MR rows of a block;
//   B panel: kc x NR, k-major (NR consecutive values per k), one per NR columns.
// Per k: each A value is broadcast (v128.load32_splat / load64_splat), B rows are v128
// loads, and C += a * b uses mul + add (relaxed-SIMD FMA is off by default in Node 20).
import type { WasmMemory } from './wasm-api.js';
import { Code, encodeModule, type FunctionDef, type ValType } from './wasm-emit.js';

export interface KernelShape {
  /** Rows of C per micro-tile. */
  mr: number;
  /** v128 vectors per row of the micro-tile (NR = nrv * lanes). */
  nrv: number;
  /** k steps per loop iteration; packed kc is padded to a multiple of it. */
  unroll: number;
}

/**
 * 5 x 16 float32 (5 x 8 float64), k unrolled twice: measured fastest on x64 (AMD Zen 5,
 * Node 20) among 4x8, 6x8, 3x12, 4x12, 4x16, 5x16, 6x16 and unrolls 1, 2, 4. Its 20
 * accumulators exceed the 15 xmm registers V8 allocates, so TurboFan keeps some on the
 * stack; with unroll 2 it merges the two k steps into one load + two adds + one store per
 * spilled accumulator, which the core hides. 4x8 (no spill) reaches ~80% of it.
 */
export const F32_SHAPE: KernelShape = { mr: 5, nrv: 4, unroll: 2 };
export const F64_SHAPE: KernelShape = { mr: 5, nrv: 4, unroll: 2 };

/** Parameters of the exported `block_f32` / `block_f64` functions, in order. */
const PARAMS = ['a', 'b', 'c', 'mTiles', 'nTiles', 'kc', 'ldcBytes', 'accumulate'] as const;

function emitBlock(elem: 4 | 8, shape: KernelShape): FunctionDef {
  const { mr, nrv, unroll } = shape;
  const lanes = 16 / elem;
  const nr = nrv * lanes;
  const locals: ValType[] = [];
  let next = PARAMS.length;
  const local = (t: ValType): number => {
    locals.push(t);
    return next++;
  };
  const [a, b, c, mTiles, nTiles, kc, ldc, accumulate] = [0, 1, 2, 3, 4, 5, 6, 7] as const;
  const i = local('i32'), j = local('i32');
  const aPanel = local('i32'), bPanel = local('i32'), cCol = local('i32'), cTile = local('i32');
  const pa = local('i32'), pb = local('i32'), pend = local('i32');
  const bPanelBytes = local('i32');
  const acc: number[][] = [];
  for (let r = 0; r < mr; r++) acc.push(Array.from({ length: nrv }, () => local('v128')));
  const bv = Array.from({ length: nrv }, () => local('v128'));
  const av = local('v128');

  const splat = (code: Code, offset: number): Code =>
    elem === 4 ? code.v128Load32Splat(offset) : code.v128Load64Splat(offset);
  const vmul = (code: Code): Code => (elem === 4 ? code.f32x4Mul() : code.f64x2Mul());
  const vadd = (code: Code): Code => (elem === 4 ? code.f32x4Add() : code.f64x2Add());

  const k = new Code();
  k.get(kc).i32(nr * elem).mul().set(bPanelBytes); // bytes of one packed B panel
  k.get(b).set(bPanel).get(c).set(cCol).i32(0).set(j);
  k.block().loop(); // J loop over B panels
  {
    k.get(a).set(pa).get(cCol).set(cTile).i32(0).set(i);
    k.loop(); // I loop over A panels
    {
      for (const row of acc) for (const x of row) k.v128Zero().set(x);
      k.get(bPanel).tee(pb).get(bPanelBytes).add().set(pend);
      k.loop(); // K loop
      for (let u = 0; u < unroll; u++) {
        for (let v = 0; v < nrv; v++) k.get(pb).v128Load((u * nr + v * lanes) * elem).set(bv[v] ?? 0);
        for (let r = 0; r < mr; r++) {
          splat(k.get(pa), (u * mr + r) * elem).set(av);
          for (let v = 0; v < nrv; v++) {
            const x = acc[r]?.[v] ?? 0;
            vadd(vmul(k.get(x).get(av).get(bv[v] ?? 0))).set(x);
          }
        }
      }
      k.get(pa).i32(unroll * mr * elem).add().set(pa);
      k.get(pb).i32(unroll * nr * elem).add().tee(pb).get(pend).ltU().brIf(0);
      k.end();
      // store the tile: C = acc (+ C when accumulating); pa already points at the next A panel
      k.get(accumulate).if();
      for (let r = 0; r < mr; r++) {
        for (let v = 0; v < nrv; v++) {
          const x = acc[r]?.[v] ?? 0;
          k.get(cTile).get(cTile).v128Load(v * 16).get(x);
          vadd(k).v128Store(v * 16);
        }
        if (r + 1 < mr) k.get(cTile).get(ldc).add().set(cTile);
      }
      k.else();
      for (let r = 0; r < mr; r++) {
        for (let v = 0; v < nrv; v++) k.get(cTile).get(acc[r]?.[v] ?? 0).v128Store(v * 16);
        if (r + 1 < mr) k.get(cTile).get(ldc).add().set(cTile);
      }
      k.end();
      k.get(cTile).get(ldc).add().set(cTile); // next tile starts mr rows down
      k.get(i).i32(1).add().tee(i).get(mTiles).ne().brIf(0);
    }
    k.end();
    k.get(bPanel).get(bPanelBytes).add().set(bPanel);
    k.get(cCol).i32(nr * elem).add().set(cCol);
    k.get(j).i32(1).add().tee(j).get(nTiles).ne().brIf(0);
  }
  k.end().end();
  return {
    name: elem === 4 ? 'block_f32' : 'block_f64',
    params: PARAMS.map(() => 'i32' as const),
    results: [],
    locals,
    body: k,
  };
}

/** Parameters of the exported `pack_f32` / `pack_f64` functions, in order. */
const PACK_PARAMS = ['src', 'rs', 'cs', 'panels', 'w', 'rw', 'kc', 'kcp', 'dst', 'alpha'] as const;

/**
 * Packs `panels` panels of a matrix whose element (i, p) is at byte src + i*rs + p*cs:
 * element (t*w + r, p) goes to dst[t*w*kcp + p*w + r] (elements), multiplied by alpha, for
 * r < rw and p < kc. Padding (r >= rw, p >= kc) is left as is: the caller zeroes it.
 */
function emitPack(elem: 4 | 8): FunctionDef {
  const [src, rs, cs, panels, w, rw, kc, kcp, dst, alpha] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] as const;
  const locals: ValType[] = ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'];
  const [t, p, r, srcT, dstT, s, d, panelBytes, rowBytes] = [10, 11, 12, 13, 14, 15, 16, 17, 18] as const;
  const k = new Code();
  k.get(w).get(kcp).mul().i32(elem).mul().set(panelBytes);
  k.get(w).i32(elem).mul().set(rowBytes);
  k.get(src).set(srcT).get(dst).set(dstT).i32(0).set(t);
  k.block().loop(); // panels
  {
    k.i32(0).set(p);
    k.block().loop(); // k
    {
      k.get(srcT).get(p).get(cs).mul().add().set(s);
      k.get(dstT).get(p).get(rowBytes).mul().add().set(d);
      k.i32(0).set(r);
      k.loop(); // rows of the panel
      k.get(d).get(s);
      if (elem === 4) k.f32Load().get(alpha).f32Mul().f32Store();
      else k.f64Load().get(alpha).f64Mul().f64Store();
      k.get(s).get(rs).add().set(s);
      k.get(d).i32(elem).add().set(d);
      k.get(r).i32(1).add().tee(r).get(rw).ltU().brIf(0);
      k.end();
      k.get(p).i32(1).add().tee(p).get(kc).ltU().brIf(0);
    }
    k.end().end();
    k.get(srcT).get(w).get(rs).mul().add().set(srcT);
    k.get(dstT).get(panelBytes).add().set(dstT);
    k.get(t).i32(1).add().tee(t).get(panels).ltU().brIf(0);
  }
  k.end().end();
  return {
    name: elem === 4 ? 'pack_f32' : 'pack_f64',
    params: [...PACK_PARAMS.slice(0, -1).map(() => 'i32' as const), elem === 4 ? 'f32' : 'f64'],
    results: [],
    locals,
    body: k,
  };
}

/** The module bytes: exports `memory`, `block_f32`, `block_f64`, `pack_f32` and `pack_f64`. */
export function emitGemmModule(f32 = F32_SHAPE, f64 = F64_SHAPE): Uint8Array {
  return encodeModule([emitBlock(4, f32), emitBlock(8, f64), emitPack(4), emitPack(8)]);
}

type BlockFn = (a: number, b: number, c: number, mTiles: number, nTiles: number, kc: number, ldcBytes: number, accumulate: number) => void;
type PackFn = (src: number, rs: number, cs: number, panels: number, w: number, rw: number, kc: number, kcp: number, dst: number, alpha: number) => void;

export interface GemmExports {
  memory: WasmMemory;
  /** C[mTiles*mr x nTiles*nr] (+)= Apacked * Bpacked for one kc block; addresses in bytes. */
  block_f32: BlockFn;
  block_f64: BlockFn;
  /** See emitPack; addresses and strides in bytes (panels, w, rw, kc, kcp in elements). */
  pack_f32: PackFn;
  pack_f64: PackFn;
}
