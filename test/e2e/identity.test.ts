// Issue 9 (identity verification) in a real browser: a signed-in user finds their conversation in a
// second browser context, a site that requires identity shows no launcher until the page calls
// Parley.identify, and an expired token is renewed through the page's token-expired handler.
// Tokens are signed here, in Node, with jose, as a site's backend would; the page signs nothing.
import { importPKCS8, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { sendMessage, widget } from './lib/browser.js';
import { PAGE_API_STUB, scriptTag, shopPage } from './lib/host.js';
import type { E2eSite } from './lib/parley.js';
import { useE2e } from './lib/suite.js';

const e = useE2e();

const ADA = { name: 'Ada Lovelace', email: 'ada@example.com' };

type Sign = (sub: string, times?: { iat: number; exp: number }) => Promise<string>;

/** A signing key the server made for `site` (POST .../signing-keys with {}), and a signer using it. */
async function signingKey(site: E2eSite): Promise<Sign> {
  const res = await e.parley.api('POST', `/v1/sites/${site.serviceId}/signing-keys`, {});
  if (res.status !== 201) throw new Error(`POST signing-keys answered ${res.status}: ${JSON.stringify(res.body)}`);
  const kid: string = res.body.signing_key.id;
  const key = await importPKCS8(res.body.private_key_pem as string, 'ES256');
  return (sub, times) =>
    new SignJWT(ADA)
      .setProtectedHeader({ alg: 'ES256', kid })
      .setSubject(sub)
      .setIssuedAt(times?.iat)
      .setExpirationTime(times?.exp ?? '1h')
      .sign(key);
}

/** A site that requires identity (set through PATCH /v1/sites/:sid), with a signing key. */
async function identitySite(): Promise<{ site: E2eSite; sign: Sign }> {
  const { parley, host } = e;
  const site = await parley.createSite({ origins: [host.origin] });
  await parley.patchSite(site, { widget: { require_identity: true } });
  const config = await parley.widget(site, 'GET', '/config', host.origin);
  expect(config.body.widget.require_identity).toBe(true);
  return { site, sign: await signingKey(site) };
}

/** A conversation the user started earlier on another device, through the widget API. */
async function earlierTicket(site: E2eSite, token: string, message: string): Promise<string> {
  const res = await e.parley.widget(site, 'POST', '/tickets', e.host.origin, { message, user_token: token });
  if (res.status !== 201) throw new Error(`POST /tickets answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.ticket.id as string;
}

const stored = (serviceId: string) => `parley:${serviceId}`;

describe('a signed-in user', () => {
  it('starts a ticket tied to their user id, and finds it, with a later agent reply, in a second browser context', async () => {
    const { parley, host } = e;
    const { site, sign } = await identitySite();

    // Device 1: the site's backend put a token on the tag.
    const first = await e.session('identity device 1');
    const w1 = widget(first.page);
    await first.page.goto(host.set('/account', shopPage(scriptTag(parley.base, site, `data-user-token="${await sign('user-42')}"`))));
    await w1.launcher.click();
    const question = 'Signed in on my laptop: where is my refund?';
    await sendMessage(first.page, question);
    await w1.delivered(question).waitFor();

    const list = await parley.api('GET', `/v1/sites/${site.serviceId}/tickets`);
    expect(list.body.tickets).toHaveLength(1);
    const ticket = list.body.tickets[0] as { id: string; user: unknown };
    expect(ticket.user).toEqual({ id: 'user-42', ...ADA });

    // Device 2: a fresh context (no storage), another token of the same user.
    const second = await e.session('identity device 2');
    const w2 = widget(second.page);
    await second.page.goto(host.set('/account-2', shopPage(scriptTag(parley.base, site, `data-user-token="${await sign('user-42')}"`))));
    await w2.launcher.click();
    await w2.message(question).waitFor();
    expect(await second.page.evaluate((k) => localStorage.getItem(k), stored(site.serviceId))).toContain(ticket.id);
    expect(await w2.dialog.getByRole('textbox', { name: /name/i }).count()).toBe(0); // a continued conversation asks no name

    // The agent answers; both devices show it live.
    const answer = 'Refunded this morning, Ada.';
    await parley.reply(site, ticket.id, answer);
    await w2.message(answer).waitFor();
    await w1.message(answer).waitFor();

    // Device 2 writes into the same ticket.
    await sendMessage(second.page, 'Thank you!');
    await w2.delivered('Thank you!').waitFor();
    await w1.message('Thank you!').waitFor();
    expect(parley.storedTickets(site)).toHaveLength(1);
    expect(parley.storedMessages(site).map((m) => [m.ticket_id, m.author, m.body])).toEqual([
      [ticket.id, 'visitor', question],
      [ticket.id, 'agent', answer],
      [ticket.id, 'visitor', 'Thank you!'],
    ]);

    // Another user on a fresh context sees none of it.
    const third = await e.session('identity other user');
    const w3 = widget(third.page);
    const listed = third.page.waitForResponse((r) => r.request().method() === 'GET' && r.url().includes(`/${site.serviceId}/tickets?`));
    await third.page.goto(host.set('/account-3', shopPage(scriptTag(parley.base, site, `data-user-token="${await sign('user-7')}"`))));
    expect((await (await listed).json()).tickets).toEqual([]);
    await w3.launcher.click();
    await w3.textbox.waitFor();
    expect(await w3.messages.count()).toBe(0);
    expect(await third.page.evaluate((k) => localStorage.getItem(k), stored(site.serviceId))).toBeNull();
  });

  it('gets no launcher on a site requiring identity until the page calls Parley.identify(token)', async () => {
    const { parley, host } = e;
    const { site, sign } = await identitySite();
    const earlier = 'Asked yesterday from my phone';
    const ticketId = await earlierTicket(site, await sign('user-42'), earlier);
    const url = host.set(
      '/signed-out',
      shopPage(`${PAGE_API_STUB}
<script>window.heard = []; Parley.on('ready', function () { window.heard.push('ready'); });</script>
${scriptTag(parley.base, site)}`),
    );
    const { page, consoleErrors } = await e.session('identity launcher waits');
    const w = widget(page);
    const requests: string[] = [];
    page.on('request', (r) => {
      if (r.url().startsWith(parley.base) && r.method() !== 'OPTIONS') requests.push(`${r.method()} ${new URL(r.url()).pathname}`);
    });

    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as { heard: string[] }).heard.includes('ready'));
    expect(await w.host.count()).toBe(1);
    expect(await w.launcher.count()).toBe(0);
    await page.evaluate(() => (window as unknown as { Parley: { open(): void } }).Parley.open()); // remembered, not shown
    expect(await w.dialog.count()).toBe(0);
    expect(requests).toEqual(['GET /widget.js', `GET /v1/widget/${site.serviceId}/config`]);

    // The user signs in: the page hands the widget a token.
    const token = await sign('user-42');
    await page.evaluate((t) => (window as unknown as { Parley: { identify(t: string): void } }).Parley.identify(t), token);
    await w.launcher.waitFor({ state: 'visible' });
    await w.dialog.waitFor({ state: 'visible' }); // the open() asked for while signed out
    await w.message(earlier).waitFor();
    expect(await page.evaluate((k) => localStorage.getItem(k), stored(site.serviceId))).toContain(ticketId);
    await sendMessage(page, 'Signed in now');
    await w.delivered('Signed in now').waitFor();
    expect(parley.storedTickets(site)).toHaveLength(1);

    // Logging out hides it again.
    await page.evaluate(() => (window as unknown as { Parley: { reset(): void } }).Parley.reset());
    await w.launcher.waitFor({ state: 'detached' });
    expect(await page.evaluate((k) => localStorage.getItem(k), stored(site.serviceId))).toBeNull();
    expect(consoleErrors.filter((t) => t.startsWith('Parley:'))).toEqual([]);
  });

  it('with an expired token on the tag, is asked for a new one once through token-expired and then sees the conversation', async () => {
    const { parley, host } = e;
    const { site, sign } = await identitySite();
    const earlier = 'Asked before my token expired';
    await earlierTicket(site, await sign('user-42'), earlier);
    const now = Math.floor(Date.now() / 1000);
    const expired = await sign('user-42', { iat: now - 7_200, exp: now - 3_600 });
    // The site's backend: a fresh token for the signed-in user.
    host.set('/parley-token', { body: await sign('user-42'), type: 'text/plain' });
    const url = host.set(
      '/stale',
      shopPage(`${PAGE_API_STUB}
<script>
  window.asked = 0;
  Parley.on('token-expired', async function () {
    window.asked++;
    Parley.identify(await (await fetch('/parley-token')).text());
  });
</script>
${scriptTag(parley.base, site, `data-user-token="${expired}"`)}`),
    );
    const { page } = await e.session('identity token expired');
    const w = widget(page);

    await page.goto(url);
    await w.launcher.click();
    await w.message(earlier).waitFor();
    await sendMessage(page, 'Still me');
    await w.delivered('Still me').waitFor();
    expect(await page.evaluate(() => (window as unknown as { asked: number }).asked)).toBe(1);
    expect(parley.storedTickets(site)).toHaveLength(1);
  });
});
