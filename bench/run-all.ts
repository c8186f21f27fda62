// Runs every benchmark this build has, one after another, and prints their markdown tables (`npm run bench`).
//   - dispatch.js through its exported runDispatchBench,
//   - gemm.js through its exported runGemmBench,
//   - w1.js and fused.js, when present, as their own processes (each parses its own arguments and
//     prints its own tables; their exported runners have signatures of their own).
// A benchmark whose compiled file is missing is listed as skipped.
// Usage: node dist/bench/run-all.js [--quick] [--only dispatch,gemm,w1,fused]
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

type Module = Record<string, unknown>;
type Runner = (options?: unknown) => unknown;

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const onlyAt = argv.indexOf('--only');
const only = onlyAt >= 0 ? new Set((argv[onlyAt + 1] ?? '').split(',')) : null;

async function load(file: string): Promise<Module | null> {
  const path = join(here, file);
  if (!existsSync(path)) return null;
  return (await import(pathToFileURL(path).href)) as Module;
}

function runner(m: Module, name: string): Runner | null {
  const f = m[name];
  return typeof f === 'function' ? (f as Runner) : null;
}

/** Runs an exported runner and prints what it returns (a table as a string, or JSON). */
async function viaExport(title: string, file: string, exportName: string, options: unknown): Promise<void> {
  console.log(`\n## ${title}\n`);
  const m = await load(file);
  if (m === null) { console.log(`skipped: bench/${file.replace(/\.js$/, '.ts')} is not in this build`); return; }
  const run = runner(m, exportName);
  if (run === null) { console.log(`skipped: bench/${file} has no export ${exportName}`); return; }
  const t0 = performance.now();
  const result = await run(options);
  console.log(typeof result === 'string' ? result : JSON.stringify(result, null, 2));
  console.log(`\n(${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

/** Runs a compiled benchmark script as its own process, passing its output through. */
function viaProcess(title: string, file: string, args: string[]): boolean {
  console.log(`\n## ${title}\n`);
  const path = join(here, file);
  if (!existsSync(path)) { console.log(`skipped: bench/${file.replace(/\.js$/, '.ts')} is not in this build`); return true; }
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [path, ...args], { stdio: 'inherit' });
  console.log(`\n(${((performance.now() - t0) / 1000).toFixed(1)} s${r.status === 0 ? '' : `, exited with ${r.status ?? r.signal}`})`);
  return r.status === 0;
}

const wanted = (name: string): boolean => only === null || only.has(name);
let ok = true;
console.log(`# Benchmarks${quick ? ' (quick)' : ''}`);
if (wanted('dispatch')) await viaExport('Dispatch overhead', 'dispatch.js', 'runDispatchBench', quick ? { minSeconds: 0.3, warmup: 50 } : {});
if (wanted('gemm')) await viaExport(
  'GEMM, one core per engine',
  'gemm.js',
  'runGemmBench',
  { dtype: 'float32', sizes: quick ? [256, 512] : [256, 512, 1024, 2048], minSeconds: quick ? 0.2 : 1 },
);
if (wanted('w1')) ok = viaProcess('Scaling of W1 = mean(tanh(X . W1) . W2, axis 0)', 'w1.js', []) && ok;
if (wanted('fused')) ok = viaProcess('Fused elementwise chain', 'fused.js', quick ? ['--seconds', '0.5'] : []) && ok;
if (!ok) process.exitCode = 1;
