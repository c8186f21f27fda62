// The same-run table of bench/resnet.ts (synkhronos) and bench/resnet_torch.py (PyTorch): reads the
// JSON files both wrote (--json) in one device call and prints one markdown table per model, a row
// per precision setting and batch: our images/s, PyTorch eager's and torch.compile's, our ratio to
// eager (the goal: at least 1.00 everywhere), and peak memory beside.
// Settings are matched as bench/resnet_torch.py documents them: highest = fp32, high = tf32,
// medium = bf16. (Our 'medium' is bf16 operands in matrix products and convolutions; PyTorch's bf16
// is torch.autocast with channels_last: the rows say which is which.)
// Usage: node dist/bench/resnet-table.js synk.json [more synk.json ...] torch.json [more torch.json ...]
import { readFileSync } from 'node:fs';

interface SynkRow { precision: string; batch: number; workers: number; samplesPerSecond: number; msPerStep: number; peakMiB: number | null }
interface SynkReport { framework: 'synkhronos'; model: string; devices: string; optimizer: string; data: string; results: SynkRow[] }
interface TorchRow {
  device: string; setting: string; mode: string; batch: number; imagesPerSecond: number; msPerStep: number; threads?: number;
  maxAllocatedGiB?: number; deviceUsedGiB?: number;
}
interface TorchReport { framework: 'torch'; model: string; devices: string; optimizer: string; torch: string; results: TorchRow[] }

const SETTING: Record<string, string> = { highest: 'fp32', high: 'tf32', medium: 'bf16', bf16: 'bf16' };

const files = process.argv.slice(2);
if (files.length < 1) {
  console.error('usage: node dist/bench/resnet-table.js synk.json [...] torch.json [...]\n'
    + '(the files bench/resnet.ts and bench/resnet_torch.py wrote with --json)');
  process.exit(2);
}
const reports = files.map((f) => {
  let r: unknown;
  try {
    r = JSON.parse(readFileSync(f, 'utf8'));
  } catch (e) {
    throw new Error(`resnet-table: cannot read ${f}: ${(e as Error).message}`);
  }
  const framework = (r as { framework?: unknown }).framework;
  if (framework !== 'synkhronos' && framework !== 'torch')
    throw new Error(`resnet-table: ${f} is not a bench/resnet JSON report (framework ${String(framework)})`);
  return r as SynkReport | TorchReport;
});
const synk = reports.filter((r): r is SynkReport => r.framework === 'synkhronos');
const torch = reports.filter((r): r is TorchReport => r.framework === 'torch');
const fmt = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(1));

for (const s of synk) {
  const peers = torch.filter((t) => t.model === s.model && (t.devices === s.devices || (s.devices !== 'cpu' && t.devices === 'cuda')));
  const rowsOf = (setting: string, mode: string, batch: number) =>
    peers.flatMap((t) => t.results).find((r) => r.setting === setting && r.mode === mode && r.batch === batch);
  console.log(`\n### ${s.model}, ${s.devices} (${s.results[0]?.workers ?? '?'} worker(s)), ${s.optimizer}, data ${s.data}; `
    + `PyTorch ${peers[0]?.torch ?? '(none)'}\n`);
  console.log('| setting | batch | synkhronos images/s | PyTorch eager images/s | ratio to eager | torch.compile images/s | synk peak GPU GiB | '
    + 'PyTorch max allocated / device in use GiB |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of s.results) {
    const setting = s.devices === 'cpu' ? 'fp32' : SETTING[r.precision] ?? r.precision;
    const eager = rowsOf(setting, 'eager', r.batch);
    const compiled = rowsOf(setting, 'compile', r.batch);
    const ratio = eager ? (r.samplesPerSecond / eager.imagesPerSecond).toFixed(2) : '-';
    const mem = eager?.maxAllocatedGiB === undefined ? '-' : `${fmt(eager.maxAllocatedGiB)} / ${fmt(eager.deviceUsedGiB)}`;
    console.log(`| ${r.precision} (${setting}) | ${r.batch} | ${r.samplesPerSecond.toFixed(1)} | ${fmt(eager?.imagesPerSecond)} | ${ratio} | `
      + `${fmt(compiled?.imagesPerSecond)} | ${r.peakMiB === null ? '-' : (r.peakMiB / 1024).toFixed(1)} | ${mem} |`);
  }
}
if (synk.length === 0) console.log('resnet-table: no synkhronos report given; nothing to compare');
