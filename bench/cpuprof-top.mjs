// Where a process's JavaScript time goes: sums the self time of each function (name, file:line) in
// the .cpuprofile files that `node --cpu-prof --cpu-prof-dir DIR` wrote (one per thread) and prints
// the largest per file. Usage: node bench/cpuprof-top.mjs DIR [top=25]
import { readFileSync, readdirSync } from 'node:fs';

const dir = process.argv[2];
const top = Number(process.argv[3] ?? 25);
for (const file of readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
  const profile = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id).callFrame;
    const key = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  console.log(`\n== ${file}: ${(total / 1000).toFixed(0)} ms sampled`);
  for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(us / 1000).toFixed(1).padStart(8)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${key}`);
  }
}
