// Scenarios 6 and 7 of issue 6: a visitor whose network drops, and a site that reached its rate
// limit or its daily spend cap. The widget keeps the message with "Not sent", says why in plain
// words (SPEC section 9), and a retry stores exactly one copy.
import { describe, expect, it } from 'vitest';
import { sendMessage, widget } from './lib/browser.js';
import { scriptTag, shopPage } from './lib/host.js';
import { useE2e } from './lib/suite.js';

const e = useE2e();

describe('a visitor whose network fails', () => {
  it('6a. shows the chat after all when the network drops the first GET /config, and when the API answers 503', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/config-blip', shopPage(scriptTag(parley.base, site)));
    for (const failure of ['no answer', '503'] as const) {
      const { page, consoleErrors } = await e.session(`scenario 6a config ${failure}`);
      const w = widget(page);
      let configs = 0;
      await page.route(`${parley.base}/v1/widget/${site.serviceId}/config`, async (route) => {
        // The preflight (OPTIONS) reaches the real server; only the first GET fails.
        if (route.request().method() !== 'GET' || ++configs > 1) return route.continue();
        if (failure === 'no answer') return route.abort('internetdisconnected');
        return route.fulfill({
          status: 503,
          headers: { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': host.origin, Vary: 'Origin' },
          body: JSON.stringify({ error: { code: 'internal_error', message: 'Try again.', request_id: 'req_e2e' } }),
        });
      });
      await page.goto(url);
      await expect.poll(() => consoleErrors.some((t) => t.startsWith('Parley:')), { timeout: 10_000 }).toBe(true);
      expect(await w.launcher.count()).toBe(0);
      await w.launcher.waitFor({ state: 'visible', timeout: 10_000 }); // the retry, 2 s to 3 s later
      expect(configs).toBe(2);
      await w.launcher.click();
      await sendMessage(page, `Hello after a ${failure}`);
      await w.delivered(`Hello after a ${failure}`).waitFor();
      expect(consoleErrors.filter((t) => t.startsWith('Parley:'))).toHaveLength(1);
    }
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual(['Hello after a no answer', 'Hello after a 503']);
  });

  it('6. keeps a message sent offline with "Not sent", and a retry once back online stores exactly one copy', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/offline', shopPage(scriptTag(parley.base, site)));
    const { page, context } = await e.session('scenario 6 offline');
    const w = widget(page);

    await page.goto(url);
    await w.launcher.click();
    await w.dialog.waitFor({ state: 'visible' });

    // The first message (it would create the ticket) while offline.
    await context.setOffline(true);
    const first = 'Written on a train';
    await sendMessage(page, first);
    await w.failed(first).waitFor();
    expect(await w.failed(first).textContent()).toContain('Not sent');
    expect(await w.notice.textContent()).toBe('Message not sent. Check your connection and try again.');
    expect(parley.storedTickets(site)).toEqual([]);

    await context.setOffline(false);
    await w.failed(first).getByRole('button', { name: 'Retry' }).click();
    await w.delivered(first).waitFor();
    expect(await w.notice.count()).toBe(0);
    expect(parley.storedTickets(site)).toHaveLength(1);
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual([first]);

    // A follow-up on the existing ticket, offline again.
    await context.setOffline(true);
    const second = 'And through a tunnel';
    await sendMessage(page, second);
    await w.failed(second).waitFor();
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual([first]);
    await context.setOffline(false);
    await w.failed(second).getByRole('button', { name: 'Retry' }).click();
    await w.delivered(second).waitFor();

    expect(await w.messages.allTextContents()).toEqual([expect.stringContaining(first), expect.stringContaining(second)]);
    expect(parley.storedTickets(site)).toHaveLength(1);
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual([first, second]);
    expect(parley.storedSpend(site)).toBe(10_000 + 1_000);
  });

  it('6b. when the server stored a message but the answer was lost, the visitor never sees it twice and no second copy is stored', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/lost-answer', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('scenario 6b lost answer');
    const w = widget(page);
    const cut: { method: string; status: number; key: string | undefined }[] = [];
    const replayed: (string | undefined)[] = [];
    // The first POST of each message reaches the server; its answer is then cut off before the page sees it.
    await page.route(/\/v1\/widget\/[^/]+\/tickets(\/[^/]+\/messages)?$/, async (route) => {
      const req = route.request();
      if (req.method() !== 'POST') return route.continue();
      const key = req.headers()['idempotency-key'];
      if (cut.some((c) => c.key === key)) {
        replayed.push(key);
        return route.continue();
      }
      const answer = await route.fetch();
      cut.push({ method: req.method(), status: answer.status(), key });
      await route.abort('connectionreset');
    });

    await page.goto(url);
    await w.launcher.click();
    await w.dialog.waitFor({ state: 'visible' });
    // Counts, at every change of the conversation, how many bubbles show each text.
    await page.evaluate(() => {
      const shadow = document.querySelector('parley-widget')!.shadowRoot!;
      const most: Record<string, number> = {};
      (window as unknown as { mostCopies: typeof most }).mostCopies = most;
      new MutationObserver(() => {
        const now: Record<string, number> = {};
        for (const b of shadow.querySelectorAll('li.m.visitor > .b')) now[b.textContent ?? ''] = (now[b.textContent ?? ''] ?? 0) + 1;
        for (const [text, n] of Object.entries(now)) most[text] = Math.max(most[text] ?? 0, n);
      }).observe(shadow, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    const mostCopies = () => page.evaluate(() => ({ ...(window as unknown as { mostCopies: Record<string, number> }).mostCopies }));

    // The first message would create the ticket: without its answer there is no stream yet, so it stays "Not sent".
    const first = 'Did this arrive?';
    await sendMessage(page, first);
    await w.failed(first).waitFor();
    expect(cut).toEqual([{ method: 'POST', status: 201, key: expect.any(String) }]);
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual([first]); // stored, though the visitor was told "Not sent"
    await w.failed(first).getByRole('button', { name: 'Retry' }).click();
    await w.delivered(first).waitFor();
    expect(replayed).toEqual([cut[0]!.key]);
    expect(parley.storedTickets(site)).toHaveLength(1);
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual([first]);

    // The follow-up: the live stream brings its stored copy, which is shown in place of the local
    // one, and a replay with the same Idempotency-Key confirms it, with no Retry pressed.
    const second = 'And this one?';
    await sendMessage(page, second);
    await w.delivered(second).waitFor();
    expect(cut).toHaveLength(2);
    expect(cut[1]!.status).toBe(201);
    await expect.poll(() => replayed).toEqual([cut[0]!.key, cut[1]!.key]);
    await expect.poll(() => w.dialog.locator('li.m.visitor.sending, li.m.visitor.failed').count()).toBe(0);

    expect(parley.storedTickets(site)).toHaveLength(1);
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual([first, second]);
    expect(parley.storedSpend(site)).toBe(10_000 + 1_000); // charged once each
    expect(await w.messages.allTextContents()).toEqual([expect.stringContaining(first), expect.stringContaining(second)]);
    expect(await mostCopies()).toEqual({ [first]: 1, [second]: 1 });
  });
});

describe('a site at its limits', () => {
  it('7a. rate limit reached: the widget says how long to wait, keeps the message, and nothing is stored', async () => {
    const { parley, host } = e;
    const limit = 3; // one token per 20 s: none comes back while the test runs
    const site = await parley.createSite({ origins: [host.origin], rate_limit_per_minute: limit });
    const url = host.set('/rate-limited', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('scenario 7a rate limit');
    const w = widget(page);

    await page.goto(url);
    await w.launcher.click();
    await w.dialog.waitFor({ state: 'visible' });
    // Someone else on the same site spends the remaining tokens.
    let burned = 0;
    for (let i = 0; i < limit + 2; i++) {
      const r = await parley.widget(site, 'GET', '/config', host.origin);
      if (r.status === 429) break;
      expect(r.status).toBe(200);
      burned++;
    }
    expect(burned).toBeLessThan(limit); // the widget's own /config took one
    expect((await parley.widget(site, 'GET', '/config', host.origin)).status).toBe(429);

    const text = 'Is anyone there?';
    const refused = page.waitForResponse((r) => r.url().endsWith('/tickets') && r.request().method() === 'POST');
    await sendMessage(page, text);
    const answer = await refused;
    expect(answer.status()).toBe(429);
    const retryAfter = Number(answer.headers()['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);

    await w.failed(text).waitFor();
    expect(await w.failed(text).textContent()).toContain('Not sent');
    const notice = (await w.notice.textContent()) ?? '';
    expect(notice).toMatch(/^Too many messages\. Try again in \d+ seconds?\.$/);
    // The wait it shows is the server's Retry-After, which the browser let it read.
    expect(Number(/in (\d+) second/.exec(notice)![1])).toBe(retryAfter);
    // The wait (about 20 s at 3 a minute) counts down; the later seconds are shown without a new alert.
    expect(retryAfter).toBeGreaterThan(2);
    const note = w.dialog.locator('p.note');
    await expect.poll(() => note.textContent(), { timeout: 3_000 }).toBe(`Too many messages. Try again in ${retryAfter - 1} seconds.`);
    expect(await note.getAttribute('role')).toBeNull();

    expect(parley.storedTickets(site)).toEqual([]);
    expect(parley.storedSpend(site)).toBe(0);
  });

  it('7b. spend cap reached: the widget says it has reached its limit for today, keeps the message, and nothing more is stored or charged', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/capped', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('scenario 7b spend cap');
    const w = widget(page);

    await page.goto(url);
    await w.launcher.click();
    const first = 'First question';
    await sendMessage(page, first);
    await w.delivered(first).waitFor();
    expect(parley.storedSpend(site)).toBe(10_000);

    // The owner caps the day at what was spent: the next message ($0.001) would go over.
    await parley.patchSite(site, { daily_spend_cap_micros: 10_000 });
    const second = 'Second question';
    const refused = page.waitForResponse((r) => /\/tickets\/[^/]+\/messages$/.test(r.url()) && r.request().method() === 'POST');
    await sendMessage(page, second);
    expect((await refused).status()).toBe(402);
    await w.failed(second).waitFor();
    expect(await w.notice.textContent()).toBe('Chat has reached its limit for today. Please try again later.');
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual([first]);
    expect(parley.storedSpend(site)).toBe(10_000);

    // Raised again, the kept message goes through on retry, once.
    await parley.patchSite(site, { daily_spend_cap_micros: 5_000_000 });
    await w.failed(second).getByRole('button', { name: 'Retry' }).click();
    await w.delivered(second).waitFor();
    expect(await w.notice.count()).toBe(0);
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual([first, second]);
    expect(parley.storedSpend(site)).toBe(11_000);
  });
});
