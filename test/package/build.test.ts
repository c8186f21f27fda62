// scripts/build.mjs, the build behind every npm script, on a small project of its own: nothing is rewritten when
// nothing changed, a change re-emits only what it affects, type errors fail every build until fixed, an output
// deleted by hand comes back, and the outputs of a deleted source are removed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

describe('scripts/build.mjs', { timeout: 120_000 }, () => {
  let dir = '';
  const build = (): { status: number | null; output: string } => {
    const r = spawnSync(process.execPath, [join(dir, 'scripts', 'build.mjs')], { cwd: dir, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  };
  const mtime = (rel: string): number => statSync(join(dir, rel)).mtimeMs;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'synk-build-'));
    mkdirSync(join(dir, 'scripts'));
    copyFileSync(join(repo, 'scripts', 'build.mjs'), join(dir, 'scripts', 'build.mjs'));
    symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'), 'dir');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'build-test', private: true, type: 'module' }));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, declaration: true, sourceMap: true,
        outDir: 'dist', rootDir: '.', incremental: true, tsBuildInfoFile: 'dist/tsconfig.tsbuildinfo', types: [], noLib: true,
      },
      include: ['src/**/*.ts', 'test/**/*.ts', 'globals.d.ts'],
    }));
    // The few global types tsc needs, instead of its standard library: each build then takes a fraction of a second.
    const globals = ['Array<T> { length: number; [n: number]: T }', 'Boolean {}', 'CallableFunction {}', 'Function {}', 'IArguments {}',
      'NewableFunction {}', 'Number {}', 'Object {}', 'RegExp {}', 'String {}'];
    writeFileSync(join(dir, 'globals.d.ts'), globals.map((g) => `interface ${g}\n`).join(''));
    mkdirSync(join(dir, 'src'));
    mkdirSync(join(dir, 'test'));
    writeFileSync(join(dir, 'src', 'a.ts'), 'export const a: number = 1;\n');
    writeFileSync(join(dir, 'src', 'b.ts'), 'export const b: string = "b";\n');
    writeFileSync(join(dir, 'src', 'c.ts'), 'export const c = true;\n');
    writeFileSync(join(dir, 'test', 'a.test.ts'), "import { a } from '../src/a.js';\nexport const twice = a * 2;\n");
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('builds every source with its declaration and maps', () => {
    const r = build();
    assert.equal(r.status, 0, r.output);
    for (const f of [
      'src/a.js',
      'src/a.d.ts',
      'src/a.js.map',
      'src/b.js',
      'src/c.js',
      'test/a.test.js',
      'tsconfig.tsbuildinfo',
    ]) assert.ok(existsSync(join(dir, 'dist', f)), f);
  });

  it('rewrites nothing when nothing changed; a change re-emits what it affects; a deleted source loses its outputs', () => {
    const before = ['a', 'b'].map((n) => mtime(`dist/src/${n}.js`));
    assert.equal(build().status, 0);
    assert.deepEqual(['a', 'b'].map((n) => mtime(`dist/src/${n}.js`)), before, 'no output rewritten');
    writeFileSync(join(dir, 'src', 'b.ts'), 'export const b: string = "bb";\n');
    unlinkSync(join(dir, 'src', 'c.ts'));
    const r = build();
    assert.equal(r.status, 0, r.output);
    assert.equal(mtime('dist/src/a.js'), before[0], 'a.ts did not change: a.js is not rewritten');
    assert.notEqual(mtime('dist/src/b.js'), before[1], 'b.js is rebuilt from the changed b.ts');
    for (const f of ['c.js', 'c.d.ts', 'c.js.map']) assert.equal(existsSync(join(dir, 'dist', 'src', f)), false, `${f} of the deleted c.ts`);
    assert.match(r.output, /removed 3 output file\(s\) of deleted sources/);
  });

  it('a type error fails every build until it is fixed; an output deleted by hand is built again', () => {
    writeFileSync(join(dir, 'test', 'a.test.ts'), "import { a } from '../src/a.js';\nexport const twice: string = a * 2;\n");
    const first = build();
    assert.notEqual(first.status, 0);
    assert.match(first.output, /a\.test\.ts.*TS2322/);
    const again = build();
    assert.notEqual(again.status, 0, 'the build info remembers the error');
    assert.match(again.output, /TS2322/);
    writeFileSync(join(dir, 'test', 'a.test.ts'), "import { a } from '../src/a.js';\nexport const twice = a * 2;\n");
    unlinkSync(join(dir, 'dist', 'src', 'a.js'));
    const fixed = build();
    assert.equal(fixed.status, 0, fixed.output);
    assert.ok(existsSync(join(dir, 'dist', 'src', 'a.js')));
    assert.match(fixed.output, /missing.*rebuilding everything/);
  });
});
