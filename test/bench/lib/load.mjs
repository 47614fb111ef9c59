#!/usr/bin/env node
// The load generator: runs autocannon in this process (never in the server's), first a warm-up
// whose figures are dropped, then the measured run, and prints one JSON document to stdout.
//
//   node test/bench/lib/load.mjs '<spec as JSON>'
//   node test/bench/lib/load.mjs --stdin      one spec per line in, one result per line out (the
//                                             benchmark keeps one generator for all its runs)
//
// spec: { url, method?, headers?, body?, fresh?, connections, duration, warmup,
//         overallRate?, rotate?: { header, values } }
// `fresh` puts a new id wherever the body says `[<id>]`, so every request is new (autocannon's own
// idReplacement miscounts Content-Length by 3 bytes per id); `rotate` sends each request with the
// next value of a header (a pool of keys, say).
import autocannon from 'autocannon';

let counter = 0;

/** @param {any} spec @param {number} duration */
function options(spec, duration) {
  /** @type {import('autocannon').Options} */
  const o = {
    url: spec.url,
    method: spec.method ?? 'GET',
    headers: spec.headers ?? {},
    body: spec.body,
    connections: spec.connections,
    duration,
    // autocannon ends a run at its next sample tick; the default 1 s tick rounds every run up to whole seconds.
    sampleInt: 100,
    timeout: 10,
  };
  if (spec.overallRate) o.overallRate = spec.overallRate;
  if (spec.rotate || spec.fresh) {
    const parts = spec.fresh ? String(spec.body).split('[<id>]') : null;
    o.requests = [
      {
        setupRequest(req) {
          counter++;
          if (spec.rotate) req.headers[spec.rotate.header] = spec.rotate.values[counter % spec.rotate.values.length];
          if (parts) req.body = parts.join(`${process.pid}-${counter}`);
          return req;
        },
      },
    ];
  }
  return o;
}

/** The figures of one autocannon result that the benchmark reports. */
function summary(r) {
  const codes = {};
  for (const [code, v] of Object.entries(r.statusCodeStats ?? {})) codes[code] = v.count;
  const total = r['1xx'] + r['2xx'] + r['3xx'] + r['4xx'] + r['5xx'];
  return {
    requests: total,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes: codes,
    seconds: r.duration,
    rps: r.duration > 0 ? total / r.duration : 0,
    latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: r.latency.average },
  };
}

/** Warm-up (dropped), then the measured run. */
async function measure(spec) {
  if (!spec.url || !spec.connections || !spec.duration) throw new Error('a spec needs url, connections and duration');
  if (spec.warmup > 0) await autocannon(options(spec, spec.warmup));
  return summary(await autocannon(options(spec, spec.duration)));
}

if (process.argv[2] === '--stdin') {
  const { createInterface } = await import('node:readline');
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    let out;
    try {
      out = await measure(JSON.parse(line));
    } catch (err) {
      out = { error: err instanceof Error ? err.message : String(err) };
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  }
} else {
  try {
    process.stdout.write(`${JSON.stringify(await measure(JSON.parse(process.argv[2] ?? '{}')))}\n`);
  } catch (err) {
    process.stderr.write(`usage: load.mjs '{"url":...,"connections":N,"duration":S,"warmup":S}' | --stdin\n${err}\n`);
    process.exit(2);
  }
}
