// What a keyboard user, a phone user and a right-to-left reader see in a real browser, beyond the
// numbered scenarios: a focus ring on every control, focus that stays in the widget, text that
// reads in its own direction, and one widget however many times a page includes the tag.
import { describe, expect, it } from 'vitest';
import { launcherFocused, widget } from './lib/browser.js';
import { scriptTag, shopPage } from './lib/host.js';
import { useE2e } from './lib/suite.js';

const e = useE2e();
/** The widget's focus ring (styles.ts): a white and a black band around the control. */
const RING = 'rgb(0, 0, 0) 0px 0px 0px 5px';

describe('a keyboard user', () => {
  it('sees the focus ring on the launcher, not only its drop shadow', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/ring', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('manners focus ring');
    const w = widget(page);

    await page.goto(url);
    await w.launcher.waitFor({ state: 'visible' });
    const resting = await w.launcher.evaluate((el) => getComputedStyle(el).boxShadow);
    expect(resting).not.toContain(RING);
    for (let tabs = 0; tabs < 10 && !(await launcherFocused(page)); tabs++) await page.keyboard.press('Tab');
    expect(await launcherFocused(page)).toBe(true);
    expect(await w.launcher.evaluate((el) => getComputedStyle(el).boxShadow)).toContain(RING);

    await page.keyboard.press('Enter');
    await w.dialog.waitFor({ state: 'visible' });
    await page.keyboard.press('Shift+Tab'); // from the message box back to the email field
    const field = await page.evaluate(() => {
      const el = document.querySelector('parley-widget')!.shadowRoot!.activeElement!;
      return [el.getAttribute('aria-label'), getComputedStyle(el).boxShadow];
    });
    expect(field).toEqual(['Your email (optional)', expect.stringContaining(RING)]);
  });
});

describe('a keyboard user in forced colours (Windows High Contrast)', () => {
  it('sees a focus ring, and the edges of the launcher, the panel and the bubbles', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/forced', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('manners forced colours');
    const w = widget(page);
    await page.emulateMedia({ forcedColors: 'active' });
    /** The outline as drawn: forced colours drop box-shadow, but draw an outline in a system colour. */
    const edge = (el: Element) => {
      const s = getComputedStyle(el);
      const visible = (style: string, width: string, color: string) => style !== 'none' && Number.parseFloat(width) > 0 && !/rgba\(.*, 0\)|transparent/.test(color);
      return visible(s.outlineStyle, s.outlineWidth, s.outlineColor) || visible(s.borderTopStyle, s.borderTopWidth, s.borderTopColor);
    };

    await page.goto(url);
    await w.launcher.waitFor({ state: 'visible' });
    expect(await page.evaluate(() => matchMedia('(forced-colors: active)').matches)).toBe(true);
    expect(await w.launcher.evaluate(edge)).toBe(true);
    for (let tabs = 0; tabs < 10 && !(await launcherFocused(page)); tabs++) await page.keyboard.press('Tab');
    expect(await w.launcher.evaluate((el) => Number.parseFloat(getComputedStyle(el).outlineWidth))).toBeGreaterThanOrEqual(2);
    await page.keyboard.press('Enter');
    await w.dialog.waitFor({ state: 'visible' });
    expect(await w.dialog.evaluate(edge)).toBe(true);
    expect(await w.dialog.locator('li.m').first().evaluate(edge)).toBe(true);
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab'); // message box, email, name, then the header's close button
    const focused = await page.evaluate(() => {
      const el = document.querySelector('parley-widget')!.shadowRoot!.activeElement!;
      const s = getComputedStyle(el);
      return [el.getAttribute('aria-label'), s.outlineStyle, Number.parseFloat(s.outlineWidth) >= 2];
    });
    expect(focused).toEqual(['Close chat', 'solid', true]);
  });
});

describe('a visitor writing a longer message', () => {
  it('sees the message box grow with each line, up to a limit after which it scrolls', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/grow', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('manners message box grows');
    const w = widget(page);
    const height = async () => (await w.textbox.boundingBox())!.height;

    await page.goto(url);
    await w.launcher.click();
    const one = await height();
    await w.textbox.fill('Hello,\nmy order #1234\nhas not arrived.');
    expect(await height()).toBeGreaterThanOrEqual(one + 40); // two more lines of 20 px
    await w.textbox.fill('and so on\n'.repeat(30));
    expect(await height()).toBeLessThanOrEqual(120);
    expect(await w.textbox.evaluate((el) => el.scrollHeight > el.clientHeight)).toBe(true);
    await w.textbox.fill('');
    expect(await height()).toBe(one);
  });
});

describe('a keyboard user whose message failed', () => {
  it('retries it with Enter and stays in the widget, so Escape still closes it', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/retry-keyboard', shopPage(scriptTag(parley.base, site)));
    const { page, context } = await e.session('manners retry by keyboard');
    const w = widget(page);

    await page.goto(url);
    await w.launcher.click();
    await context.setOffline(true);
    const text = 'Sent from a train';
    await w.textbox.fill(text);
    await w.textbox.press('Enter');
    await w.failed(text).waitFor();
    await context.setOffline(false);

    await page.keyboard.press('Shift+Tab'); // from the message box to the Retry button
    expect(await page.evaluate(() => document.querySelector('parley-widget')!.shadowRoot!.activeElement?.textContent)).toBe('Retry');
    await page.keyboard.press('Enter');
    await w.delivered(text).waitFor();
    expect(await page.evaluate(() => document.querySelector('parley-widget')!.shadowRoot!.activeElement?.getAttribute('aria-label'))).toBe('Message');
    await page.keyboard.press('Escape');
    await w.dialog.waitFor({ state: 'detached' });
    expect(await launcherFocused(page)).toBe(true);
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual([text]);
  });
});

describe('a visitor who comes back later', () => {
  it('finds the replies written while they were away counted on the launcher, and the count gone once read', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/away', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('manners unread while away');
    const w = widget(page);

    await page.goto(url);
    await w.launcher.click();
    const stream = page.waitForResponse((r) => r.url().includes('/events') && r.status() === 200);
    await w.textbox.fill('Do you ship to Norway?');
    await w.textbox.press('Enter');
    await stream;
    const [ticket] = parley.storedTickets(site);
    await parley.reply(site, ticket!.id, 'Let me check.');
    await w.message('Let me check.').waitFor(); // read with the chat open

    await page.goto('about:blank'); // the visitor leaves; the agent answers meanwhile
    await parley.reply(site, ticket!.id, 'Yes, we do.');
    await parley.reply(site, ticket!.id, 'Delivery takes 3 days.');
    await page.goto(url);
    await expect.poll(() => w.launcher.getAttribute('aria-label')).toBe('Open chat with E2E Shop, 2 unread messages');
    expect(await w.badge.textContent()).toBe('2');

    await w.launcher.click();
    await w.message('Delivery takes 3 days.').waitFor();
    // The widget follows the stream only once the stored conversation is loaded and counted.
    const loaded = page.waitForResponse((r) => r.url().includes('/events') && r.status() === 200);
    await page.reload();
    await loaded;
    await w.launcher.waitFor({ state: 'visible' });
    expect(await w.launcher.getAttribute('aria-label')).toBe('Open chat with E2E Shop');
    expect(await w.badge.count()).toBe(0);
  });
});

describe('a page that includes the tag twice', () => {
  it('gets one widget and one console.error when both copies run in <head>, before <body> exists', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const sync = (tag: string) => tag.replace(' async>', '>'); // blocking scripts: both run before the parser reaches <body>
    const tag = sync(scriptTag(parley.base, site));
    const url = host.set('/twice-in-head', `<!doctype html><html lang="en"><head><meta charset="utf-8">${tag}${tag}</head><body><h1>Shop</h1></body></html>`);
    const { page, consoleErrors } = await e.session('manners twice in head');
    const configs: string[] = [];
    page.on('request', (r) => r.url().endsWith('/config') && configs.push(r.url()));

    await page.goto(url);
    await widget(page).launcher.waitFor({ state: 'visible' });
    await page.waitForLoadState('networkidle');
    expect(await page.locator('parley-widget').count()).toBe(1);
    expect(configs).toHaveLength(1);
    expect(consoleErrors).toEqual([expect.stringMatching(/included twice/)]);
  });
});

describe('a right-to-left reader', () => {
  it('sees Arabic and Hebrew messages, and what they type, laid out right to left, English left to right', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/rtl', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('manners rtl');
    const w = widget(page);
    const direction = (l: import('playwright-core').Locator) => l.evaluate((el) => getComputedStyle(el).direction);

    await page.goto(url);
    await w.launcher.click();
    const question = 'مرحبا، أين طلبي رقم 1234؟';
    await w.textbox.fill(question);
    expect(await direction(w.textbox)).toBe('rtl');
    await w.textbox.press('Enter');
    await w.delivered(question).waitFor();
    const [ticket] = parley.storedTickets(site);
    await parley.reply(site, ticket!.id, 'שלום! ההזמנה שלך (מספר 1234) בדרך.');
    await parley.reply(site, ticket!.id, 'Hello! It ships tomorrow.');
    await w.message('Hello!').waitFor();

    expect(await direction(w.delivered(question).locator('.b'))).toBe('rtl');
    expect(await direction(w.message('שלום').locator('.b'))).toBe('rtl');
    expect(await direction(w.message('Hello!').locator('.b'))).toBe('ltr');
    // The sentence's full stop ends the line on the left, where a right-to-left reader ends.
    const stop = await w.message('שלום').locator('.b').evaluate((el) => {
      const text = el.firstChild!;
      const range = document.createRange();
      range.setStart(text, text.textContent!.length - 1);
      range.setEnd(text, text.textContent!.length);
      return range.getBoundingClientRect().x - el.getBoundingClientRect().x;
    });
    expect(stop).toBeLessThan(10);
  });
});

describe('a visitor on a phone', () => {
  it('types into fields of at least 16px, so iOS Safari does not zoom the page into them', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/phone-fields', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('manners phone fields', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const w = widget(page);

    await page.goto(url);
    await w.launcher.tap();
    const fields = w.dialog.locator('input, textarea');
    expect(await fields.count()).toBe(3); // name, email, message
    const sizes = await fields.evaluateAll((els) => els.map((el) => [el.getAttribute('aria-label'), Number.parseFloat(getComputedStyle(el).fontSize)]));
    for (const [label, size] of sizes) expect(size, `${label}`).toBeGreaterThanOrEqual(16);
  });
  it('keeps Tab inside the full-screen panel, which hides the page it would otherwise wander into', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/phone-tab', shopPage(scriptTag(parley.base, site)));
    const { page } = await e.session('manners phone tab', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const w = widget(page);
    const focused = () =>
      page.evaluate(() => {
        const inner = document.querySelector('parley-widget')?.shadowRoot?.activeElement;
        return document.activeElement?.tagName === 'PARLEY-WIDGET' && inner?.closest('[role="dialog"]') ? inner.getAttribute('aria-label') : `page: ${document.activeElement?.tagName}`;
      });

    await page.goto(url);
    await w.launcher.tap();
    await w.dialog.waitFor({ state: 'visible' });
    const seen: (string | null)[] = [];
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      seen.push(await focused());
    }
    // Focus starts on the close button (no keyboard popping up on a phone), then goes round.
    expect(seen).toEqual(['Your name (optional)', 'Your email (optional)', 'Message', 'Close chat', 'Your name (optional)', 'Your email (optional)']);
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    expect(await focused()).toBe('Message'); // from the first control back round to the last
    await page.keyboard.press('Escape');
    await w.dialog.waitFor({ state: 'detached' });
    expect(await launcherFocused(page)).toBe(true);
  });
});
