// The README's code, as a user copies it: every ```ts block is type-checked under strict and
// noUncheckedIndexedAccess against the built package (imported by its own name, 'synkhronos'), then
// run. A block preceded by `<!-- doctest: typecheck-only ... -->` (GPU code) is only type-checked.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..', '..', '..');
// Inside the package (dist/ is ignored), so 'synkhronos/...' resolves to this package by name.
const dir = join(root, 'dist', 'doctest');

interface Block { readonly line: number; readonly code: string; readonly run: boolean }

function readmeBlocks(): Block[] {
  const lines = readFileSync(join(root, 'README.md'), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```ts') continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i]!.trim() !== '```'; i++) body.push(lines[i]!);
    const run = !/<!--\s*doctest:\s*typecheck-only/.test(lines[start - 1] ?? '') && !/<!--\s*doctest:\s*typecheck-only/.test(lines[start - 2] ?? '');
    blocks.push({ line: start + 1, code: body.join('\n'), run });
  }
  return blocks;
}

const blocks = readmeBlocks();
const fileOf = (b: Block) => `readme-line-${b.line}.mts`;

describe('README code blocks', () => {
  before(() => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    // `export {}` keeps each block a module of its own (top-level await, no shared names).
    for (const b of blocks) writeFileSync(join(dir, fileOf(b)), `${b.code}\nexport {};\n`);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noUncheckedIndexedAccess: true,
        skipLibCheck: true, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')], outDir: 'out', rootDir: '.',
      },
      include: ['*.mts'],
    }));
  });

  it('there are blocks to check', () => assert.ok(blocks.length >= 5, `found ${blocks.length} ts blocks`));

  it('every block type-checks under strict and noUncheckedIndexedAccess', () => {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `README blocks fail the type check:\n${r.stdout}${r.stderr}`);
  });

  for (const b of blocks) {
    it(`the block at README line ${b.line} runs`, { skip: b.run ? false : 'type-checked only (it needs a GPU)', timeout: 120_000 }, () => {
      const js = join(dir, 'out', fileOf(b).replace(/\.mts$/, '.mjs'));
      const r = spawnSync(process.execPath, [js], { encoding: 'utf8', timeout: 110_000, cwd: root, env: { ...process.env, SYNK_WORKERS: '2' } });
      assert.equal(r.status, 0, `README line ${b.line} failed:\n${r.stdout}\n${r.stderr}`);
    });
  }
});
