// Where the time of one dispatch goes, at the worker pool's level (no synk.fn on top): for each
// worker count and each dispatch setting, the median over many calls of the time from the
// controller's call to the first and the last worker waking, to the last worker finishing (after a
// one-number 'sum' reduction, the three barriers of a trivial synk.fn call) and to the controller
// resuming (the round trip). Settings (comma-separated key=value, several separated by ';'):
//   spin    microseconds an idle worker polls before parking (default: the pool's)
//   sr      how many ranks spin when idle (the others sleep at once)
//   last    1: the last rank (a sleeping one) reports done after the others, 0: not
//   fan     wake-tree fan-out (n = flat: the controller wakes every rank)
//   cspin   microseconds the controller polls for the end of the call before awaiting it
//   bspin   polls of a barrier word before parking in a collective (the comm group's spin)
//   reduce  1 (default) runs the reduction, 0 none
// Usage: node dist/bench/dispatch-phases.js [counts] [--seconds 1] [--settings 'fan=2;fan=16,spin=50']
import os from 'node:os';
import { WorkerPool } from '../src/parallel/pool.js';

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined; };
const cores = os.availableParallelism();
const counts = (argv[0] && !argv[0].startsWith('--') ? argv[0] : `1,2,${cores}`).split(',').map(Number);
const seconds = Number(flag('--seconds') ?? 1);
const settings = (flag('--settings') ?? 'default').split(';').map((text) => {
  const kv = new Map(text.split(',').filter((p) => p.includes('=')).map((p) => p.split('=') as [string, string]));
  return { text, get: (k: string): number | undefined => (kv.has(k) ? Number(kv.get(k)) : undefined) };
});

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const p90 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)] ?? NaN;

async function measure(n: number, s: (typeof settings)[number]): Promise<string> {
  const clock = new SharedArrayBuffer(8 * (2 + 2 * n));
  const times = new BigInt64Array(clock);
  const fan = s.get('fan');
  const bspin = s.get('bspin');
  const pool = await WorkerPool.start({
    n,
    script: new URL('./_dispatch-phases-worker.js', import.meta.url),
    workerData: { clock },
    ...(s.get('spin') !== undefined ? { spinMicros: s.get('spin')! } : {}),
    ...(fan !== undefined ? { wakeFanout: Math.min(fan, n) } : {}),
    ...(s.get('sr') !== undefined ? { spinningRanks: Math.min(s.get('sr')!, n) } : {}),
    ...(s.get('last') !== undefined ? { lastRankNotifies: s.get('last') === 1 } : {}),
    ...(s.get('cspin') !== undefined ? { controllerSpinMicros: s.get('cspin')! } : {}),
    ...(bspin !== undefined ? { comm: { spin: bspin } } : {}),
  });
  const reduce = s.get('reduce') ?? 1;
  const cols = { first: [] as number[], last: [] as number[], done: [] as number[], back: [] as number[] };
  try {
    for (let i = 0; i < 300; i++) await pool.callAll(1, [reduce]);
    const start = performance.now();
    while (cols.back.length < 500 || (performance.now() - start < seconds * 1000 && cols.back.length < 100_000)) {
      const t0 = process.hrtime.bigint();
      await pool.callAll(1, [reduce]);
      const t1 = process.hrtime.bigint();
      let first = Infinity;
      let last = 0;
      let done = 0;
      for (let r = 0; r < n; r++) {
        const w = Number(times[2 + 2 * r]! - t0) / 1000;
        first = Math.min(first, w);
        last = Math.max(last, w);
        done = Math.max(done, Number(times[3 + 2 * r]! - t0) / 1000);
      }
      cols.first.push(first);
      cols.last.push(last);
      cols.done.push(done);
      cols.back.push(Number(t1 - t0) / 1000);
    }
  } finally {
    await pool.close();
  }
  const cell = (xs: number[]): string => median(xs).toFixed(1);
  const cells = [n, s.text, cell(cols.first), cell(cols.last), cell(cols.done), cell(cols.back), p90(cols.back).toFixed(1), cols.back.length];
  return `| ${cells.join(' | ')} |`;
}

console.log(`dispatch phases, ${cores} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}: median us from the controller's call`);
console.log('\n| workers | setting | first wakes | last wakes | last done | controller back | p90 back | calls |\n|---:|---|---:|---:|---:|---:|---:|---:|');
for (const n of counts) for (const s of settings) console.log(await measure(n, s));
