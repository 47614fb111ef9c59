#!/usr/bin/env node
// Key verification alone, in-process: the server's own verifyKey (shape and CRC32 offline, SHA-256,
// one indexed lookup) against a real database, and its parts, in calls per second. For scale, also
// the other per-request database step of every widget request: a rate-limit token in its own
// IMMEDIATE transaction (a write and a commit to the WAL).
//
//   node test/bench/lib/keyverify.mjs DB_FILE PUBLISHABLE_KEY SECONDS
// Prints one JSON document.
import { parseKey } from '@parley/shared';
import { loadConfig } from '../../../server/dist/config.js';
import { buildContext } from '../../../server/dist/server.js';
import { verifyKey } from '../../../server/dist/auth/authenticate.js';
import { findKeyByHash } from '../../../server/dist/db/keys.js';
import { takeTokenNow } from '../../../server/dist/limits/ratelimit.js';
import { sha256 } from '../../../server/dist/util.js';

const [file, key, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 1);
if (!file || !key || !(seconds > 0)) {
  process.stderr.write('usage: keyverify.mjs DB_FILE KEY SECONDS\n');
  process.exit(2);
}

const closing = new AbortController();
const ctx = buildContext({ config: loadConfig({}, { db: file, logLevel: 'silent' }), closing: closing.signal });
const hash = sha256(key);

/** Calls `fn` in batches for `secs` seconds (after a short warm-up); returns calls per second. */
function rate(fn, secs) {
  const spin = (ms) => {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < ms) {
      for (let i = 0; i < 200; i++) fn();
      n += 200;
      t = performance.now();
    }
    return (n / (t - t0)) * 1000;
  };
  spin(Math.min(200, secs * 250));
  return spin(secs * 1000);
}

if (verifyKey(ctx, key).key.type !== 'publishable') throw new Error('the key did not verify');
const share = seconds / 4;
const result = {
  verifyKey: rate(() => verifyKey(ctx, key), seconds),
  parts: {
    parseKey: rate(() => parseKey(key), share),
    sha256: rate(() => sha256(key), share),
    findKeyByHash: rate(() => findKeyByHash(ctx.db, hash), share),
  },
  rateLimitTransaction: rate(() => takeTokenNow(ctx.db, 'bench:keyverify', 1e9, Date.now()), share),
};
ctx.events.close();
ctx.db.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
