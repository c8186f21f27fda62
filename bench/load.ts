// Load test of the data-parallel runtime (not part of npm test): many small calls, calls with fresh
// inputs, and allocate / free cycles of large Data, printing the process's memory as it goes, so a
// leak shows as a figure that keeps growing. RSS covers the workers too (they are threads of this
// process); heap and arrayBuffers are the controller's.
// Usage: node dist/bench/load.js [--small 1000000] [--fresh 100000] [--fresh-rows 256] [--cycles 8]
//   [--gb 1] [--workers 2] [--device cpu] [--every 10] (seconds between reports within a phase)
//   [--phases small,fresh,data,setvalue,shared] [--settle 500] (ms to wait after each Data cycle before its report)
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';

export interface LoadOptions {
  small: number;
  fresh: number;
  freshRows: number;
  cycles: number;
  gb: number;
  workers: number;
  device: 'cpu' | 'reference';
  everySeconds: number;
  settleMs: number;
  phases: readonly string[];
}

const DEFAULTS: LoadOptions = {
  small: 1_000_000, fresh: 100_000, freshRows: 256, cycles: 8, gb: 1, workers: 2, device: 'cpu', everySeconds: 10, settleMs: 500,
  phases: ['small', 'fresh', 'data', 'setvalue', 'shared'],
};

const FLAGS = ['--small', '--fresh', '--fresh-rows', '--cycles', '--gb', '--workers', '--device', '--every', '--settle', '--phases'];

function parse(argv: readonly string[]): LoadOptions {
  const o: LoadOptions = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (value === undefined) throw new TypeError(`load: ${flag} needs a value`);
    const num = (): number => {
      const x = Number(value);
      if (!Number.isFinite(x) || x < 0) throw new RangeError(`load: ${flag} expects a number >= 0, got ${value}`);
      return x;
    };
    switch (flag) {
      case '--small': o.small = Math.floor(num()); break;
      case '--fresh': o.fresh = Math.floor(num()); break;
      case '--fresh-rows': o.freshRows = Math.max(1, Math.floor(num())); break;
      case '--cycles': o.cycles = Math.floor(num()); break;
      case '--gb': o.gb = num(); break;
      case '--workers': o.workers = Math.max(1, Math.floor(num())); break;
      case '--every': o.everySeconds = num(); break;
      case '--settle': o.settleMs = num(); break;
      case '--device':
        if (value !== 'cpu' && value !== 'reference') throw new RangeError(`load: --device expects cpu or reference, got ${value}`);
        o.device = value;
        break;
      case '--phases': o.phases = value.split(','); break;
      default:
        throw new TypeError(`load: unknown flag ${flag} (expected ${FLAGS.join(', ')})`);
    }
  }
  return o;
}

const MB = 2 ** 20;

function ones(rows: number, value = 1): T.NDArray {
  const a = new T.NDArray('float32', [rows, 1024]);
  a.data.fill(value);
  return a;
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const t0 = performance.now();

function report(phase: string, done: number, of: number): void {
  const m = process.memoryUsage();
  const s = ((performance.now() - t0) / 1000).toFixed(1).padStart(7);
  const mb = (bytes: number, width: number): string => `${(bytes / MB).toFixed(0).padStart(width)} MB`;
  const progress = `${String(done).padStart(8)}/${String(of).padEnd(8)}`;
  console.log(`${s} s  ${phase.padEnd(9)} ${progress} rss ${mb(m.rss, 6)}  heap ${mb(m.heapUsed, 5)}  arrayBuffers ${mb(m.arrayBuffers, 6)}`);
}

/** Runs `body(i)` `count` times, reporting every `everySeconds` (and at the start and end). */
async function loop(phase: string, count: number, everySeconds: number, body: (i: number) => Promise<void>): Promise<void> {
  report(phase, 0, count);
  let last = performance.now();
  for (let i = 0; i < count; i++) {
    await body(i);
    if (performance.now() - last >= everySeconds * 1000) {
      report(phase, i + 1, count);
      last = performance.now();
    }
  }
  report(phase, count, count);
}

export async function runLoad(o: LoadOptions): Promise<void> {
  console.log(`load: ${o.workers} ${o.device} workers; small ${o.small}, fresh ${o.fresh} (${o.freshRows}x256 float32), ${o.cycles} cycles of ${o.gb} GB`);
  const x = T.matrix('x');
  const total = synk.fn({ inputs: [x], outputs: [x.sum(), 'sum'] });
  await synk.fork({ n: o.workers, devices: o.device });
  try {
    if (o.phases.includes('small')) {
      const tiny = synk.data(new T.NDArray('float32', [o.workers * 2, 4]));
      await loop('small', o.small, o.everySeconds, async () => { await total(tiny); });
    }
    if (o.phases.includes('fresh')) {
      // Half the calls pass a fresh NDArray (the runtime copies it into a Data), half a fresh Data.
      await loop('fresh', o.fresh, o.everySeconds, async (i) => {
        const a = new T.NDArray('float32', [o.freshRows, 256]);
        await total(i % 2 === 0 ? a : synk.data(a));
      });
    }
    const rows = Math.max(o.workers, Math.floor((o.gb * 2 ** 30) / (1024 * 4)));
    if (o.phases.includes('data')) {
      // Allocate, touch every page, use in a call (a few rows: the workers hold the whole handle), free.
      await loop('data', o.cycles, 0, async () => {
        const big = synk.data({ dtype: 'float32', shape: [rows, 1024] });
        big.array.data.fill(1);
        await total(big, { batch: o.workers * 2 });
        big.freeMemory();
        await sleep(o.settleMs);
      });
    }
    if (o.phases.includes('setvalue')) {
      // One Data whose buffer is replaced by a larger value each cycle (and shrunk back by freeMemory).
      const grow = synk.data({ dtype: 'float32', shape: [o.workers, 1024] });
      await loop('setvalue', o.cycles, 0, async () => {
        grow.setValue(ones(rows)); // the value is not kept here: only the Data's copy remains
        await total(grow, { batch: o.workers * 2 });
        grow.freeMemory();
        await sleep(o.settleMs);
      });
    }
    if (o.phases.includes('shared')) {
      // A shared variable of that size replaced on every worker by synk.broadcast each cycle.
      const w = T.shared(new T.NDArray('float32', [1, 1024]), { name: 'w' });
      await loop('shared', o.cycles, 0, async (i) => {
        await synk.broadcast(w, ones(rows, i));
        await sleep(o.settleMs);
      });
    }
  } finally {
    await synk.close();
  }
  await sleep(500);
  report('closed', 0, 0);
}

if (import.meta.url === pathToFileURL(resolve(process.argv[1] ?? '')).href) {
  await runLoad(parse(process.argv.slice(2)));
}
