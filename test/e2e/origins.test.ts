// Scenario 2 of issue 6: a page whose origin is not on the site's allowlist, and a sandboxed
// iframe (origin `null`), get no chat, a console.error that tells the owner which origin to add,
// and store, charge and count nothing.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { widget } from './lib/browser.js';
import { scriptTag, shopPage } from './lib/host.js';
import type { E2eSite, Parley } from './lib/parley.js';
import { useE2e } from './lib/suite.js';

const e = useE2e();
const LIMIT = 30;

/** Nothing stored or charged, and the site's rate limit untouched: the next allowed call sees a full bucket minus one. */
async function expectNoTrace(parley: Parley, site: E2eSite, allowedOrigin: string): Promise<void> {
  expect(parley.storedTickets(site)).toEqual([]);
  expect(parley.storedMessages(site)).toEqual([]);
  expect(parley.storedSpend(site)).toBe(0);
  const probe = await parley.widget(site, 'GET', '/config', allowedOrigin);
  expect(probe.status).toBe(200);
  expect(probe.headers.get('x-ratelimit-limit')).toBe(String(LIMIT));
  expect(probe.headers.get('x-ratelimit-remaining')).toBe(String(LIMIT - 1));
}

/** How many GET /config requests the page has sent so far. */
function countConfigs(page: Page): () => number {
  let n = 0;
  page.on('request', (r) => {
    if (r.method() === 'GET' && r.url().endsWith('/config')) n++;
  });
  return () => n;
}

/** A write a page script might try with the key it can read from the tag. */
function tryWrite(api: string, site: E2eSite) {
  return async () => {
    try {
      const r = await fetch(`${api}/v1/widget/${site.serviceId}/tickets`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Parley-Key': site.key },
        body: JSON.stringify({ message: 'sneaky' }),
      });
      return `answered ${r.status}`;
    } catch {
      return 'blocked';
    }
  };
}

describe('a page on an origin the site does not allow', () => {
  it('2a. shows no launcher, names its origin in a console.error, and leaves no ticket, charge or rate-limit count', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin], rate_limit_per_minute: LIMIT });
    host.set('/elsewhere', shopPage(scriptTag(parley.base, site)));
    const url = `${host.otherOrigin}/elsewhere`; // same page, served under a name the site does not allow
    const { page, consoleErrors } = await e.session('scenario 2a origin not allowed');
    const configs = countConfigs(page);

    await page.goto(url);
    await expect.poll(() => consoleErrors.find((t) => t.startsWith('Parley:')), { timeout: 15_000 }).toBeDefined();
    const help = consoleErrors.find((t) => t.startsWith('Parley:'))!;
    expect(help).toContain(host.otherOrigin);
    expect(help).toContain('allowed origins');
    // The browser hides the refusal, so the widget cannot tell it from a network blip and tries
    // again (a few times, then it gives up): still nothing to see or click, and one message only.
    await expect.poll(configs, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    expect(await widget(page).launcher.count()).toBe(0);
    expect(await page.getByRole('button', { name: /chat/i }).count()).toBe(0);
    expect(consoleErrors.filter((t) => t.startsWith('Parley:'))).toHaveLength(1);
    // The page API does not bring it back.
    await page.evaluate(() => (window as unknown as { Parley?: { open(): void } }).Parley?.open());
    expect(await widget(page).dialog.count()).toBe(0);

    // A script on that page using the key from the tag gets nothing through either.
    expect(await page.evaluate(tryWrite(parley.base, site))).toBe('blocked');
    // Nor does a non-browser client that claims that origin.
    const forged = await parley.widget(site, 'POST', '/tickets', host.otherOrigin, { message: 'forged' });
    expect(forged.status).toBe(403);
    expect(forged.body.error.code).toBe('origin_not_allowed');
    expect(forged.headers.get('access-control-allow-origin')).toBeNull();

    await expectNoTrace(parley, site, host.origin);
  });

  it('2b. a sandboxed iframe (origin null) on an allowed page gets no chat and leaves no trace', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin], rate_limit_per_minute: LIMIT });
    const inner = shopPage(scriptTag(parley.base, site), { title: 'Sandboxed' });
    const srcdoc = inner.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
    const url = host.set(
      '/sandboxed',
      shopPage('', { body: `<iframe sandbox="allow-scripts" title="embedded" style="width:600px;height:400px" srcdoc="${srcdoc}"></iframe>` }),
    );
    const { page, consoleErrors } = await e.session('scenario 2b null origin');

    await page.goto(url);
    const frame = page.frameLocator('iframe');
    await expect.poll(() => consoleErrors.find((t) => t.startsWith('Parley:')), { timeout: 15_000 }).toBeDefined();
    const help = consoleErrors.find((t) => t.startsWith('Parley:'))!;
    expect(help).toMatch(/from null\b/);
    // The frame really is opaque, and the widget really ran in it (its script loaded and spoke up).
    const child = page.frames().find((f) => f !== page.mainFrame());
    expect(await child!.evaluate(() => location.origin)).toBe('null');
    expect(await frame.locator('parley-widget button').count()).toBe(0);
    expect(await widget(page).host.count()).toBe(0);

    expect(await child!.evaluate(tryWrite(parley.base, site))).toBe('blocked');
    const forged = await parley.widget(site, 'POST', '/tickets', 'null', { message: 'forged' });
    expect(forged.status).toBe(403);
    expect(forged.body.error.code).toBe('origin_not_allowed');

    await expectNoTrace(parley, site, host.origin);
  });
});
