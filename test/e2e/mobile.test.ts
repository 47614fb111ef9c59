// Scenario 8 of issue 6: a phone (390×844, touch). Closed, the launcher is all the widget shows;
// open, the panel fills the screen and the composer stays on screen and usable.
import { describe, expect, it } from 'vitest';
import { hitTest, keepScreenshot, widget } from './lib/browser.js';
import { scriptTag, shopPage } from './lib/host.js';
import { useE2e } from './lib/suite.js';

const e = useE2e();
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

describe('a visitor on a phone', () => {
  it('8. gets a full-screen panel with a composer that is on screen and works', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/phone', shopPage(scriptTag(parley.base, site), { body: '<p>A long product page.</p>'.repeat(40) }));
    const { page } = await e.session('scenario 8 mobile', PHONE);
    const w = widget(page);

    await page.goto(url);
    await w.launcher.waitFor({ state: 'visible' });
    const launcher = (await w.launcher.boundingBox())!;
    expect(launcher.width).toBeGreaterThanOrEqual(44); // a comfortable touch target
    expect(launcher.x + launcher.width).toBeLessThanOrEqual(390);
    expect(launcher.y + launcher.height).toBeLessThanOrEqual(844);
    // Closed, the page stays usable: its middle is the page's, not the widget's.
    expect(await page.evaluate(() => document.elementFromPoint(195, 422)?.tagName.toLowerCase())).not.toBe('parley-widget');
    await keepScreenshot(page, 'mobile-closed');

    await w.launcher.tap();
    await w.dialog.waitFor({ state: 'visible' });
    // Focus moves into the dialog, to its close button: on the message box it would pop the keyboard up at once.
    const focused = () => page.evaluate(() => document.querySelector('parley-widget')?.shadowRoot?.activeElement?.getAttribute('aria-label'));
    expect(await focused()).toBe('Close chat');
    const panel = (await w.dialog.boundingBox())!;
    expect(panel.x).toBeCloseTo(0, 0);
    expect(panel.y).toBeCloseTo(0, 0);
    expect(panel.width).toBeCloseTo(390, 0);
    expect(panel.height).toBeCloseTo(844, 0);
    // The panel, not the page or the launcher, is what the visitor touches anywhere on screen.
    const covered = await page.evaluate(() =>
      [[5, 5], [385, 300], [195, 600], [5, 839]].every(([x, y]) =>
        Boolean(document.querySelector('parley-widget')?.shadowRoot?.elementFromPoint(x!, y!)?.closest('[role="dialog"]')),
      ),
    );
    expect(covered).toBe(true);

    // The composer: on screen, not covered, large enough text that phones do not zoom.
    for (const part of [w.textbox, w.send]) {
      const box = (await part.boundingBox())!;
      expect(box.y).toBeGreaterThanOrEqual(0);
      expect(box.y + box.height).toBeLessThanOrEqual(844);
      expect(box.x + box.width).toBeLessThanOrEqual(390);
    }
    const box = await hitTest(page, w.textbox);
    expect(box.hitsTarget, `the touch lands on ${box.inner}`).toBe(true);
    expect(Number.parseFloat(await w.textbox.evaluate((el) => getComputedStyle(el).fontSize))).toBeGreaterThanOrEqual(16);

    await w.textbox.tap();
    const text = 'Typed on a phone';
    await page.keyboard.type(text);
    await w.send.tap();
    await w.delivered(text).waitFor();
    expect(await w.textbox.inputValue()).toBe('');
    expect(parley.storedMessages(site).map((m) => m.body)).toEqual([text]);
    await keepScreenshot(page, 'mobile-open');

    // An on-screen keyboard that leaves 450 px (the viewport shrinks): the panel follows and the
    // composer stays above the keyboard.
    await page.setViewportSize({ width: 390, height: 450 });
    await expect.poll(async () => (await w.dialog.boundingBox())!.height, { timeout: 2_000 }).toBeCloseTo(450, 0);
    const squeezed = (await w.textbox.boundingBox())!;
    expect(squeezed.y).toBeGreaterThanOrEqual(0);
    expect(squeezed.y + squeezed.height).toBeLessThanOrEqual(450);
    expect((await hitTest(page, w.send)).hitsTarget).toBe(true);
    await page.setViewportSize(PHONE.viewport);

    // The header's close button gives the page back, with the launcher.
    await w.dialog.getByRole('button', { name: 'Close chat' }).tap();
    await w.dialog.waitFor({ state: 'detached' });
    await w.launcher.waitFor({ state: 'visible' });
  });

  it('8b. turned sideways (844×390) still gets the full-screen panel, with the composer above a keyboard', async () => {
    const { parley, host } = e;
    const site = await parley.createSite({ origins: [host.origin] });
    const url = host.set('/phone-landscape', shopPage(scriptTag(parley.base, site), { body: '<p>A long product page.</p>'.repeat(40) }));
    const { page } = await e.session('scenario 8b landscape', { ...PHONE, viewport: { width: 844, height: 390 } });
    const w = widget(page);
    await page.goto(url);
    await w.launcher.tap();
    await w.dialog.waitFor({ state: 'visible' });
    const panel = (await w.dialog.boundingBox())!;
    expect([panel.x, panel.y, panel.width, panel.height].map(Math.round)).toEqual([0, 0, 844, 390]);
    // A landscape keyboard leaves about 200 px: the floating panel would sit behind it, this one follows.
    await page.setViewportSize({ width: 844, height: 200 });
    await expect.poll(async () => (await w.dialog.boundingBox())!.height, { timeout: 2_000 }).toBeCloseTo(200, 0);
    const box = (await w.textbox.boundingBox())!;
    expect(box.y).toBeGreaterThanOrEqual(0);
    expect(box.y + box.height).toBeLessThanOrEqual(200);
    expect((await hitTest(page, w.send)).hitsTarget).toBe(true);
    await keepScreenshot(page, 'mobile-landscape-keyboard');
    await w.textbox.tap();
    await page.keyboard.type('Sent sideways');
    await w.send.tap();
    await w.delivered('Sent sideways').waitFor();
  });
});
