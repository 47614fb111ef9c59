// Debian's Chromium driven by playwright-core, one fresh browser context per scenario. A scenario
// that fails leaves a screenshot of each of its pages and the browser console log (plus the
// server's last log lines) in test/artifacts/, named after the test.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Locator, type Page } from 'playwright-core';
import { onTestFinished } from 'vitest';
import { ROOT } from './parley.js';

export const ARTIFACTS = join(ROOT, 'test/artifacts');

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/**
 * Launches /usr/bin/chromium. playwright's launch() gives it a new temporary profile
 * (--user-data-dir=/tmp/playwright_chromiumdev_profile-*) and deletes it on close, so no state
 * survives between runs.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
}

export interface Session {
  context: BrowserContext;
  page: Page;
  /** Everything the browser said: console messages, page errors, failed requests, HTTP errors. */
  log: string[];
  /** Texts of console.error calls (all frames). */
  consoleErrors: string[];
}

export interface SessionOptions extends BrowserContextOptions {
  /** Extra server log to attach on failure. */
  serverLog?: () => string;
}

/**
 * A fresh context and page for the current test; closed when the test ends. Call it inside a test:
 * it registers the hook that keeps the artifacts of a failure.
 */
export async function openSession(browser: Browser, name: string, opts: SessionOptions = {}): Promise<Session> {
  const { serverLog, ...contextOptions } = opts;
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  clearFailure(slug);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...contextOptions });
  const log: string[] = [];
  const consoleErrors: string[] = [];
  const started = Date.now();
  const stamp = () => `+${String(Date.now() - started).padStart(6)}ms`;
  const watch = (page: Page) => {
    page.on('console', (m) => {
      const at = m.location();
      log.push(`${stamp()} console.${m.type()}: ${m.text()}${at.url ? ` (${at.url}:${at.lineNumber})` : ''}`);
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => log.push(`${stamp()} pageerror: ${e.stack ?? e.message}`));
    page.on('requestfailed', (r) => log.push(`${stamp()} request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`));
    page.on('response', (r) => {
      if (r.status() >= 400) log.push(`${stamp()} HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
    });
    page.on('framenavigated', (f) => log.push(`${stamp()} navigated: ${f.url().slice(0, 200)}`));
  };
  context.on('page', watch);
  const page = await context.newPage();

  onTestFinished(async ({ task }) => {
    try {
      if (task.result?.state === 'fail') {
        mkdirSync(ARTIFACTS, { recursive: true });
        const pages = context.pages();
        for (const [i, p] of pages.entries()) {
          await p
            .screenshot({ path: join(ARTIFACTS, `FAILED-${slug}${pages.length > 1 ? `-${i + 1}` : ''}.png`), timeout: 5_000 })
            .catch((e: Error) => log.push(`screenshot failed: ${e.message}`));
        }
        const server = serverLog ? `\n\n--- server log (tail) ---\n${serverLog()}` : '';
        writeFileSync(join(ARTIFACTS, `FAILED-${slug}.console.log`), `${log.join('\n')}${server}\n`);
      }
    } finally {
      await context.close().catch(() => undefined);
    }
  });
  return { context, page, log, consoleErrors };
}

/** Removes the failure artifacts an earlier run of this test left. */
function clearFailure(slug: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(ARTIFACTS);
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith(`FAILED-${slug}.`) || n.startsWith(`FAILED-${slug}-`)) rmSync(join(ARTIFACTS, n), { force: true });
}

/** A screenshot kept on every run, for a person to look at. */
export async function keepScreenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

/** The widget's parts as the visitor sees them (playwright's locators pierce the open shadow root). */
export function widget(page: Page) {
  const host = page.locator('parley-widget');
  const dialog = page.getByRole('dialog', { name: /^Chat with/ });
  return {
    host,
    launcher: host.locator('button.launcher'),
    dialog,
    textbox: dialog.getByRole('textbox', { name: 'Message' }),
    send: dialog.getByRole('button', { name: 'Send', exact: true }),
    /** The conversation's messages (the greeting, which is not a message, left out). */
    messages: dialog.locator('li.m:has(> span.sr)'),
    /** A message bubble by its text. */
    message: (text: string | RegExp): Locator => dialog.locator('li.m').filter({ hasText: text }),
    /** A visitor message the server accepted (no longer sending, failed or waiting). */
    delivered: (text: string | RegExp): Locator =>
      dialog.locator('li.m.visitor:not(.sending):not(.failed):not(.waiting)').filter({ hasText: text }),
    /** A visitor message kept with "Not sent" and a retry control. */
    failed: (text: string | RegExp): Locator => dialog.locator('li.m.visitor.failed').filter({ hasText: text }),
    notice: dialog.locator('p.note[role="alert"]'),
    badge: host.locator('button.launcher .badge'),
  };
}

/** Types a message into the open widget and sends it with Enter. */
export async function sendMessage(page: Page, text: string): Promise<void> {
  const w = widget(page);
  await w.textbox.fill(text);
  await w.textbox.press('Enter');
}

/** Whether keyboard focus is on the launcher (through the shadow root). */
export function launcherFocused(page: Page): Promise<boolean> {
  return page.evaluate(() => {
    const host = document.querySelector('parley-widget');
    return document.activeElement === host && Boolean(host?.shadowRoot?.activeElement?.classList.contains('launcher'));
  });
}

/** What the visitor's pointer would hit at the centre of `target`: the page's element, and inside the widget. */
export async function hitTest(page: Page, target: Locator) {
  const box = await target.boundingBox();
  if (!box) throw new Error('the element has no box (not rendered)');
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  const hit = await target.evaluate((el, [px, py]) => {
    const top = document.elementFromPoint(px!, py!);
    const root = el.getRootNode() as Document | ShadowRoot;
    const inner = root.elementFromPoint(px!, py!);
    const describe = (e: Element | null) => (e ? `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}${e.classList.length ? `.${[...e.classList].join('.')}` : ''}` : 'nothing');
    return { top: describe(top), inner: describe(inner), hitsTarget: inner !== null && (inner === el || el.contains(inner)) };
  }, [x, y]);
  return { x, y, box, ...hit };
}
