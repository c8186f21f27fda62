// Loop progress: a cli-progress bar on a terminal; without one, a plain line every few seconds.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startProgress } from '../../src/extensions/progress.js';

/** A stream that records what is written; `tty` makes it look like a terminal. */
function recorder(tty: boolean) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY: tty, columns: 100, write(s: string) { chunks.push(s); return true; } } };
}

describe('progress', () => {
  it('without a terminal prints one plain line per interval, none in between', () => {
    const { chunks, stream } = recorder(false);
    let clock = 0;
    const p = startProgress({ label: 'epoch 1/3', total: 100, unit: 'steps', stream, now: () => clock });
    for (let step = 1; step <= 100; step++) {
      clock += 130; // 13 s in all: lines at 5.07 s and 10.14 s
      p.update(step, `loss ${(1 / step).toFixed(3)}`);
    }
    p.stop();
    assert.deepEqual(chunks, ['epoch 1/3: 39/100 steps (39%), loss 0.026, 5 s\n', 'epoch 1/3: 78/100 steps (78%), loss 0.013, 10 s\n']);
    p.update(100);
    assert.equal(chunks.length, 2, 'nothing after stop');
  });

  it('a slow loop prints at every update once the interval has passed; no control characters', () => {
    const { chunks, stream } = recorder(false);
    let clock = 0;
    const p = startProgress({ label: '2 workers', total: 3, unit: 'rows', stream, now: () => clock, intervalMs: 2000 });
    for (let i = 1; i <= 3; i++) { clock += 2500; p.update(i); }
    p.stop();
    assert.equal(chunks.length, 3);
    assert.equal(chunks[2], '2 workers: 3/3 rows (100%), 8 s\n');
    assert.ok(chunks.every((c) => !/\x1b/.test(c)));
  });

  it('on a terminal draws a cli-progress bar and clears it at the end', () => {
    const { chunks, stream } = recorder(true);
    const p = startProgress({ label: 'epoch 2/5', total: 10, stream });
    for (let i = 1; i <= 10; i++) p.update(i, 'loss 0.5000');
    p.stop();
    const out = chunks.join('');
    assert.match(out, /epoch 2\/5 \|[█░]+\| 100% \| 10\/10 steps \| loss 0\.5000 \| /);
    assert.match(out, /\x1b\[/, 'the bar is redrawn in place with escape sequences');
  });

  it('refuses bad options, naming them', () => {
    assert.throws(() => startProgress({ label: 'x', total: -1 }), /total must be a finite number >= 0/);
    assert.throws(() => startProgress({ label: 'x', total: 5, intervalMs: 0 }), /intervalMs must be a positive number/);
    assert.throws(() => startProgress({ label: 3 as unknown as string, total: 5 }), /label must be a string/);
    const p = startProgress({ label: 'x', total: 5, stream: recorder(false).stream });
    assert.throws(() => p.update(Number.NaN), /done must be a finite number/);
  });
});
