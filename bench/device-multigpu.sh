#!/usr/bin/env bash
# Issue #7 in one device call, on a machine with 1 to 8 GPUs (every visible GPU is used):
#   all-reduce bus bandwidth, ours (bench/multi-gpu/allreduce.ts) and torch.distributed (allreduce_torch.py)
#   W1 eval and the MLP training step at 1, 2, 4, 8 GPUs, ours (scaling.ts) and DDP (ddp_torch.py)
# then a markdown report (ours vs the peer at each size / GPU count, the 95 % all-reduce goal at
# >= 64 MiB, scaling efficiency at the largest count) on stdout and in $OUT/multigpu.md.
# From the project root there (dist built here and carried): `source .device-carry/env.sh && bash bench/device-multigpu.sh`
# Logs (one per script, JSON lines starting with {"bench") stay next to multigpu.md. The report is
# rewritten after every stage, so a run cut short still leaves the figures it got.
set -u
cd "$(dirname "$0")/.." || exit 1
export NCCL_NVLS_ENABLE=0                                    # NVLink multicast off in every process
logs=${OUT:-$(mktemp -d -t multigpu.XXXXXX)}; mkdir -p "$logs"
if [ ! -f dist/bench/multi-gpu/allreduce.js ] || [ ! -f dist/bench/multi-gpu/scaling.js ]; then
  echo "dist/bench/multi-gpu/*.js is missing: build first (npx tsc -p .)" >&2; exit 1
fi
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.mem --format=csv,noheader > "$logs/gpus.txt" 2>/dev/null
nvidia-smi topo -m > "$logs/topo.txt" 2>/dev/null

report() {
node --input-type=module - "$logs" > "$logs/multigpu.md" <<'JS'
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
const dir = process.argv[process.argv.length - 1];
const lines = (f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8').split('\n') : []);
const records = (f) => lines(f).filter((l) => l.startsWith('{"bench"')).flatMap((l) => { try { return [JSON.parse(l)]; } catch { return []; } });
const all = ['allreduce-synk.txt', 'allreduce-torch.txt', 'scaling-synk.txt', 'scaling-ddp.txt'].flatMap(records);
const ok = all.filter((r) => !r.error);
const out = [];
const p = (s = '') => out.push(s);
const num = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const pct = (x) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : '-');
const gpuLines = lines('gpus.txt').filter((l) => l.trim());
p('# Multi-GPU benchmarks (issue #7)');
p();
p(`Generated ${new Date().toISOString()} by \`bench/device-multigpu.sh\`; NCCL_NVLS_ENABLE=${process.env.NCCL_NVLS_ENABLE ?? 'unset'}; node ` +
  `${process.version}.`);
p(`GPUs (${gpuLines.length}): ${gpuLines.length ? gpuLines.map((l) => l.trim()).join('; ') : 'nvidia-smi not available'}.`);
const torchRec = ok.find((r) => r.torch);
if (torchRec) p(`PyTorch ${torchRec.torch}${torchRec.nccl ? `, its NCCL ${torchRec.nccl}` : ''}.`);
const synkNccl = lines('allreduce-synk.txt').find((l) => l.startsWith('NCCL '));
if (synkNccl) p(`Ours: ${synkNccl.trim()}.`);

// ---- all-reduce ----
const ar = ok.filter((r) => r.bench === 'allreduce');
const find = (impl, bytes) => ar.find((r) => r.impl === impl && r.bytes === bytes);
const bw = (r) => (r ? (r.gpus > 1 ? r.busbw_gbps : r.algbw_gbps) : NaN);
p();
p('## All-reduce, float32 sum, device buffers');
p();
if (ar.length === 0) p('No all-reduce figures (see allreduce-synk.txt and allreduce-torch.txt).');
else {
  const gpus = Math.max(...ar.map((r) => r.gpus));
  const what = gpus > 1
    ? `bus bandwidth, GB/s (busBW = 2(n-1)/n x bytes / time, n = ${gpus})`
    : 'algorithm bandwidth, GB/s (bytes / time; one GPU: busBW is undefined)';
  p(`${gpus} GPU(s); ${what}; medians, slowest rank. Ratios are ours / peer (higher is better).`);
  p('Peers: the communicator (one awaited `allReduceDevice` at a time) and `synk.allReduce` against `all_reduce` + `torch.cuda.synchronize()` per call;');
  p('our direct `ncclAllReduce` (back to back, CUDA events) against `all_reduce` back to back with events.');
  p();
  p('| MiB | ours communicator | torch, sync per call | ratio | ours NCCL direct | torch, events | ratio | ours synk.allReduce | ' +
    'ratio vs torch sync | checked |');
  p('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  const sizes = [...new Set(ar.map((r) => r.bytes))].sort((a, b) => a - b);
  const goal = { comm: [], direct: [] };
  for (const b of sizes) {
    const [comm, tsync, direct, tev, rt] = ['synk-communicator', 'torch-nccl-sync', 'synk-nccl-direct', 'torch-nccl', 'synk-runtime'].map((i) => find(i, b));
    const rc = bw(comm) / bw(tsync);
    const rd = bw(direct) / bw(tev);
    if (b >= 64 * 2 ** 20) { goal.comm.push([b, rc]); goal.direct.push([b, rd]); }
    const checked = [comm, tsync, direct, tev, rt].filter(Boolean).every((r) => r.checked !== false) ? 'yes' : '**no**';
    p(`| ${b / 2 ** 20} | ${num(bw(comm))} | ${num(bw(tsync))} | ${pct(rc)} | ${num(bw(direct))} | ${num(bw(tev))} | ${pct(rd)} | ${num(bw(rt))} | ` +
      `${pct(bw(rt) / bw(tsync))} | ${checked} |`);
  }
  p();
  const verdict = (pairs, label) => {
    const vals = pairs.filter(([, r]) => Number.isFinite(r));
    if (vals.length === 0) return `${label}: no figures at >= 64 MiB.`;
    const [wb, worst] = vals.reduce((m, x) => (x[1] < m[1] ? x : m));
    return `${label}: lowest ratio at >= 64 MiB ${pct(worst)} (${wb / 2 ** 20} MiB): **${worst >= 0.95 ? 'met' : 'missed'}**.`;
  };
  p(`Goal, at least 95 % of the peer at 64 MiB and above. ${verdict(goal.comm, 'Communicator vs torch (sync per call)')} ` +
    `${verdict(goal.direct, 'Direct NCCL vs torch (events)')}`);
  if (gpus === 1) p('Only one GPU: an all-reduce over one rank is a device copy; these rows check the scripts, not NCCL across GPUs.');
}

// ---- scaling ----
const sc = ok.filter((r) => r.bench === 'scaling');
const get = (impl, w, k) => sc.find((r) => r.impl === impl && r.workload === w && r.gpus === k);
const eff = (impl, w, r) => { const base = get(impl, w, 1); return r && base ? r.samples_per_s / base.samples_per_s / r.gpus : NaN; };
p();
p('## Scaling: W1 eval and the MLP 784-2048-2048-10 Adam training step');
p();
if (sc.length === 0) p('No scaling figures (see scaling-synk.txt and scaling-ddp.txt).');
else {
  p('Wall-clock medians per call / step. Efficiency = (samples/s at n GPUs) / (n x samples/s at 1 GPU), each side against its own 1-GPU figure.');
  p('w1: X 262144x1024 split over the GPUs (strong scaling); mlp-weak: 8192 rows per GPU; mlp-strong: 8192 rows in all. TF32 on both sides.');
  p('DDP copies its batch from pinned host memory every step (ours uploads its rows from shared memory every step); "DDP resident" keeps it on the GPU.');
  p();
  p('| workload | GPUs | global batch | ours ms | ours samples/s | ours eff. | DDP ms | DDP samples/s | DDP eff. | DDP resident ms | ' +
    'ours / DDP throughput | ours grad / all-reduce / update ms |');
  p('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  const workloads = ['w1', 'mlp-weak', 'mlp-strong'];
  const counts = [...new Set(sc.map((r) => r.gpus))].sort((a, b) => a - b);
  for (const w of workloads) for (const k of counts) {
    const ours = get('synk', w, k); const ddp = get('torch-ddp', w, k); const res = get('torch-ddp-resident', w, k);
    if (!ours && !ddp) continue;
    const parts = ours && Number.isFinite(ours.grad_ms) ? `${num(ours.grad_ms)} / ${num(ours.allreduce_ms)} / ${num(ours.update_ms)}` : '';
    p(`| ${w} | ${k} | ${(ours ?? ddp).global_batch} | ${num(ours?.ms, 2)} | ${num(ours?.samples_per_s, 0)} | ${pct(eff('synk', w, ours))} | ` +
      `${num(ddp?.ms, 2)} | ${num(ddp?.samples_per_s, 0)} | ${pct(eff('torch-ddp', w, ddp))} | ${num(res?.ms, 2)} | ` +
      `${pct(ours && ddp ? ours.samples_per_s / ddp.samples_per_s : NaN)} | ${parts} |`);
  }
  p();
  const largest = Math.max(...counts);
  if (largest === 1) p('Only one GPU: scaling efficiency is not measured (1-GPU baselines only).');
  else {
    const ours = get('synk', 'mlp-weak', largest); const ddp = get('torch-ddp', 'mlp-weak', largest);
    const e = eff('synk', 'mlp-weak', ours); const d = eff('torch-ddp', 'mlp-weak', ddp);
    p(`Goal at the largest count (${largest} GPUs), training step with 8192 rows per GPU (mlp-weak): efficiency ${pct(e)} (goal >= 95 %: ` +
      `**${e >= 0.95 ? 'met' : 'missed'}**); DDP ${pct(d)}; throughput ${pct(ours && ddp ? ours.samples_per_s / ddp.samples_per_s : NaN)} of DDP's (no ` +
      `worse than DDP: **${ours && ddp && ours.samples_per_s >= ddp.samples_per_s ? 'met' : 'missed'}**).`);
    p(`W1 at ${largest} GPUs: ours ${pct(eff('synk', 'w1', get('synk', 'w1', largest)))} efficiency, DDP ` +
      `${pct(eff('torch-ddp', 'w1', get('torch-ddp', 'w1', largest)))}.`);
  }
}
const errors = all.filter((r) => r.error);
if (errors.length) { p(); p('## Errors'); p(); for (const r of errors) p(`- ${r.bench} ${r.impl} at ${r.gpus} GPU(s): ${r.error}`); }
for (const f of ['allreduce-synk.txt', 'allreduce-torch.txt', 'scaling-synk.txt', 'scaling-ddp.txt']) {
  const failed = lines(f).filter((l) => /no CUDA device|not installed|failed|Error/.test(l) && !l.startsWith('{'));
  if (failed.length) { p(); p(`${f}: ${failed.slice(0, 3).join(' | ')}`); }
}
console.log(out.join('\n'));
JS
}

timeout -k 10 150 node dist/bench/multi-gpu/allreduce.js 2>&1 | tee "$logs/allreduce-synk.txt"
timeout -k 10 90 python3 bench/multi-gpu/allreduce_torch.py 2>&1 | tee "$logs/allreduce-torch.txt"
report
timeout -k 10 170 node dist/bench/multi-gpu/scaling.js 2>&1 | tee "$logs/scaling-synk.txt"
report
timeout -k 10 120 python3 bench/multi-gpu/ddp_torch.py 2>&1 | tee "$logs/scaling-ddp.txt"
report
echo
cat "$logs/multigpu.md"
