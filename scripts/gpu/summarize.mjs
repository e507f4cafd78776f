#!/usr/bin/env node
// The table scripts/gpu-check.sh prints last, from what its steps left in OUT (status.tsv, *.log).
//   node scripts/gpu/summarize.mjs OUT
import * as fs from 'node:fs';
import * as path from 'node:path';

const out = process.argv[2];
const read = (name) => { try { return fs.readFileSync(path.join(out, name), 'utf8'); } catch { return ''; } };
const jsonLines = (name) => read(name).split('\n').filter((l) => l.startsWith('{')).map((l) => { try { return JSON.parse(l); } catch { return undefined; } }).filter(Boolean);
const last = (name) => jsonLines(name).at(-1);
const fmt = (x, digits = 1) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '-');
const gb = (b) => (typeof b === 'number' ? `${(b / 2 ** 30).toFixed(2)} GiB` : '-');
// bench names a shape, or a config.json path (the dry mode's tiny shapes, named as PEFT's)
const shapeName = (m) => path.basename(String(m)).replace(/\.json$/, '');
const pad = (cells, widths) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();

const steps = read('status.tsv').trim().split('\n').filter(Boolean).map((l) => {
  const [name, rc, seconds] = l.split('\t');
  return { name, rc: Number(rc), seconds: Number(seconds) };
});
const lines = [];
lines.push('== steps');
for (const s of steps) {
  const tail = read(`${s.name}.log`).trim().split('\n').filter((l) => l && !l.startsWith('{')).at(-1) ?? '';
  lines.push(pad([s.name, s.rc === 0 ? 'ok' : s.rc === 124 || s.rc === 137 ? 'TIMEOUT' : `FAIL ${s.rc}`, `${s.seconds}s`, tail.slice(0, 90)], [34, 8, 6, 90]));
}

const parity = jsonLines('parity.log');
if (parity.length) {
  lines.push('', '== tiny fixtures, 20 steps, cuda vs cpu (per-step relative loss difference)');
  for (const p of parity) {
    lines.push(pad([p.model, p.dtype, p.ok ? 'ok' : 'FAIL', p.error ?? `max ${p.maxRelativeDifference?.toExponential(2)} (tol ${p.tolerance})`], [22, 5, 5, 60]));
  }
}

const peak = last('peak.log');
const peakFlops = peak?.gemmFlopsPerSecond;
if (peak) lines.push('', `== measured ceilings on ${peak.device}: ${peak.dtype} GEMM ${fmt(peakFlops / 1e12)} TFLOP/s (n ${peak.n})` + (peak.copyBytesPerSecond ? `, copy ${fmt(peak.copyBytesPerSecond / 1e12, 2)} TB/s` : ''));

const bench = steps.filter((s) => s.name.startsWith('bench-')).map((s) => ({ step: s.name, r: last(`${s.name}.log`) })).filter((b) => b.r);
const peft = Object.fromEntries(steps.filter((s) => s.name.startsWith('peft-')).map((s) => [s.name, last(`${s.name}.log`)]));
if (bench.length) {
  lines.push('', '== ditty bench (cuda): block, batch 1; MFU = 4 N T / step time / the measured GEMM peak');
  const w = [34, 10, 8, 12, 30];
  lines.push(pad(['shape, checkpointing', 'tokens/s', 'MFU', 'peak memory', 'split dequant/gemm/attn|wkv/other'], w));
  for (const { step, r } of bench) {
    const mfu = peakFlops && r.flopsPerSecond ? r.flopsPerSecond / peakFlops : undefined;
    const split = r.split ? ['dequant', 'gemm', 'wkv', 'attention', 'other'].filter((k) => k in r.split).map((k) => fmt(100 * r.split[k], 0)).join('/') + ' %' : '-';
    lines.push(pad([`${shapeName(r.model)}, ${r.checkpointing}`, fmt(r.tokensPerSecond), mfu ? `${fmt(100 * mfu)}%` : '-', gb(r.peakDeviceBytes ?? r.peakTensorBytes), split], w));
  }
}
const peftRows = Object.entries(peft).filter(([, r]) => r);
if (peftRows.length) {
  lines.push('', '== transformers + PEFT, bf16 LoRA (the baseline)');
  for (const [name, r] of peftRows) {
    lines.push(pad([name, r.skipped ? `skipped: ${r.skipped}` : `${fmt(r.tokensPerSecond)} tok/s`, r.skipped ? '' : gb(r.peakDeviceBytes), r.wkvPath ?? ''], [34, 20, 12, 20]));
  }
  // ditty / PEFT at the same shape: selective vs PEFT without checkpointing, full vs PEFT with it
  for (const [name, r] of peftRows) {
    if (!r || r.skipped) continue;
    const shape = r.model;
    const ck = r.checkpointing ? 'full' : 'selective';
    const ours = bench.find((b) => shapeName(b.r.model) === shape && b.r.checkpointing === ck)?.r;
    if (ours) lines.push(`ratio ditty ${shape} ${ck} / ${name}: ${fmt(ours.tokensPerSecond / r.tokensPerSecond, 2)}x`);
  }
}
const failed = steps.filter((s) => s.rc !== 0).length;
lines.push('', `${steps.length} steps, ${failed} failed`);
process.stdout.write(`${lines.join('\n')}\n`);
process.exit(failed ? 1 : 0);
