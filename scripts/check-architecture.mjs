// The structure rules of issue #14: imports in src/ run one way, top to bottom as the data flows,
// with no cycles; no source file over 800 lines and no line over 160 characters.
// Layers, lowest first; a file may import its own layer or any lower one, never a higher one.
// `import type` counts too: a type that points upward is a dependency that points upward.
//   tensor      values and symbols: NDArray, dtypes, TensorType, Variable, graph walking (topoSort)
//   ops         the op table: each op's type rule and reference implementation, no device code, no gradients
//   build       the graph builders (T.add, T.sum, ..., the Variable methods, random streams): applyOp over the table
//   grad        reverse-mode differentiation and the gradient rule table (typed over the op names); rules use builders
//   compile     graph -> Program (typed by op name), rewrites, description validation, StepError
//   devices     reference, CPU and CUDA devices: kernels, per-device code templates, lowering tables; the Communicator
//               interface and reduce ops, and each device's own communicator (CUDA: NCCL), named by its registration
//   run         T.fn's CompiledFunction and Variable.eval: runs a compiled program on a device
//   comm        the shared-memory communicator; device communicators only through the Device interface and registrations
//   parallel    the worker pool, synk.fn, data, collectives
//   extensions  layers, optimisers, training loops, datasets
//   (facade)    the package entry points directly in src/: index.ts ('synkhronos') and tensor.ts ('synkhronos/tensor')
// `node scripts/check-architecture.mjs --print` lists each layer's folders, file count and the lower layers it imports.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const LAYERS = ['tensor', 'ops', 'build', 'grad', 'compile', 'devices', 'run', 'comm', 'parallel', 'extensions', '(facade)'];
const LINE_DIRS = ['src', 'test', 'bench', 'examples', 'scripts'];
const MAX_LINES = 800;
const MAX_LINE_CHARS = 160;

function walk(dir, keep) {
  const found = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...walk(path, keep));
    else if (keep(entry)) found.push(path);
  }
  return found;
}

/** The layer of a file under src/: its top folder, or the facade for files directly in src/. */
function layerOf(file) {
  const parts = relative('src', file).split('/');
  return parts.length === 1 ? LAYERS.length - 1 : LAYERS.indexOf(parts[0]);
}

const IMPORT = /^\s*(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm;

/** The relative imports of a TypeScript file, resolved to source paths. */
function importsOf(file, text) {
  const out = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith('.')) continue;
    out.push(resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
  }
  return out;
}

const problems = [];
const root = resolve('.');
const sources = walk('src', (e) => e.endsWith('.ts')).map((f) => resolve(f));
const graph = new Map();
for (const file of sources) {
  const rel = relative(root, file);
  const layer = layerOf(rel);
  if (layer < 0) problems.push(`${rel}: folder is in no layer (${LAYERS.slice(0, -1).join(', ')})`);
  const deps = importsOf(file, readFileSync(file, 'utf8')).filter((d) => d.startsWith(resolve('src')));
  graph.set(file, deps);
  for (const dep of deps) {
    const depLayer = layerOf(relative(root, dep));
    if (depLayer > layer) problems.push(`${rel}: imports upward ${relative(root, dep)} (${LAYERS[layer]} -> ${LAYERS[depLayer]})`);
  }
}

/** Prints each layer, highest first: its folders, its file count and the lower layers its files import. */
function printLayers() {
  const rows = LAYERS.map((name) => ({ name, folders: new Set(), files: 0, imports: new Set() }));
  for (const [file, deps] of graph) {
    const rel = relative(root, file);
    const layer = layerOf(rel);
    if (layer < 0) continue;
    const row = rows[layer];
    row.files++;
    const parts = relative('src', rel).split('/');
    row.folders.add(parts.length === 1 ? 'src/*.ts' : `src/${parts.slice(0, -1).join('/')}`);
    for (const dep of deps) {
      const depLayer = layerOf(relative(root, dep));
      if (depLayer >= 0 && depLayer < layer) row.imports.add(LAYERS[depLayer]);
    }
  }
  console.log('Layers, highest first (a layer imports only itself and the layers below it):');
  for (let i = rows.length - 1; i >= 0; i--) {
    const row = rows[i];
    const below = LAYERS.slice(0, i).filter((n) => row.imports.has(n));
    console.log(`  ${String(i + 1).padStart(2)}. ${row.name.padEnd(11)} ${String(row.files).padStart(3)} files  imports: ${below.join(', ') || '-'}`);
    console.log(`      ${[...row.folders].sort().join(', ')}`);
  }
}

// Cycles: a depth-first search that reports each back edge's cycle once.
const state = new Map();
const stack = [];
const seenCycles = new Set();
function visit(file) {
  state.set(file, 'open');
  stack.push(file);
  for (const dep of graph.get(file) ?? []) {
    if (!graph.has(dep)) continue;
    const s = state.get(dep);
    if (s === 'open') {
      const cycle = stack.slice(stack.indexOf(dep)).map((f) => relative(root, f));
      const key = [...cycle].sort().join('|');
      if (!seenCycles.has(key)) {
        seenCycles.add(key);
        problems.push(`import cycle of ${cycle.length}: ${[...cycle, cycle[0]].join(' -> ')}`);
      }
    } else if (s === undefined) visit(dep);
  }
  stack.pop();
  state.set(file, 'done');
}
for (const file of sources) if (!state.has(file)) visit(file);

for (const dir of LINE_DIRS) {
  let files;
  try {
    files = walk(dir, (e) => /\.(ts|mjs|js|py|sh)$/.test(e));
  } catch {
    continue;
  }
  for (const file of files) {
    const lines = readFileSync(file, 'utf8').split('\n');
    if (lines.length > MAX_LINES) problems.push(`${file}: ${lines.length} lines (at most ${MAX_LINES})`);
    lines.forEach((line, i) => {
      if (line.length > MAX_LINE_CHARS) problems.push(`${file}:${i + 1}: line of ${line.length} characters (at most ${MAX_LINE_CHARS})`);
    });
  }
}

if (process.argv.includes('--print')) printLayers();

if (problems.length) {
  console.error(`check-architecture: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-architecture: ${sources.length} source files, imports one way, no cycles, sizes within limits`);
