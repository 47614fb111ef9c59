// Scenarios 1 and 5 of issue 6 and the real-browser stored-XSS check of issue 7: a visitor on an
// allowed origin chats with an agent, by mouse and by keyboard, and hostile message bodies render
// as text.
import { describe, expect, it } from 'vitest';
import { keepScreenshot, launcherFocused, sendMessage, widget } from './lib/browser.js';
import { PAGE_API_STUB, scriptTag, shopPage } from './lib/host.js';
import { useE2e } from './lib/suite.js';

const e = useE2e();

describe('a visitor on an allowed origin', () => {
  it('1. sees the launcher, sends a message, gets the agent reply live within 2 s, and keeps the conversation on reload', async () => {
    const { parley, host } = e;
    // Made through the CLI, as an owner following the README would.
    const site = parley.createSiteWithCli('E2E Shop', host.origin);
    const url = host.set('/chat', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('scenario 1 allowed origin');
    const w = widget(page);

    await page.goto(url);
    await w.launcher.waitFor({ state: 'visible' });
    expect(await w.launcher.getAttribute('aria-label')).toBe('Open chat with E2E Shop');
    expect(await w.launcher.getAttribute('aria-expanded')).toBe('false');
    // Closed, nothing but the launcher covers the page.
    const middle = await page.evaluate(() => document.elementFromPoint(innerWidth / 2, innerHeight / 2)?.tagName.toLowerCase());
    expect(middle).not.toBe('parley-widget');
    await keepScreenshot(page, 'desktop-closed');

    await w.launcher.click();
    await w.dialog.waitFor({ state: 'visible' });
    expect(await w.dialog.getAttribute('aria-label')).toBe('Chat with E2E Shop');

    // Good guest manners: nothing stored and no cookie before the first message.
    expect(await page.evaluate(() => [localStorage.length, document.cookie])).toEqual([0, '']);

    const question = 'Hello! Where is my order #1234?';
    const stream = page.waitForResponse((r) => r.url().includes('/events') && r.status() === 200);
    await sendMessage(page, question);
    await w.delivered(question).waitFor();

    // The ticket exists, through the management API and in the database.
    const list = await parley.api('GET', `/v1/sites/${site.serviceId}/tickets`);
    expect(list.status).toBe(200);
    expect(list.body.tickets).toHaveLength(1);
    const ticketId: string = list.body.tickets[0].id;
    expect(list.body.tickets[0]).toMatchObject({ status: 'open', environment: 'live', page_url: url });
    const one = await parley.api('GET', `/v1/sites/${site.serviceId}/tickets/${ticketId}`);
    expect(one.body.messages.map((m: { author: string; body: string }) => [m.author, m.body])).toEqual([['visitor', question]]);
    expect(parley.storedTickets(site)).toEqual([{ id: ticketId, status: 'open', environment: 'live' }]);
    expect(parley.storedSpend(site)).toBe(10_000); // ticket.create at the default price
    expect(await page.evaluate((k) => localStorage.getItem(k), `parley:${site.serviceId}`)).toContain(ticketId);

    // The live stream is open; an agent reply shows up in the open widget within 2 s.
    await stream;
    const answer = 'It ships tomorrow, sorry for the wait.';
    const sentAt = Date.now();
    await parley.reply(site, ticketId, answer);
    await w.message(answer).waitFor({ state: 'visible', timeout: Math.max(1, 2_000 - (Date.now() - sentAt)) });
    expect(Date.now() - sentAt).toBeLessThan(2_000);
    expect(await w.message(answer).getAttribute('class')).toContain('agent');
    // The agent's name (author_name "Sam") is shown just above the reply, and not read out twice.
    const name = w.message(answer).locator('xpath=preceding-sibling::li[1]');
    expect(await name.textContent()).toBe('Sam');
    expect(await name.getAttribute('aria-hidden')).toBe('true');
    const [label, bubble] = [await name.boundingBox(), await w.message(answer).boundingBox()];
    expect(label!.height).toBeGreaterThan(8);
    expect(label!.y + label!.height).toBeLessThanOrEqual(bubble!.y);
    expect(label!.x).toBeGreaterThanOrEqual(bubble!.x);
    // Screen readers hear it.
    await expect.poll(() => w.host.locator('.sr[aria-live]').textContent()).toContain(answer);
    await keepScreenshot(page, 'desktop-open');

    // Reload: the same conversation, from the server, without a second ticket.
    await page.reload();
    await w.launcher.waitFor({ state: 'visible' });
    await w.launcher.click();
    await w.message(answer).waitFor();
    expect(await w.messages.allTextContents()).toEqual([
      expect.stringContaining(question),
      expect.stringContaining(answer),
    ]);
    expect(await w.dialog.getByRole('textbox', { name: /name/i }).count()).toBe(0); // no visitor fields once a ticket exists
    expect(parley.storedTickets(site)).toHaveLength(1);
    expect(parley.storedMessages(site).map((m) => [m.author, m.body])).toEqual([
      ['visitor', question],
      ['agent', answer],
    ]);
  });

  it('1b. sees an agent reply written while the live stream was still connecting', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/race', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('scenario 1b reply before the stream opens');
    const w = widget(page);
    // Holds the widget's first event-stream request until the agent has answered: a slow network,
    // or an agent (or an auto-responder) quicker than the stream's connection.
    let reached!: () => void;
    let release!: () => void;
    const streamAsked = new Promise<void>((r) => (reached = r));
    const answered = new Promise<void>((r) => (release = r));
    let held = false;
    await page.route(/\/tickets\/[^/]+\/events$/, async (route) => {
      if (!held) {
        held = true;
        reached();
        await answered;
      }
      await route.continue();
    });

    await page.goto(url);
    await w.launcher.click();
    await sendMessage(page, 'Anyone?');
    await w.delivered('Anyone?').waitFor();
    await streamAsked;
    const [ticket] = parley.storedTickets(site);
    await parley.reply(site, ticket!.id, 'Yes, right here.');
    release();
    await w.message('Yes, right here.').waitFor({ timeout: 2_000 });
  });

  it('5. can do it all by keyboard: Tab to the launcher, Enter opens, type and send, Escape closes, focus returns', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/keyboard', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('scenario 5 keyboard only');
    const w = widget(page);

    await page.goto(url);
    await w.launcher.waitFor({ state: 'visible' });
    let tabs = 0;
    while (!(await launcherFocused(page)) && tabs < 10) {
      await page.keyboard.press('Tab');
      tabs++;
    }
    expect(await launcherFocused(page), 'Tab reaches the launcher').toBe(true);
    expect(tabs).toBe(2); // the page's one link, then the launcher
    // A visible focus ring.
    const ring = await w.launcher.evaluate((el) => getComputedStyle(el).boxShadow);
    expect(ring).not.toBe('none');

    await page.keyboard.press('Enter');
    await w.dialog.waitFor({ state: 'visible' });
    // Focus moves into the panel, to the message box.
    await expect
      .poll(() => page.evaluate(() => document.querySelector('parley-widget')?.shadowRoot?.activeElement?.getAttribute('aria-label')))
      .toBe('Message');

    const text = 'Typed without a mouse';
    await page.keyboard.type(text);
    await page.keyboard.press('Enter');
    await w.delivered(text).waitFor();
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual([text]);

    await page.keyboard.press('Escape');
    await w.dialog.waitFor({ state: 'detached' });
    await expect.poll(() => launcherFocused(page), { timeout: 2_000 }).toBe(true);
    expect(await w.launcher.getAttribute('aria-expanded')).toBe('false');

    // Enter on the focused launcher opens it again; Escape from the launcher closes it too.
    await page.keyboard.press('Enter');
    await w.dialog.waitFor({ state: 'visible' });
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Escape');
    await w.dialog.waitFor({ state: 'detached' });
  });
});

describe('the script tag', () => {
  it('works loaded with defer, and injected after page load with calls queued on the stub before it', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const src = `${parley.base}/widget.js`;
    const deferred = host.set(
      '/defer',
      shopPage(`<script src="${src}" data-key="${site.key}" data-service-id="${site.serviceId}" defer></script>`),
    );
    // The README's stub, then the tag added by a tag manager once the page has loaded.
    const injected = host.set(
      '/injected',
      shopPage(`${PAGE_API_STUB}
<script>
  window.heard = [];
  Parley.on('ready', function () { window.heard.push('ready'); });
  Parley.on('open', function () { window.heard.push('open'); });
  Parley.open();
  addEventListener('load', function () {
    setTimeout(function () {
      var s = document.createElement('script');
      s.src = ${JSON.stringify(src)};
      s.setAttribute('data-key', ${JSON.stringify(site.key)});
      s.setAttribute('data-service-id', ${JSON.stringify(site.serviceId)});
      document.body.appendChild(s);
    }, 50);
  });
</script>`),
    );
    const { page, consoleErrors } = await e.session('script tag loading');
    const w = widget(page);

    await page.goto(deferred);
    await w.launcher.waitFor({ state: 'visible' });

    await page.goto(injected);
    await w.dialog.waitFor({ state: 'visible' }); // the queued open() ran once the widget was ready
    expect(await page.evaluate(() => (window as unknown as { heard: string[] }).heard)).toEqual(['ready', 'open']);
    await sendMessage(page, 'Hello from an injected tag');
    await w.delivered('Hello from an injected tag').waitFor();
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual(['Hello from an injected tag']);
    expect(consoleErrors.filter((t) => t.startsWith('Parley:'))).toEqual([]);
  });
});

describe('stored XSS, rendered in a real browser', () => {
  it('shows hostile agent replies and visitor messages as inert text', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/xss', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('stored xss');
    const w = widget(page);

    const visitorPayload = '<img src=x onerror="window.__xss=\'visitor\'">';
    const replies = [
      '<img src=x onerror="window.__xss=1">',
      '<svg onload="window.__xss=2"><circle r=9></circle></svg>',
      '[click me](javascript:window.__xss=3)',
      '<a href="javascript:window.__xss=4">a link</a>',
      'JaVaScRiPt:window.__xss=5',
      '<iframe src="javascript:parent.__xss=6"></iframe>',
      '<script>window.__xss=7</script>',
      'data:text/html,<script>window.__xss=8</script>',
      'see https://example.com/"><img src=x onerror=window.__xss=9> now',
      '<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=10>',
      '<noscript><p title="</noscript><img src=x onerror=window.__xss=11>">',
    ];

    await page.goto(url);
    await w.launcher.click();
    const stream = page.waitForResponse((r) => r.url().includes('/events') && r.status() === 200);
    await sendMessage(page, visitorPayload);
    await w.delivered(visitorPayload).waitFor();
    await stream;
    const [ticket] = parley.storedTickets(site);
    for (const body of replies) await parley.reply(site, ticket!.id, body);
    await expect.poll(() => w.messages.count(), { timeout: 5_000 }).toBe(1 + replies.length);

    const check = async () => {
      // Each body is shown exactly as written, character for character.
      const bodies = await w.dialog.locator('li.m .b').allTextContents();
      for (const body of [visitorPayload, ...replies]) expect(bodies).toContain(body);
      const found = await w.host.evaluate((h) => {
        const msgs = h.shadowRoot!.querySelector('.msgs')!;
        return {
          elements: [...msgs.querySelectorAll('img, svg, script, iframe, style, math, table, noscript, p')].map((el) => el.tagName),
          handlers: [...msgs.querySelectorAll('*')].filter((el) => [...el.attributes].some((a) => a.name.startsWith('on'))).length,
          hrefs: [...msgs.querySelectorAll('a')].map((a) => a.getAttribute('href')),
          pageImages: document.images.length,
          xss: (window as unknown as { __xss?: unknown }).__xss,
        };
      });
      expect(found.elements).toEqual([]);
      expect(found.handlers).toBe(0);
      expect(found.pageImages).toBe(0);
      expect(found.xss).toBeUndefined();
      // Only the one real https link became a link.
      expect(found.hrefs).toEqual(['https://example.com/']);
    };
    // Give an onerror or onload the moment it would need to fire.
    await page.waitForTimeout(300);
    await check();

    // Stored and returned verbatim (escaping is the renderer's job, not the database's).
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual([visitorPayload, ...replies]);
    const api = await parley.api('GET', `/v1/sites/${site.serviceId}/tickets/${ticket!.id}`);
    expect(api.body.messages.map((m: { body: string }) => m.body)).toEqual([visitorPayload, ...replies]);

    // The same messages loaded from the server after a reload (another code path) are inert too.
    await page.reload();
    await w.launcher.click();
    await expect.poll(() => w.messages.count(), { timeout: 5_000 }).toBe(1 + replies.length);
    await page.waitForTimeout(300);
    await check();
  });
});

describe('a visitor reading back through a long conversation', () => {
  it('keeps their place when a reply arrives, and follows the newest message when at the bottom or sending', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/history', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('scroll keeps place');
    const w = widget(page);
    const list = w.dialog.locator('ol.msgs');
    const scroll = () => list.evaluate((el) => ({ top: Math.round(el.scrollTop), bottom: Math.round(el.scrollHeight - el.clientHeight) }));

    await page.goto(url);
    await w.launcher.click();
    const stream = page.waitForResponse((r) => r.url().includes('/events') && r.status() === 200);
    await sendMessage(page, 'Question 0');
    await w.delivered('Question 0').waitFor();
    await stream;
    const [ticket] = parley.storedTickets(site);
    for (let i = 1; i <= 15; i++) await parley.reply(site, ticket!.id, `Answer ${i}, a line long enough to take some room`);
    await w.message('Answer 15').waitFor();
    await expect.poll(async () => { const s = await scroll(); return s.bottom > 300 && s.top === s.bottom; }).toBe(true);

    await list.evaluate((el) => (el.scrollTop = 0));
    await parley.reply(site, ticket!.id, 'A reply while reading history');
    await w.message('A reply while reading history').waitFor();
    await page.waitForTimeout(100);
    expect((await scroll()).top).toBe(0);

    await list.evaluate((el) => (el.scrollTop = el.scrollHeight));
    await parley.reply(site, ticket!.id, 'A reply at the bottom');
    await w.message('A reply at the bottom').waitFor();
    await expect.poll(async () => { const s = await scroll(); return s.top === s.bottom; }).toBe(true);

    await list.evaluate((el) => (el.scrollTop = 0));
    await sendMessage(page, 'My own message');
    await w.delivered('My own message').waitFor();
    await expect.poll(async () => { const s = await scroll(); return s.top === s.bottom; }).toBe(true);
  });
});
