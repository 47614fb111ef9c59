// The stored-XSS corpus of the reliability suite, rendered by the real widget: every payload, sent by
// an agent or typed by the visitor, shows as its own text and nothing in it runs or becomes markup.
import { fireEvent, waitFor, within } from '@testing-library/preact';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { XSS_CORPUS } from '../../test/reliability/xss-corpus.ts';
import { fakeParley, type FakeParley, start } from './testing.ts';
import type { Widget } from './widget.tsx';

let fake: FakeParley;
let widget: Widget | undefined;

beforeEach(() => {
  fake = fakeParley();
  localStorage.clear();
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
});

afterEach(() => {
  widget?.destroy();
  widget = undefined;
  delete (window as { Parley?: unknown }).Parley;
  vi.restoreAllMocks();
});

const root = () => (widget?.host.shadowRoot?.querySelector('.root') as HTMLElement | null) ?? document.createElement('div');

async function openAndSay(text: string) {
  await waitFor(() => expect(widget?.host.shadowRoot?.querySelector('.launcher')).toBeTruthy());
  fireEvent.click(widget!.host.shadowRoot!.querySelector('.launcher')!);
  const box = await within(root()).findByRole('textbox', { name: 'Message' });
  fireEvent.input(box, { target: { value: text } });
  fireEvent.keyDown(box, { key: 'Enter' });
}

/** Bubbles hold text and http(s)/mailto links only; nowhere in the shadow root is a handler or a script URL. */
function expectInert(): void {
  const shadow = widget!.host.shadowRoot!;
  for (const bubble of shadow.querySelectorAll('.m .b')) {
    for (const el of bubble.querySelectorAll('*')) expect(el.tagName, bubble.textContent ?? '').toBe('A');
  }
  for (const el of shadow.querySelectorAll('*')) {
    for (const attr of [...el.attributes]) {
      expect(attr.name.startsWith('on'), `${el.tagName} has ${attr.name}`).toBe(false);
      if (attr.name === 'href' || attr.name === 'src' || attr.name === 'action') expect(attr.value).toMatch(/^(https?:|mailto:)/i);
    }
  }
}

describe('stored XSS corpus rendered by the widget', () => {
  it(`shows all ${XSS_CORPUS.length} payloads from an agent as inert text`, async () => {
    const alert = vi.fn();
    vi.stubGlobal('alert', alert);
    widget = start(fake);
    await openAndSay('hi');
    await waitFor(() => expect(fake.openStreams()).toBe(1));
    const [ticketId] = [...fake.tickets.keys()];
    for (const payload of XSS_CORPUS) fake.agentReply(ticketId!, payload);
    await waitFor(() => expect(root().querySelectorAll('.m.agent .b')).toHaveLength(XSS_CORPUS.length + 1));
    const bubbles = [...root().querySelectorAll('.m.agent .b')].slice(1);
    expect(bubbles.map((b) => b.textContent)).toEqual([...XSS_CORPUS]);
    expectInert();
    await new Promise((r) => setTimeout(r, 50));
    expect(alert).not.toHaveBeenCalled();
  });

  it('shows payloads the visitor types as inert text too', async () => {
    const alert = vi.fn();
    vi.stubGlobal('alert', alert);
    widget = start(fake);
    const typed = XSS_CORPUS.filter((_, i) => i % 4 === 0);
    await openAndSay(typed[0]!);
    for (const payload of typed.slice(1)) {
      const box = await within(root()).findByRole('textbox', { name: 'Message' });
      fireEvent.input(box, { target: { value: payload } });
      fireEvent.keyDown(box, { key: 'Enter' });
      await waitFor(() => expect([...root().querySelectorAll('.m.visitor .b')].map((b) => b.textContent)).toContain(payload.trim()));
    }
    expect([...root().querySelectorAll('.m.visitor .b')].map((b) => b.textContent)).toEqual(typed.map((p) => p.trim()));
    expectInert();
    expect(alert).not.toHaveBeenCalled();
  });
});
