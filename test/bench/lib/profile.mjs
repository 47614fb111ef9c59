// Reading a V8 .cpuprofile (from `node --cpu-prof`): where the server's time went, by function
// (self time) and by area (our server code, each dependency, Node internals, GC, idle).
import { readFileSync } from 'node:fs';

/** Which part of the stack a frame belongs to, from its script URL. */
function area(url, name) {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)') return 'idle';
  if (name === '(program)') return 'V8/native (program)';
  if (!url) return `native: ${name || '(anonymous)'}`;
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return `dep: ${pkg[1]}`;
  if (url.startsWith('node:')) return `node: ${url.replace(/^node:(internal\/)?/, '').replace(/\/.*$/, '')}`;
  const ours = /\/(server|shared)\/dist\/(.*)$/.exec(url);
  if (ours) return `parley: ${ours[1]}/${ours[2]}`;
  return url;
}

/**
 * Self time per function and per area of a profile.
 * @param {string} file a .cpuprofile
 * @param {{ top?: number, skipMs?: number }} [o] rows per list; the first `skipMs` (start-up) are left out
 */
export function summarizeProfile(file, { top = 20, skipMs = 0 } = {}) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  /** @type {Map<number, any>} */
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = prof.timeDeltas;
  let at = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    at += dt[i] ?? 0;
    if (at < skipMs * 1000) continue;
    const id = prof.samples[i];
    self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0));
  }
  const byFn = new Map();
  const byArea = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const { callFrame: f } = nodes.get(id);
    const where = area(f.url, f.functionName);
    if (where === 'idle') {
      idle += us;
      continue;
    }
    total += us;
    const short = f.url ? `${f.url.replace(/^.*\/(node_modules|server\/dist|shared\/dist)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const fnKey = `${f.functionName || '(anonymous)'} ${short}`.trim();
    byFn.set(fnKey, (byFn.get(fnKey) ?? 0) + us);
    byArea.set(where, (byArea.get(where) ?? 0) + us);
  }
  const rows = (m) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), pct: total ? (100 * us) / total : 0 }));
  return { busyMs: Math.round(total / 1000), idleMs: Math.round(idle / 1000), functions: rows(byFn), areas: rows(byArea) };
}

/** The summary as text. */
export function formatProfile(s) {
  const lines = [`busy ${s.busyMs} ms, idle ${s.idleMs} ms after start-up (self time, share of busy time)`, '', 'by area:'];
  for (const r of s.areas) lines.push(`  ${r.pct.toFixed(1).padStart(5)}%  ${r.name}`);
  lines.push('', 'by function:');
  for (const r of s.functions) lines.push(`  ${r.pct.toFixed(1).padStart(5)}%  ${r.name}`);
  return lines.join('\n');
}
