// The benchmark's table and its targets (reported as PASS/MISS, never asserted).

const MB = 1024 * 1024;

/** @param {number[]} xs */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const num = (v, digits = 0) => (v === undefined || v === null || Number.isNaN(v) ? '-' : v.toFixed(digits));

/**
 * The rows of the table: the floor and the ceiling (medians over their runs), then each Parley case
 * with the ratio to the bare Express run made just before it. A run at a fixed offered rate follows
 * the bare Express run at the same rate (its reference), and is not part of the ceiling.
 * @param {any[]} runs every measured run, in order
 */
export function tableRows(runs) {
  const rows = [];
  const closedLoop = (r) => r.offered === undefined;
  for (const [kind, label] of [['http', 'raw node:http'], ['express', 'bare Express 5 + express.json()']]) {
    for (const method of ['GET', 'POST']) {
      const rs = runs.filter((r) => r.kind === kind && r.method === method && !r.error && closedLoop(r));
      if (rs.length === 0) continue;
      rows.push({
        label: `${label} ${method}${rs.length > 1 ? ` (median of ${rs.length})` : ''}`,
        rps: median(rs.map((r) => r.rps)),
        p50: median(rs.map((r) => r.p50)),
        p99: median(rs.map((r) => r.p99)),
        rssMB: Math.max(...rs.map((r) => r.rssMB)),
        cpu: rs.every((r) => r.cpuCores) ? { server: median(rs.map((r) => r.cpuCores.server)), loadgen: median(rs.map((r) => r.cpuCores.loadgen)) } : undefined,
        ratio: kind === 'express' ? 1 : median(rs.map((r) => r.rps)) / median(runs.filter((r) => r.kind === 'express' && r.method === method && !r.error && closedLoop(r)).map((r) => r.rps)),
        note: kind === 'http' ? 'the floor of Node' : 'the ceiling',
      });
    }
  }
  for (const r of runs.filter((x) => x.kind === 'parley')) {
    const reference = runs.find((x) => x.kind === 'express' && x.for === r.id && !closedLoop(x) && !x.error);
    if (reference) rows.push({ label: reference.label, rps: reference.rps, p50: reference.p50, p99: reference.p99, rssMB: reference.rssMB, cpu: reference.cpuCores, note: reference.note });
    rows.push(
      r.error
        ? { label: r.label, error: r.error }
        : { label: r.label, rps: r.rps, p50: r.p50, p99: r.p99, rssMB: r.rssMB, cpu: r.cpuCores, ratio: r.ratio, note: r.note },
    );
  }
  return rows;
}

/** The table as fixed-width text. */
export function formatTable(rows) {
  const head = ['case', 'req/s', 'p50 ms', 'p99 ms', 'peak RSS MB', 'x Express', 'CPU srv/gen', 'note'];
  const body = rows.map((r) =>
    r.error
      ? [r.label, 'ERROR', '', '', '', '', '', r.error.split('\n')[0].slice(0, 100)]
      : [r.label, num(r.rps), num(r.p50, 1), num(r.p99, 1), num(r.rssMB), num(r.ratio, 2), r.cpu ? `${num(r.cpu.server, 2)}/${num(r.cpu.loadgen, 2)}` : '-', r.note ?? ''],
  );
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/**
 * The targets of issue 8, each PASS, MISS or n/a (not measured in this run).
 * @param {any[]} runs
 * @param {{ sizes: number[] }} o
 */
export function evaluateTargets(runs, o) {
  const find = (id) => runs.find((r) => r.kind === 'parley' && r.id === id && !r.error);
  const out = [];
  const add = (name, want, value, pass, detail) => out.push({ name, want, value, pass, detail });

  const c2 = find('case2');
  add('case 2 vs bare Express (1 process)', '>= 0.60x', c2?.ratio, c2 ? c2.ratio >= 0.6 : null, c2 && `${num(c2.rps)} vs ${num(c2.baselineRps)} req/s`);

  const fixed = find('case2-1000');
  add(
    'case 2 p99 at 1,000 req/s offered',
    '< 10 ms',
    fixed?.p99,
    fixed ? fixed.p99 < 10 : null,
    fixed && `${num(fixed.rps)} req/s achieved, open loop; bare Express p99 ${num(fixed.baselineP99, 1)} ms at the same load`,
  );

  const small = find(`case4-${o.sizes[0]}`);
  const large = find(`case4-${o.sizes[o.sizes.length - 1]}`);
  const slow = small && large ? small.rps / large.rps : undefined;
  add(
    `case 4 at ${fmtCount(o.sizes[o.sizes.length - 1])} vs ${fmtCount(o.sizes[0])} tickets (cost ratio)`,
    '<= 1.5x',
    slow,
    slow === undefined ? null : slow <= 1.5,
    small && large && `${num(large.rps)} vs ${num(small.rps)} req/s; p50 ${num(large.p50, 1)} vs ${num(small.p50, 1)} ms`,
  );

  for (const c of ['case1', 'case2']) {
    const one = find(c);
    const two = find(`${c}-w2`);
    const gain = one && two ? two.rps / one.rps : undefined;
    add(`${c.replace('case', 'case ')} --workers 2 vs 1 worker`, '>= 1.30x', gain, gain === undefined ? null : gain >= 1.3, one && two && `${num(two.rps)} vs ${num(one.rps)} req/s`);
  }

  const parley = runs.filter((r) => r.kind === 'parley' && !r.error);
  const worst = parley.reduce((a, r) => (a && a.rssMaxProcessMB >= r.rssMaxProcessMB ? a : r), undefined);
  add('peak RSS per process (all cases)', '< 150 MB', worst?.rssMaxProcessMB, worst ? worst.rssMaxProcessMB < 150 : null, worst && `largest in ${worst.label}`);
  return out;
}

/** The targets as text. */
export function formatTargets(targets) {
  return targets
    .map((t) => {
      const verdict = t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'MISS';
      const value = t.value === undefined ? 'not measured' : num(t.value, t.want.includes('MB') ? 0 : 2);
      return `${verdict}  ${t.name}: ${value} (target ${t.want})${t.detail ? `  [${t.detail}]` : ''}`;
    })
    .join('\n');
}

/** 10000 -> "10k", 1000000 -> "1M". */
export function fmtCount(n) {
  if (n >= 1e6 && n % 1e6 === 0) return `${n / 1e6}M`;
  if (n >= 1e3 && n % 1e3 === 0) return `${n / 1e3}k`;
  return String(n);
}

export const toMB = (bytes) => bytes / MB;
