// What a step costs, without what a run costs once (start-up, distributing the parameters, reading
// them back at close): the same benchmark profiled twice, with few and with many steps, then per
// function (self time) and thread, (time in the long run - time in the short run) / (extra steps).
// A function whose time is the same in both runs costs nothing per step, however large its total.
//   node --cpu-prof --cpu-prof-dir=/tmp/short dist/bench/train.js ... --steps 100
//   node --cpu-prof --cpu-prof-dir=/tmp/long  dist/bench/train.js ... --steps 400
//   node bench/cpuprof-diff.mjs /tmp/long /tmp/short STEPS [top=20]
// STEPS: how many more steps (calls) the long run made; train.js runs 1.5 x --steps calls after its
// 10 warm-up steps (the timed steps, then the split into parts), so --steps 100 vs 400 is 450.
// Threads are matched by their order in the directory (main thread first, then the workers).
import { readFileSync, readdirSync } from 'node:fs';

const [longDir, shortDir, stepsArg, topArg] = process.argv.slice(2);
const steps = Number(stepsArg);
const top = Number(topArg ?? 20);
if (!longDir || !shortDir || !(steps > 0)) {
  console.error('usage: node bench/cpuprof-diff.mjs LONG_DIR SHORT_DIR EXTRA_STEPS [top]');
  process.exit(1);
}

/** Self time (microseconds) per function key of each profile in a directory, in file order. */
function selfTimes(dir) {
  return readdirSync(dir).filter((x) => x.endsWith('.cpuprofile')).sort().map((file) => {
    const profile = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8'));
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map();
    profile.samples.forEach((id, i) => {
      const frame = byId.get(id).callFrame;
      const key = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
      self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
    });
    return { file, self };
  });
}

const long = selfTimes(longDir);
const short = selfTimes(shortDir);
long.forEach(({ file, self }, t) => {
  const base = short[t]?.self ?? new Map();
  const rows = [...self].map(([key, us]) => [key, (us - (base.get(key) ?? 0)) / steps]);
  const perStep = rows.filter(([key]) => key !== '(idle) :0').reduce((s, [, us]) => s + us, 0);
  console.log(`\n== thread ${t} (${file}): ${perStep.toFixed(1)} us of sampled time per extra step, idle excluded`);
  for (const [key, us] of rows.sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${us.toFixed(1).padStart(9)} us  ${key}`);
});
