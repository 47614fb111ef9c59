// Test helpers for real processes: `node server/bin/parley.js ...` spawned from the built server,
// its output collected line by line, and plain HTTP over fresh connections.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/parley.js', import.meta.url));
const BUILT = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));

/** Process tests run the built server; fail with the fix rather than a confusing error. */
export function requireBuild(): void {
  if (!existsSync(BUILT)) {
    throw new Error('server/dist is missing: run `pnpm --filter @parley/shared --filter @parley/server build` first');
  }
}

/** A port that was free a moment ago (for commands that cannot take port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  /** stdout lines so far. */
  out: string[];
  /** stderr lines so far. */
  err: string[];
  /** stdout lines that are JSON objects (the server's pino log). */
  logs(): Record<string, unknown>[];
  /** Polls until `check` returns something truthy, or fails after `timeoutMs` showing the output. */
  waitFor<T>(check: () => T | undefined | false | null, what: string, timeoutMs?: number): Promise<T>;
  exited: Promise<Exit>;
  /** Whether the process has exited. */
  done(): boolean;
  /** SIGKILLs the process (and its group when detached) if still running. */
  cleanup(): void;
}

/** Spawns `node server/bin/parley.js ...args`. */
export function parley(args: string[], opts: { env?: Record<string, string>; detached?: boolean; cwd?: string } = {}): Proc {
  requireBuild();
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    detached: opts.detached ?? false,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  const err: string[] = [];
  const collect = (into: string[]) => {
    let rest = '';
    return (chunk: Buffer) => {
      rest += chunk.toString('utf8');
      const parts = rest.split('\n');
      rest = parts.pop()!;
      into.push(...parts);
    };
  };
  child.stdout!.on('data', collect(out));
  child.stderr!.on('data', collect(err));
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      // Let the pipes deliver their last lines before anyone reads them.
      setTimeout(() => resolve(exit!), 50);
    });
  });
  const proc: Proc = {
    child,
    pid: child.pid!,
    out,
    err,
    logs() {
      const docs: Record<string, unknown>[] = [];
      for (const line of out) {
        if (!line.startsWith('{')) continue;
        try {
          docs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not a log line
        }
      }
      return docs;
    },
    async waitFor(check, what, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const v = check();
        if (v) return v;
        if (exit) {
          await exited; // the last lines may still be in the pipe
          const last = check();
          if (last) return last;
        }
        if (Date.now() > until || exit) {
          throw new Error(
            `timed out waiting for ${what}${exit ? ` (process exited ${JSON.stringify(exit)})` : ''}\n` +
              `stdout:\n${out.slice(-30).join('\n')}\nstderr:\n${err.slice(-30).join('\n')}`,
          );
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    exited,
    done: () => exit !== undefined,
    cleanup() {
      if (exit) return;
      try {
        if (opts.detached) process.kill(-child.pid!, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        // already gone
      }
    },
  };
  return proc;
}

/** Waits for a process to exit, failing after `timeoutMs`. */
export async function exitWithin(p: Proc, timeoutMs: number): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`process ${p.pid} did not exit within ${timeoutMs} ms\nstdout:\n${p.out.slice(-30).join('\n')}\nstderr:\n${p.err.slice(-30).join('\n')}`)), timeoutMs);
  });
  try {
    return await Promise.race([p.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request over a new connection (no keep-alive agent), so each may land on another worker. */
export function rawRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: { connection: 'close', ...opts.headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Polls GET url until it answers 200. */
export async function waitForHttp(url: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await rawRequest(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
