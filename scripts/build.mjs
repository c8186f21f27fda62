// The one build behind `npm run build`, `npm test`, `npm start`, `npm pack` (prepack) and the other scripts.
// `tsc -b` with `incremental` skips the compile when no source changed (its build info is dist/tsconfig.tsbuildinfo)
// and re-checks only what a change can affect; type errors are kept in the build info, so a later run reports them
// again instead of calling the project up to date. Two things plain tsc leaves wrong are fixed here:
// - an output deleted by hand is not noticed by the build info, so a missing output forces a full build;
// - the output of a deleted or renamed source stays in dist/, where the test runner would still run it and
//   `npm pack` would still ship it, so outputs without a source are removed.
// Extra arguments go to tsc (e.g. `npm run build -- --verbose`, or `--force` for a full rebuild).
import { existsSync, readFileSync, readdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const ts = require('typescript');
const tscBin = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
const OUTPUT_SUFFIXES = ['.js', '.js.map', '.d.ts', '.d.ts.map'];

/** The project's source files (relative, without `.ts`) and its output folder, as tsc itself reads tsconfig.json. */
function readProject() {
  const configPath = join(root, 'tsconfig.json');
  const read = ts.readConfigFile(configPath, ts.sys.readFile);
  if (read.error) throw new Error(`build: cannot read tsconfig.json: ${ts.flattenDiagnosticMessageText(read.error.messageText, '\n')}`);
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, root);
  const { outDir, rootDir, tsBuildInfoFile } = parsed.options;
  if (!outDir || !rootDir || !tsBuildInfoFile) {
    throw new Error('build: tsconfig.json must set outDir and rootDir (outputs are mapped from sources through them) and tsBuildInfoFile');
  }
  const sources = parsed.fileNames.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).map((f) => relative(rootDir, f).slice(0, -3));
  return { sources: new Set(sources), outDir, rootDir, buildInfo: tsBuildInfoFile };
}

function walk(dir, found = []) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path, found);
    else found.push(path);
  }
  return found;
}

/** Removes outputs (.js, .d.ts and their maps) under outDir whose source is no longer part of the project. */
function removeStaleOutputs({ sources, outDir }) {
  if (!existsSync(outDir)) return 0;
  let removed = 0;
  for (const file of walk(outDir)) {
    const suffix = OUTPUT_SUFFIXES.find((s) => file.endsWith(s));
    if (!suffix) continue; // the build info and anything else that is not a compiled module
    const source = relative(outDir, file).slice(0, -suffix.length);
    if (sources.has(source)) continue;
    unlinkSync(file);
    removed++;
  }
  removeEmptyFolders(outDir);
  return removed;
}

function removeEmptyFolders(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) removeEmptyFolders(path);
  }
  if (readdirSync(dir).length === 0) rmdirSync(dir);
}

/** Absolute paths of the files the last build compiled, from its build info; empty when there is none (a fresh clone). */
function lastBuilt(buildInfo) {
  try {
    const info = JSON.parse(readFileSync(buildInfo, 'utf8'));
    return new Set((info.fileNames ?? []).map((f) => resolve(dirname(buildInfo), f)));
  } catch {
    return new Set(); // no build info, or a format this script does not know: tsc decides alone
  }
}

const project = readProject();
const built = lastBuilt(project.buildInfo);
// A new source has no output yet and is compiled incrementally; a source the last build compiled whose output is gone
// would stay missing (the build info says it is up to date), so that needs a full build.
const missing = [...project.sources].filter((s) => built.has(join(project.rootDir, `${s}.ts`)) && !existsSync(join(project.outDir, `${s}.js`)));
const args = ['-b', join(root, 'tsconfig.json'), ...process.argv.slice(2)];
if (missing.length > 0 && !args.includes('--force')) {
  console.error(`build: ${missing.length} compiled file(s) missing (first: ${join(project.outDir, missing[0] ?? '')}.js); rebuilding everything`);
  args.push('--force');
}
const result = spawnSync(process.execPath, [tscBin, ...args], { stdio: 'inherit', cwd: root });
const removed = removeStaleOutputs(project);
if (removed > 0) console.error(`build: removed ${removed} output file(s) of deleted sources from ${relative(root, project.outDir) || '.'}${sep}`);
process.exit(result.status ?? 1);
