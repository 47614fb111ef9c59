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
//
// `overallRate` is an open-loop run at that rate, paced here rather than by autocannon: autocannon's
// overallRate gives each connection a budget per second and sends it back to back from the start of
// each second (then waits), so "1,000 req/s offered" was a burst at full concurrency, and its
// coordinated-omission correction then adds made-up samples. Here a request is due every 1/rate s
// whatever the answers; it waits for one of `connections` keep-alive sockets like a real client's
// request would, and its latency runs from when it was due. How late the generator itself sent
// requests is reported as `sendLagMs`, so a late generator is not mistaken for a slow server.
import { Agent, request } from 'node:http';
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

/** The value at quantile `q` of sorted numbers. */
const quantile = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : 0);

/**
 * An open-loop run: one request due every 1000/rate ms for `duration` seconds, sent on up to
 * `connections` keep-alive sockets; latency from when each was due to the end of its answer.
 * @param {any} spec @param {number} duration
 */
function paced(spec, duration) {
  const target = new URL(spec.url);
  const agent = new Agent({ keepAlive: true, maxSockets: spec.connections });
  const parts = spec.fresh ? String(spec.body).split('[<id>]') : null;
  const interval = 1000 / spec.overallRate;
  const latencies = [];
  const lags = [];
  const statusCodes = {};
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  let due = 0;
  let pending = 0;
  const start = performance.now();
  const end = start + duration * 1000;
  return new Promise((resolve) => {
    let ticking = true;
    const finish = () => {
      if (ticking || pending > 0) return;
      agent.destroy();
      const sorted = latencies.sort((a, b) => a - b);
      const lagSorted = lags.sort((a, b) => a - b);
      const round = (v) => Math.round(v * 100) / 100;
      const total = ok + non2xx;
      resolve({
        requests: total,
        ok,
        non2xx,
        errors,
        timeouts,
        statusCodes,
        seconds: duration,
        rps: total / duration,
        latencyMs: {
          p50: round(quantile(sorted, 0.5)),
          p90: round(quantile(sorted, 0.9)),
          p99: round(quantile(sorted, 0.99)),
          max: round(sorted[sorted.length - 1] ?? 0),
          mean: round(sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1)),
        },
        offeredRate: spec.overallRate,
        sendLagMs: { p99: round(quantile(lagSorted, 0.99)), max: round(lagSorted[lagSorted.length - 1] ?? 0) },
      });
    };
    const send = (dueAt) => {
      counter++;
      const headers = { ...(spec.headers ?? {}) };
      if (spec.rotate) headers[spec.rotate.header] = spec.rotate.values[counter % spec.rotate.values.length];
      const body = parts ? parts.join(`${process.pid}-${counter}`) : spec.body;
      if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
      pending++;
      let settled = false;
      const settle = (status, kind) => {
        if (settled) return;
        settled = true;
        pending--;
        if (kind === 'error') errors++;
        else if (kind === 'timeout') timeouts++;
        else {
          statusCodes[status] = (statusCodes[status] ?? 0) + 1;
          if (status >= 200 && status < 300) {
            ok++;
            latencies.push(performance.now() - dueAt);
          } else non2xx++;
        }
        finish();
      };
      const req = request(
        { hostname: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, method: spec.method ?? 'GET', headers, agent },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => settle(res.statusCode ?? 0));
          res.on('error', () => settle(0, 'error'));
        },
      );
      req.setTimeout(10_000, () => {
        settle(0, 'timeout');
        req.destroy();
      });
      req.on('error', () => settle(0, 'error'));
      lags.push(performance.now() - dueAt);
      req.end(body);
    };
    const tick = () => {
      const now = performance.now();
      // Every request due by now (or by the end) goes out, each timed from when it was due.
      for (let at = start + due * interval; at <= Math.min(now, end); at = start + due * interval) {
        due++;
        send(at);
      }
      if (now >= end) {
        ticking = false;
        finish();
        return;
      }
      setTimeout(tick, Math.max(0, start + due * interval - performance.now()));
    };
    tick();
  });
}

/** Warm-up (dropped), then the measured run. */
async function measure(spec) {
  if (!spec.url || !spec.connections || !spec.duration) throw new Error('a spec needs url, connections and duration');
  if (spec.overallRate) {
    if (spec.warmup > 0) await paced(spec, spec.warmup);
    return paced(spec, spec.duration);
  }
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
