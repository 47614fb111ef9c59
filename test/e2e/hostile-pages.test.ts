// Scenarios 3 and 4 of issue 6: host pages that make life hard for an embedded widget. A strict
// Content-Security-Policy (no inline styles or scripts, connections only to Parley) and CSS that
// resets, hides and covers everything.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { hitTest, keepScreenshot, launcherFocused, sendMessage, widget } from './lib/browser.js';
import { scriptTag, shopPage } from './lib/host.js';
import { useE2e } from './lib/suite.js';

const e = useE2e();

const px = (v: string) => Number.parseFloat(v);
const TRANSPARENT = ['transparent', 'rgba(0, 0, 0, 0)'];

/** Computed styles of an element, as the page would read them. */
function styleOf(page: Page, selector: string, props: string[]) {
  return page.locator(selector).evaluate(
    (el, names) => Object.fromEntries(names.map((n) => [n, getComputedStyle(el).getPropertyValue(n)])),
    props,
  );
}

describe('a host page with a strict Content-Security-Policy', () => {
  it('3. renders the widget styled, works end to end, and fires no securitypolicyviolation', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const csp = `default-src 'none'; script-src ${parley.base}; connect-src ${parley.base}; style-src 'self'; img-src 'self'`;
    host.set('/strict.css', { body: 'body{font:16px/1.5 Georgia,serif;margin:0 24px;background:#fdfcf7}', type: 'text/css; charset=utf-8' });
    const url = host.set('/strict', {
      body: shopPage(scriptTag(parley.base, site), { head: '<link rel="stylesheet" href="/strict.css">' }),
      headers: { 'Content-Security-Policy': csp },
    });
    const { page, context, log } = await e.session('scenario 3 strict csp');
    // Installed by the browser driver before any page script, so the page's CSP does not apply to it.
    await context.addInitScript(() => {
      const seen: string[] = [];
      (window as unknown as { __violations: string[] }).__violations = seen;
      document.addEventListener(
        'securitypolicyviolation',
        (ev) => seen.push(`${ev.effectiveDirective} blocked ${ev.blockedURI || '(inline)'} at ${ev.sourceFile}:${ev.lineNumber}`),
        true,
      );
    });
    const violations = () => page.evaluate(() => (window as unknown as { __violations: string[] }).__violations);
    const w = widget(page);

    const response = await page.goto(url);
    expect(response?.headers()['content-security-policy']).toBe(csp);
    expect((await styleOf(page, 'body', ['font-family']))['font-family']).toContain('Georgia'); // the page's own CSS loads

    await w.launcher.waitFor({ state: 'visible' });
    const launcher = await w.launcher.evaluate((el) => {
      const s = getComputedStyle(el);
      return { position: s.position, background: s.backgroundColor, width: s.width, height: s.height, radius: s.borderRadius, shadow: s.boxShadow };
    });
    expect(launcher.position).toBe('fixed');
    expect(TRANSPARENT).not.toContain(launcher.background);
    expect(launcher.background).toBe('rgb(37, 99, 235)'); // the site's default colour #2563eb
    expect(launcher).toMatchObject({ width: '56px', height: '56px', radius: '28px' });
    expect(launcher.shadow).not.toBe('none');

    await w.launcher.click();
    await w.dialog.waitFor({ state: 'visible' });
    const panel = await w.dialog.evaluate((el) => {
      const s = getComputedStyle(el);
      return { position: s.position, background: s.backgroundColor, display: s.display, radius: s.borderRadius };
    });
    expect(panel).toEqual({ position: 'fixed', background: 'rgb(255, 255, 255)', display: 'flex', radius: '12px' });

    const stream = page.waitForResponse((r) => r.url().includes('/events') && r.status() === 200);
    await sendMessage(page, 'Hello from a strict page');
    await w.delivered('Hello from a strict page').waitFor();
    await stream;
    const [ticket] = parley.storedTickets(site);
    await parley.reply(site, ticket!.id, 'We read you, strict page.');
    await w.message('We read you, strict page.').waitFor({ timeout: 2_000 });
    expect(parley.storedMessages(site).map((m) => m.author)).toEqual(['visitor', 'agent']);
    await keepScreenshot(page, 'strict-csp-open');

    expect(await violations()).toEqual([]);
    expect(log.filter((l) => /Content Security Policy|Refused to/i.test(l))).toEqual([]);

    // Control: the observer and the policy are live. An inline style on this page is refused and seen.
    await page.evaluate(() => {
      const s = document.createElement('style');
      s.textContent = 'p { color: red }';
      document.head.append(s);
    });
    await expect.poll(violations).toEqual([expect.stringContaining('style-src')]);
  });
});

const HOSTILE_CSS = `
* { all: unset !important; }
div { display: none !important; }
html { font-size: 4px !important; }
parley-widget {
  display: none !important; transform: scale(0.1) !important; filter: blur(8px) opacity(0) !important; opacity: 0 !important;
  visibility: hidden !important; contain: strict !important; overflow: hidden !important; clip-path: inset(50%) !important;
}
button, svg, span, ol, li, textarea, input, p, h2 { display: none !important; font-size: 2px !important; opacity: 0 !important; }
#cover {
  display: block !important; position: fixed !important; top: 0 !important; left: 0 !important;
  width: 100vw !important; height: 100vh !important; background: rgba(220, 38, 38, 0.25) !important;
  z-index: Z !important; pointer-events: auto !important;
}
`;

function hostilePage(tag: string, z: number): string {
  return shopPage(tag, {
    head: `<style>${HOSTILE_CSS.replace('Z', String(z))}</style>`,
    body: '<div><p>Content that the page itself hides.</p></div><div id="cover"></div><p>Tiny text.</p>',
  });
}

describe('a host page with hostile CSS', () => {
  it('4. keeps the launcher visible, clickable and legible under resets, hidden divs, 4px root text and a full-page overlay', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/hostile', hostilePage(scriptTag(parley.base, site), 999_999_999));
    const { page } = await e.session('scenario 4 hostile css');
    const w = widget(page);

    await page.goto(url);
    await w.launcher.waitFor({ state: 'visible' });
    // The overlay is really there, and really covers the page (else this test proves nothing).
    expect(await page.evaluate(() => document.elementFromPoint(200, 300)?.id)).toBe('cover');
    expect(await page.evaluate(() => getComputedStyle(document.documentElement).fontSize)).toBe('4px');

    // Visible: a full-size, opaque, coloured button inside the viewport.
    const box = (await w.launcher.boundingBox())!;
    const viewport = page.viewportSize()!;
    expect(box.width).toBeGreaterThanOrEqual(44);
    expect(box.height).toBeGreaterThanOrEqual(44);
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.y).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(viewport.width);
    expect(box.y + box.height).toBeLessThanOrEqual(viewport.height);
    const look = await w.launcher.evaluate((el) => {
      const s = getComputedStyle(el);
      const icon = getComputedStyle(el.querySelector('svg')!);
      return { display: s.display, visibility: s.visibility, opacity: s.opacity, background: s.backgroundColor, icon: icon.width, iconDisplay: icon.display };
    });
    expect(look).toMatchObject({ display: 'flex', visibility: 'visible', opacity: '1', icon: '26px', iconDisplay: 'block' });
    expect(TRANSPARENT).not.toContain(look.background);
    // The page's !important rules on the element itself lose to the shadow root's :host rules.
    const onHost = await w.host.evaluate((el) => {
      const s = getComputedStyle(el);
      return { display: s.display, position: s.position, transform: s.transform, filter: s.filter, opacity: s.opacity, visibility: s.visibility, contain: s.contain, overflow: s.overflow, clipPath: s.clipPath };
    });
    expect(onHost).toEqual({ display: 'block', position: 'fixed', transform: 'none', filter: 'none', opacity: '1', visibility: 'visible', contain: 'none', overflow: 'visible', clipPath: 'none' });

    // Clickable: the pointer at its centre lands on the launcher, not the overlay, and a real click opens it.
    const hit = await hitTest(page, w.launcher);
    expect(hit.top).toBe('parley-widget');
    expect(hit.hitsTarget, `the pointer hits ${hit.inner}`).toBe(true);
    await page.mouse.click(hit.x, hit.y);
    await w.dialog.waitFor({ state: 'visible' });

    // Legible: the panel's text keeps its own sizes whatever the page's root font size.
    const sizes = await w.dialog.evaluate((d) => {
      const size = (sel: string) => getComputedStyle(d.querySelector(sel)!).fontSize;
      return { heading: size('h2'), greeting: size('li.m .b'), composer: size('textarea') };
    });
    expect(px(sizes.heading)).toBeGreaterThanOrEqual(12);
    expect(px(sizes.greeting)).toBeGreaterThanOrEqual(12);
    expect(px(sizes.composer)).toBeGreaterThanOrEqual(16);
    const composer = await hitTest(page, w.textbox);
    expect(composer.hitsTarget, `the pointer hits ${composer.inner}`).toBe(true);

    // It works: type, send, stored.
    const stream = page.waitForResponse((r) => r.url().includes('/events') && r.status() === 200);
    await page.mouse.click(composer.x, composer.y);
    await page.keyboard.type('Can you see me?');
    await page.keyboard.press('Enter');
    await w.delivered('Can you see me?').waitFor();
    await stream;
    await keepScreenshot(page, 'hostile-css-open');

    // Closed again, an agent reply shows as a legible unread badge.
    await page.mouse.click(hit.x, hit.y);
    await w.dialog.waitFor({ state: 'detached' });
    const [ticket] = parley.storedTickets(site);
    await parley.reply(site, ticket!.id, 'Loud and clear.');
    await w.badge.waitFor({ state: 'visible', timeout: 2_000 });
    expect(await w.badge.textContent()).toBe('1');
    const badge = await w.badge.evaluate((el) => {
      const s = getComputedStyle(el);
      return { size: s.fontSize, color: s.color, background: s.backgroundColor, height: el.getBoundingClientRect().height };
    });
    expect(px(badge.size)).toBeGreaterThanOrEqual(12);
    expect(badge.height).toBeGreaterThanOrEqual(16);
    expect(badge.color).not.toBe(badge.background);
    expect(await w.launcher.getAttribute('aria-label')).toBe('Open chat with E2E Shop, 1 unread message');
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual(['Can you see me?', 'Loud and clear.']);
    await keepScreenshot(page, 'hostile-css-closed');
  });

  it('4b. stays on top of an overlay at the highest z-index when the tag sets data-z-index', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/hostile-max', hostilePage(scriptTag(parley.base, site, 'data-z-index="2147483647"'), 2_147_483_647));
    const { page } = await e.session('scenario 4b hostile css max z-index');
    const w = widget(page);

    await page.goto(url);
    await w.launcher.waitFor({ state: 'visible' });
    expect(await page.evaluate(() => document.elementFromPoint(200, 300)?.id)).toBe('cover');
    const hit = await hitTest(page, w.launcher);
    expect(hit.hitsTarget, `the pointer hits ${hit.top} > ${hit.inner}`).toBe(true);
    await page.mouse.click(hit.x, hit.y);
    await w.dialog.waitFor({ state: 'visible' });
    expect((await hitTest(page, w.textbox)).hitsTarget).toBe(true);
  });
});

describe('a host page whose <body> is a containing block for position:fixed', () => {
  // transform, filter, will-change:transform, contain:paint and perspective on <body> (page
  // transition and smooth-scroll libraries set them) make fixed elements inside it scroll with it.
  const BODY_CSS = '<style>body{transform:translateZ(0);min-height:3000px}</style>';

  it('keeps the launcher and the panel in the viewport, with focus return, z-index and the shadow root intact', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/transformed', shopPage(scriptTag(parley.base, site, 'data-z-index="7"'), { head: BODY_CSS }));
    const { page } = await e.session('body containing block');
    const w = widget(page);
    const inViewport = async (box: { x: number; y: number; width: number; height: number } | null) => {
      const v = page.viewportSize()!;
      expect(box).not.toBeNull();
      expect(box!.y).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width).toBeLessThanOrEqual(v.width);
      expect(box!.y + box!.height).toBeLessThanOrEqual(v.height);
    };

    await page.goto(url);
    await w.launcher.waitFor({ state: 'visible' });
    expect(await page.evaluate(() => getComputedStyle(document.body).transform)).not.toBe('none');
    await inViewport(await w.launcher.boundingBox());
    await page.mouse.wheel(0, 1200);
    await expect.poll(() => page.evaluate(() => scrollY)).toBeGreaterThan(0);
    await inViewport(await w.launcher.boundingBox());
    expect(await w.host.evaluate((el) => [Boolean(el.shadowRoot), getComputedStyle(el).zIndex])).toEqual([true, '7']);
    expect((await hitTest(page, w.launcher)).hitsTarget).toBe(true);

    await w.launcher.focus();
    await page.keyboard.press('Enter');
    await w.dialog.waitFor({ state: 'visible' });
    await inViewport(await w.dialog.boundingBox());
    await page.keyboard.press('Escape');
    await w.dialog.waitFor({ state: 'detached' });
    expect(await launcherFocused(page)).toBe(true);
  });

  it('still fills a phone screen with the open panel', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/transformed-phone', shopPage(scriptTag(parley.base, site), { head: BODY_CSS.replace('transform:translateZ(0)', 'filter:saturate(1.01)') }));
    const { page } = await e.session('body containing block phone', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const w = widget(page);
    await page.goto(url);
    await page.evaluate(() => scrollTo(0, 1500));
    await w.launcher.tap();
    await w.dialog.waitFor({ state: 'visible' });
    const panel = (await w.dialog.boundingBox())!;
    expect([panel.x, panel.y, panel.width, panel.height].map(Math.round)).toEqual([0, 0, 390, 844]);
  });
});

describe('a right-to-left host page', () => {
  it('does not half-mirror the English UI: the widget is ltr and lang="en", messages keep their own direction', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/rtl', shopPage(scriptTag(parley.base, site), { head: '<style>html{direction:rtl}body{direction:rtl}</style>' }));
    const { page } = await e.session('rtl page');
    const w = widget(page);
    await page.goto(url);
    await w.launcher.click();
    await w.dialog.waitFor({ state: 'visible' });
    const layout = await w.dialog.evaluate((d) => {
      const x = (sel: string) => d.querySelector(sel)!.getBoundingClientRect().x;
      const root = d.closest('.root')!;
      return {
        lang: root.getAttribute('lang'),
        direction: getComputedStyle(root).direction,
        closeAfterTitle: x('.x') > x('h2'),
        sendAfterBox: x('.send') > x('textarea'),
        emailAfterName: x('input[type=email]') > x('input:not([type])'),
        messageDir: d.querySelector('li.m .b')!.getAttribute('dir'),
      };
    });
    expect(layout).toEqual({ lang: 'en', direction: 'ltr', closeAfterTitle: true, sendAfterBox: true, emailAfterName: true, messageDir: 'auto' });
  });
});
