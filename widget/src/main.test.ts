// The entry point as a page runs it: reading its own tag, however the tag got there.
import { waitFor } from '@testing-library/preact';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { API, fakeParley, type FakeParley, KEY, SERVICE_ID } from './testing.ts';

let fake: FakeParley;
let errors: ReturnType<typeof vi.spyOn>;

beforeEach(() => {
  vi.resetModules();
  fake = fakeParley();
  vi.stubGlobal('fetch', fake.fetch);
  errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
});

afterEach(() => {
  document.querySelectorAll('parley-widget, script').forEach((e) => e.remove());
  delete (window as { Parley?: unknown }).Parley;
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

function addTag(attrs: Record<string, string>, src = 'https://cdn.parley.example/widget.js') {
  const s = document.createElement('script');
  s.src = src;
  s.async = true;
  for (const [k, v] of Object.entries(attrs)) s.setAttribute(k, v);
  document.head.appendChild(s);
  return s;
}

const launcher = () => document.querySelector('parley-widget')?.shadowRoot?.querySelector('button.launcher');

describe('reading the script tag', () => {
  it('starts from a tag injected after the page loaded (no currentScript), using the script origin as API', async () => {
    expect(document.readyState).toBe('complete');
    addTag({ 'data-key': KEY, 'data-service-id': SERVICE_ID });
    await import('./main.tsx');
    await waitFor(() => expect(launcher()).toBeTruthy());
    expect(fake.requests[0]!.url.href).toBe(`https://cdn.parley.example/v1/widget/${SERVICE_ID}/config`);
    expect(errors).not.toHaveBeenCalled();
  });

  it('prefers document.currentScript, with data-api', async () => {
    const decoy = addTag({ 'data-key': 'pk_test_decoy', 'data-service-id': 'other-site' });
    const mine = document.createElement('script');
    mine.src = '/assets/bundle.js'; // a bundler's name: the fallback selector would miss it
    mine.setAttribute('data-key', KEY);
    mine.setAttribute('data-service-id', SERVICE_ID);
    mine.setAttribute('data-api', `${API}/`);
    vi.spyOn(document, 'currentScript', 'get').mockReturnValue(mine);
    await import('./main.tsx');
    await waitFor(() => expect(launcher()).toBeTruthy());
    expect(fake.requests[0]!.url.href).toBe(`${API}/v1/widget/${SERVICE_ID}/config`);
    expect(decoy.isConnected).toBe(true);
  });

  it('waits for <body> when it runs from <head> before the body exists', async () => {
    const body = document.body;
    body.remove();
    try {
      addTag({ 'data-key': KEY, 'data-service-id': SERVICE_ID });
      await import('./main.tsx');
      expect(document.querySelector('parley-widget')).toBeNull();
    } finally {
      document.documentElement.appendChild(body);
    }
    document.dispatchEvent(new Event('DOMContentLoaded'));
    await waitFor(() => expect(launcher()).toBeTruthy());
    // Beside <body>, not in it: a transformed body must not become its containing block.
    expect(document.querySelector('parley-widget')?.parentElement).toBe(document.documentElement);
  });

  it.each([
    [{ 'data-service-id': SERVICE_ID }, /data-key is missing/],
    [{ 'data-key': KEY }, /data-service-id is missing/],
    [{ 'data-key': 'pk_live_short', 'data-service-id': SERVICE_ID }, /data-key is not a valid publishable key/],
    [{ 'data-key': KEY.replace('pk_', 'sk_'), 'data-service-id': SERVICE_ID }, /data-key holds a secret key/],
    [{ 'data-key': KEY, 'data-service-id': 'Acme Help!' }, /data-service-id "Acme Help!" is not a service id/],
    [{ 'data-key': KEY, 'data-service-id': SERVICE_ID, 'data-api': 'javascript:alert(1)' }, /data-api "javascript:alert\(1\)" is not an http\(s\) URL/],
    [{ 'data-key': KEY, 'data-service-id': SERVICE_ID, 'data-z-index': 'top' }, /data-z-index "top" must be a whole number/],
    [{ 'data-key': KEY, 'data-service-id': SERVICE_ID, 'data-open': 'yes please' }, /data-open "yes please" must be "true" or "false"/],
  ])('a missing or malformed attribute (%o) gives one console.error naming it, no widget, no request, no throw', async (attrs, text) => {
    addTag(attrs);
    await expect(import('./main.tsx')).resolves.toBeDefined();
    expect(errors).toHaveBeenCalledTimes(1);
    expect(String(errors.mock.calls[0]![0])).toMatch(text);
    expect(document.querySelector('parley-widget')).toBeNull();
    expect(fake.requests).toHaveLength(0);
    expect((window as { Parley?: unknown }).Parley).toBeUndefined();
  });

  it('names every bad attribute in that one message', async () => {
    addTag({ 'data-z-index': '1e9' });
    await import('./main.tsx');
    expect(errors).toHaveBeenCalledTimes(1);
    const text = String(errors.mock.calls[0]![0]);
    expect(text).toMatch(/data-key is missing.*data-service-id is missing.*data-z-index "1e9"/);
  });

  it('reports a missing tag instead of throwing', async () => {
    await import('./main.tsx');
    expect(errors).toHaveBeenCalledTimes(1);
    expect(String(errors.mock.calls[0]![0])).toMatch(/could not find the widget's <script> tag/);
  });

  it('refuses to start twice when both copies run in <head>, before <body> exists', async () => {
    const body = document.body;
    body.remove();
    try {
      addTag({ 'data-key': KEY, 'data-service-id': SERVICE_ID });
      await import('./main.tsx');
      vi.resetModules();
      addTag({ 'data-key': KEY, 'data-service-id': SERVICE_ID });
      await import('./main.tsx');
    } finally {
      document.documentElement.appendChild(body);
    }
    document.dispatchEvent(new Event('DOMContentLoaded'));
    await waitFor(() => expect(launcher()).toBeTruthy());
    expect(document.querySelectorAll('parley-widget')).toHaveLength(1);
    expect(fake.requests.filter((r) => r.path.endsWith('/config'))).toHaveLength(1);
    expect(errors).toHaveBeenCalledTimes(1);
    expect(String(errors.mock.calls[0]![0])).toMatch(/included twice/);
  });

  it('keeps its widget, not a second one, when the page swapped <body> and ran the tag again', async () => {
    addTag({ 'data-key': KEY, 'data-service-id': SERVICE_ID });
    await import('./main.tsx');
    await waitFor(() => expect(launcher()).toBeTruthy());
    const first = document.querySelector('parley-widget');
    document.body.replaceWith(document.createElement('body')); // Turbo-style navigation
    vi.resetModules();
    addTag({ 'data-key': KEY, 'data-service-id': SERVICE_ID });
    await import('./main.tsx');
    expect([...document.querySelectorAll('parley-widget')]).toEqual([first]);
    expect(first!.isConnected).toBe(true);
    expect(errors).not.toHaveBeenCalled();
    // A real second tag on the new page is still reported.
    vi.resetModules();
    await import('./main.tsx');
    expect(String(errors.mock.calls[0]![0])).toMatch(/included twice/);
  });

  it('puts its widget back when the page removed it and ran the tag again', async () => {
    addTag({ 'data-key': KEY, 'data-service-id': SERVICE_ID });
    await import('./main.tsx');
    await waitFor(() => expect(launcher()).toBeTruthy());
    const first = document.querySelector('parley-widget')!;
    first.remove();
    vi.resetModules();
    await import('./main.tsx');
    expect([...document.querySelectorAll('parley-widget')]).toEqual([first]);
    expect(errors).not.toHaveBeenCalled();
  });

  it('refuses to start twice on one page', async () => {
    addTag({ 'data-key': KEY, 'data-service-id': SERVICE_ID });
    await import('./main.tsx');
    await waitFor(() => expect(launcher()).toBeTruthy());
    vi.resetModules();
    await import('./main.tsx');
    expect(document.querySelectorAll('parley-widget')).toHaveLength(1);
    expect(String(errors.mock.calls[0]![0])).toMatch(/included twice/);
  });
});
