// Shared set-up of one e2e test file: a Parley server, a host-page server on another origin and
// a Chromium, started once before the file's scenarios and stopped after them.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { launchChromium, openSession, type Session, type SessionOptions } from './browser.js';
import { HostServer } from './host.js';
import { Parley } from './parley.js';

export interface E2e {
  parley: Parley;
  host: HostServer;
  browser: Browser;
  /** A fresh browser context for the current test, with failure artifacts wired to the server log. */
  session(name: string, opts?: SessionOptions): Promise<Session>;
}

export function useE2e(): E2e {
  let parley: Parley | undefined;
  let host: HostServer | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    [parley, host, browser] = await Promise.all([Parley.start(), HostServer.start(), launchChromium()]);
  });
  afterAll(async () => {
    await Promise.all([browser?.close(), host?.close(), parley?.stop()]);
  });

  const need = <T>(v: T | undefined, what: string): T => {
    if (!v) throw new Error(`${what} did not start`);
    return v;
  };
  return {
    get parley() {
      return need(parley, 'parley');
    },
    get host() {
      return need(host, 'host server');
    },
    get browser() {
      return need(browser, 'chromium');
    },
    session(name, opts) {
      const p = need(parley, 'parley');
      return openSession(need(browser, 'chromium'), name, { serverLog: () => p.logTail(), ...opts });
    },
  };
}

