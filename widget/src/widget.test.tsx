// Behaviour of the booted widget against a faked network: the flows of issue 5.
import { fireEvent, waitFor, within } from '@testing-library/preact';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { API, fakeParley, type FakeParley, KEY, refusal, respond, SERVICE_ID, shadowOf, start } from './testing.ts';
import { createApi } from './api.ts';
import { createEmitter } from './events.ts';
import type { PageApi } from './pageApi.ts';
import { createStorage } from './storage.ts';
import { createStore } from './store.ts';
import type { Widget } from './widget.tsx';

let fake: FakeParley;
let widget: Widget | undefined;
let errors: ReturnType<typeof vi.spyOn>;

beforeEach(() => {
  fake = fakeParley();
  localStorage.clear();
  errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
});

afterEach(() => {
  vi.useRealTimers();
  widget?.destroy();
  widget = undefined;
  delete (window as { Parley?: unknown }).Parley;
  vi.restoreAllMocks();
});

// Queried inside the widget's root element (testing-library prints Elements, not ShadowRoots).
const root = () => (widget?.host.shadowRoot?.querySelector('.root') as HTMLElement | null) ?? document.createElement('div');
const ui = () => within(root());
async function launcher() {
  await waitFor(() => expect(widget?.host.shadowRoot?.querySelector('.launcher')).toBeTruthy());
  return widget!.host.shadowRoot!.querySelector('.launcher') as HTMLButtonElement;
}

async function openPanel() {
  fireEvent.click(await launcher());
  return ui().findByRole('dialog');
}

async function type(text: string) {
  const box = await ui().findByRole('textbox', { name: 'Message' });
  fireEvent.input(box, { target: { value: text } });
  fireEvent.keyDown(box, { key: 'Enter' });
}

/** The page API as a host page sees it. */
/** Starts the widget, opens it, sends `text` and waits for the live stream: the widget and the new ticket's id. */
async function chatLive(text: string): Promise<{ w: Widget; ticketId: string }> {
  const w = (widget = start(fake));
  await openPanel();
  await type(text);
  await waitFor(() => expect(fake.openStreams()).toBe(1));
  return { w, ticketId: [...fake.tickets.keys()][0]! };
}

const Parley = () => (window as unknown as { Parley: PageApi }).Parley;

/** A ticket created by another tab, straight on the fake server. */
function fakeTicket() {
  return fake.createTicketDirectly('Started in another tab');
}

const saved = () => localStorage.getItem(`parley:${SERVICE_ID}`);
/** The messages kept unsent, each under its own key. */
const unsentStored = () =>
  Object.keys(localStorage)
    .filter((k) => k.startsWith(`parley:${SERVICE_ID}:u:`))
    .map((k) => JSON.parse(localStorage.getItem(k)!) as Record<string, unknown>);

describe('start-up', () => {
  it('asks only for /config, and shows the launcher once it answered', async () => {
    widget = start(fake);
    const button = await launcher();
    expect(button.getAttribute('aria-expanded')).toBe('false');
    expect(fake.requests.map((r) => `${r.method} ${r.url.href}`)).toEqual([`GET ${API}/v1/widget/${SERVICE_ID}/config`]);
    expect(fake.requests[0]!.headers['x-parley-key']).toBe(KEY);
  });

  it('makes no request when the panel opens on a first visit', async () => {
    widget = start(fake);
    await openPanel();
    await new Promise((r) => setTimeout(r, 20));
    expect(fake.requests).toHaveLength(1);
  });

  it('writes nothing to storage and sets no cookie before the first message', async () => {
    const setItem = vi.spyOn(Storage.prototype, 'setItem');
    widget = start(fake);
    await openPanel();
    await ui().findByText('Hi! How can we help?');
    expect(setItem).not.toHaveBeenCalled();
    expect(localStorage.length).toBe(0);
    expect(document.cookie).toBe('');
    await type('Hello');
    await waitFor(() => expect(saved()).not.toBeNull());
    // The message as Send is pressed (under its own key, removed once confirmed), then the ticket.
    expect(setItem.mock.calls.map(([k]) => k)).toEqual([expect.stringMatching(`^parley:${SERVICE_ID}:u:`), `parley:${SERVICE_ID}`]);
    expect(localStorage.length).toBe(1);
    expect(document.cookie).toBe('');
  });

  it('covers nothing but the launcher while closed', async () => {
    widget = start(fake);
    await launcher();
    expect(ui().queryByRole('dialog')).toBeNull();
    const shadow = widget.host.shadowRoot!;
    const visible = [...shadow.querySelectorAll('*')].filter((e) => !e.closest('.launcher') && !e.classList.contains('sr'));
    expect(visible.map((e) => e.className)).toEqual(['root right']);
  });
});

describe('conversation', () => {
  it('creates the ticket with the first message and keeps it per service id', async () => {
    widget = start(fake);
    await openPanel();
    fireEvent.input(ui().getByRole('textbox', { name: 'Your name (optional)' }), { target: { value: 'Ada' } });
    fireEvent.input(ui().getByRole('textbox', { name: 'Your email (optional)' }), { target: { value: 'ada@example.com' } });
    await type('  My order is late  ');
    await waitFor(() => expect(fake.tickets.size).toBe(1));
    const post = fake.requests.find((r) => r.method === 'POST')!;
    expect(post.path).toBe(`/v1/widget/${SERVICE_ID}/tickets`);
    expect(post.body).toEqual({
      message: 'My order is late',
      visitor: { name: 'Ada', email: 'ada@example.com' },
      page_url: location.href,
    });
    expect(post.headers['content-type']).toBe('application/json');
    expect(post.headers['idempotency-key']).toMatch(/^[\w-]{16,}$/);
    const [ticketId] = [...fake.tickets.keys()];
    await waitFor(() => expect(JSON.parse(saved()!)).toEqual({ ticketId, visitorToken: `vt_${ticketId}` }));
    expect(await ui().findByText('My order is late')).toBeTruthy();
    expect(ui().queryByText('Not sent')).toBeNull();
    expect(ui().queryByRole('textbox', { name: 'Your name (optional)' })).toBeNull();
  });

  it.each(['jose@example.c', 'josé@example.com', 'a..b@example.com', 'ada@example', "ada'@example.com"])(
    'asks again, before sending anything, for an email the API would refuse: %s',
    async (email) => {
      widget = start(fake);
      await openPanel();
      const field = ui().getByRole('textbox', { name: 'Your email (optional)' });
      fireEvent.input(field, { target: { value: email } });
      await type('Where is my parcel?');
      expect((await ui().findByRole('alert')).textContent).toBe('Please enter a valid email address, or leave it empty.');
      expect(field.getAttribute('aria-invalid')).toBe('true');
      expect(fake.requests.filter((r) => r.method === 'POST')).toEqual([]);
      expect((ui().getByRole('textbox', { name: 'Message' }) as HTMLTextAreaElement).value).toBe('Where is my parcel?');
      fireEvent.input(field, { target: { value: 'jose@example.com' } });
      // Editing the address takes the complaint away at once, not only at the next send.
      expect(ui().queryByRole('alert')).toBeNull();
      expect(field.getAttribute('aria-invalid')).toBeNull();
      fireEvent.keyDown(ui().getByRole('textbox', { name: 'Message' }), { key: 'Enter' });
      await waitFor(() => expect(fake.tickets.size).toBe(1));
      expect(fake.requests.find((r) => r.method === 'POST')!.body).toMatchObject({ visitor: { email: 'jose@example.com' } });
      expect(ui().queryByRole('alert')).toBeNull();
    },
  );

  it('sends the page URL without its #fragment, where OAuth and magic-link tokens live; the query is kept', async () => {
    const was = location.href;
    history.replaceState(null, '', '/account/welcome?step=2#access_token=SECRET&state=x');
    try {
      widget = start(fake);
      await openPanel();
      await type('Hello');
      await waitFor(() => expect(fake.tickets.size).toBe(1));
      expect(fake.requests.find((r) => r.method === 'POST')!.body!.page_url).toBe('https://shop.example/account/welcome?step=2');
    } finally {
      history.replaceState(null, '', was);
    }
  });

  it('refuses an email over 254 characters instead of cutting it to another address', async () => {
    widget = start(fake);
    await openPanel();
    const long = `${'a'.repeat(255 - '@example.com'.length)}@example.com`;
    const field = ui().getByRole('textbox', { name: 'Your email (optional)' }) as HTMLInputElement;
    expect(field.maxLength).toBeLessThan(0); // no maxLength: a paste would be cut silently
    fireEvent.input(field, { target: { value: long } });
    await type('Hello');
    expect((await ui().findByRole('alert')).textContent).toBe('Please enter a valid email address, or leave it empty.');
    expect(fake.requests.filter((r) => r.method === 'POST')).toEqual([]);
    fireEvent.input(field, { target: { value: long.slice(1) } }); // 254 characters
    fireEvent.keyDown(ui().getByRole('textbox', { name: 'Message' }), { key: 'Enter' });
    await waitFor(() => expect(fake.tickets.size).toBe(1));
  });

  it('continues the stored conversation after a reload, and posts to it', async () => {
    widget = start(fake);
    await openPanel();
    await type('First question');
    await waitFor(() => expect(saved()).not.toBeNull());
    const [ticketId] = [...fake.tickets.keys()];
    widget.destroy();
    fake.requests.length = 0;

    widget = start(fake); // the reload: a new widget over the same storage
    await openPanel();
    expect(await ui().findByText('First question')).toBeTruthy();
    const load = fake.requests.find((r) => r.path.endsWith('/messages'))!;
    expect(load.method).toBe('GET');
    expect(load.headers['x-visitor-token']).toBe(`vt_${ticketId}`);
    await type('Second question');
    await waitFor(() => expect(fake.tickets.get(ticketId!)!.messages.map((m) => m.body)).toEqual(['First question', 'Second question']));
    const post = fake.requests.find((r) => r.method === 'POST')!;
    expect(post.path).toBe(`/v1/widget/${SERVICE_ID}/tickets/${ticketId}/messages`);
    expect(post.body).toEqual({ message: 'Second question' });
    expect(post.headers['x-visitor-token']).toBe(`vt_${ticketId}`);
    expect(fake.tickets.size).toBe(1);
  });

  it('forgets a stored ticket the server no longer knows and starts fresh', async () => {
    localStorage.setItem(`parley:${SERVICE_ID}`, JSON.stringify({ ticketId: 'tkt_gone', visitorToken: 'vt_x' }));
    widget = start(fake);
    await launcher();
    await waitFor(() => expect(saved()).toBeNull());
    await openPanel();
    await type('Hello again');
    await waitFor(() => expect(fake.tickets.size).toBe(1));
    expect(fake.requests.filter((r) => r.method === 'POST').map((r) => r.path)).toEqual([`/v1/widget/${SERVICE_ID}/tickets`]);
  });

  it('shows an agent reply that arrives on the event stream, and announces it', async () => {
    widget = start(fake);
    const messages: unknown[] = [];
    Parley().on('message', (m) => messages.push(m));
    await openPanel();
    await type('Is anyone there?');
    await waitFor(() => expect(fake.openStreams()).toBe(1));
    const stream = fake.requests.find((r) => r.path.endsWith('/events'))!;
    expect(stream.headers['x-parley-key']).toBe(KEY);
    expect(stream.headers['x-visitor-token']).toMatch(/^vt_/);
    const [ticketId] = [...fake.tickets.keys()];
    fake.agentReply(ticketId!, 'Yes, Sam here.');
    expect(await ui().findByText('Yes, Sam here.')).toBeTruthy();
    const live = shadowOf(widget).querySelector('[aria-live="polite"]')!;
    expect(live.textContent).toBe('Sam: Yes, Sam here.');
    expect(messages.map((m) => (m as { body: string }).body)).toEqual(['Is anyone there?', 'Yes, Sam here.']);
  });

  it("fires the page's message event for new messages only, not for the history a reload reads", async () => {
    const ticket = fake.createTicketDirectly('Earlier question');
    fake.agentReply(ticket.ticketId, 'Earlier answer');
    localStorage.setItem(`parley:${SERVICE_ID}`, JSON.stringify(ticket));
    widget = start(fake);
    const messages: string[] = [];
    Parley().on('message', (m) => messages.push((m as { body: string }).body));
    await openPanel();
    expect(await ui().findByText('Earlier answer')).toBeTruthy();
    await waitFor(() => expect(fake.openStreams()).toBe(1));
    fake.agentReply(ticket.ticketId, 'A new answer');
    expect(await ui().findByText('A new answer')).toBeTruthy();
    await type('Thanks');
    await waitFor(() => expect(messages).toEqual(['A new answer', 'Thanks']));
  });

  it('announces each of several replies that arrive together, each once, and not the history on a reload', async () => {
    const { ticketId } = await chatLive('Hello');
    const live = () => [...shadowOf(widget!).querySelector('[aria-live="polite"]')!.children].map((c) => c.textContent);
    const before = new Set(live());
    // One element per announcement, added and never rewritten: a screen reader speaks each addition once.
    const added: string[] = [];
    const watch = new MutationObserver((records) => {
      for (const r of records) for (const n of r.addedNodes) added.push(n.textContent ?? '');
    });
    watch.observe(shadowOf(widget!).querySelector('[aria-live="polite"]')!, { childList: true, subtree: true, characterData: true });
    fake.agentReply(ticketId, 'Burst 1');
    fake.agentReply(ticketId, 'Burst 2');
    fake.agentReply(ticketId, 'Burst 3');
    await ui().findByText('Burst 3');
    await new Promise((r) => setTimeout(r, 0));
    watch.disconnect();
    expect(before.size).toBe(0);
    expect(added).toEqual(['Sam: Burst 1', 'Sam: Burst 2', 'Sam: Burst 3']);
    widget!.destroy();
    widget = start(fake); // the reload reads the history: nothing is announced
    await openPanel();
    await ui().findByText('Burst 3');
    expect(live()).toEqual([]);
  });

  it("shows the agent's name above their reply, and nothing extra for a reply without one", async () => {
    const { w, ticketId } = await chatLive('Hello');
    fake.agentReply(ticketId!, 'Dana here, how can I help?', 'Dana');
    const bubble = (await ui().findByText('Dana here, how can I help?')).closest('li')!;
    const label = bubble.previousElementSibling as HTMLElement;
    expect(label.tagName).toBe('LI');
    expect(label.textContent).toBe('Dana');
    expect(label.className).toBe('n');
    // Screen readers hear the name once, from the message itself ("Dana: ..."), not from the label.
    expect(label.getAttribute('aria-hidden')).toBe('true');
    expect(bubble.querySelector('.sr')!.textContent).toBe('Dana: ');

    fake.agentReply(ticketId!, 'A reply from the team', null);
    const unnamed = (await ui().findByText('A reply from the team')).closest('li')!;
    expect(unnamed.previousElementSibling).toBe(bubble);
    expect(unnamed.querySelector('.sr')!.textContent).toBe('Acme Help: ');
    expect(shadowOf(w).querySelectorAll('li.n')).toHaveLength(1);
  });

  it('counts replies that came while the visitor was away as unread on the next page, and only those', async () => {
    const { w, ticketId } = await chatLive('Hello');
    fake.agentReply(ticketId!, 'Read with the chat open');
    expect(await ui().findByText('Read with the chat open')).toBeTruthy();
    w.destroy(); // the visitor leaves the page
    fake.agentReply(ticketId!, 'Written while away');
    fake.agentReply(ticketId!, 'And another');

    widget = start(fake); // and comes back later
    await launcher();
    const button = await ui().findByRole('button', { name: 'Open chat with Acme Help, 2 unread messages' });
    expect(button.querySelector('.badge')!.textContent).toBe('2');
    fireEvent.click(button);
    expect(await ui().findByText('And another')).toBeTruthy();
    widget.destroy();

    widget = start(fake); // everything was read: no count on the next page
    await launcher();
    await waitFor(() => expect(fake.requests.filter((r) => r.path.endsWith('/messages'))).toHaveLength(2));
    expect(await ui().findByRole('button', { name: 'Open chat with Acme Help' })).toBeTruthy();
  });

  it('reads a conversation of more than one page to its end: nothing old is counted unread or announced', async () => {
    const { w, ticketId } = await chatLive('Hello');
    w.destroy();
    for (let i = 1; i <= 120; i++) fake.agentReply(ticketId, `Reply ${i}`);
    widget = start(fake);
    await openPanel(); // all 121 read with the chat open
    expect(await ui().findByText('Reply 120', {}, { timeout: 5_000 })).toBeTruthy();
    widget.destroy();
    fake.agentReply(ticketId, 'Written while away'); // the 122nd message: on the second page

    const from = fake.requests.length;
    widget = start(fake);
    // Read off the element: role queries over 122 messages are too slow for findByRole's polling.
    const label = () => shadowOf(widget!).querySelector('button.launcher')?.getAttribute('aria-label');
    await waitFor(() => expect(label()).toBe('Open chat with Acme Help, 1 unread message'), { timeout: 5_000 });
    const button = shadowOf(widget).querySelector('button.launcher') as HTMLElement;
    expect(button.querySelector('.badge')!.textContent).toBe('1');
    const all = fake.tickets.get(ticketId)!.messages;
    const pages = fake.requests.slice(from).filter((r) => r.method === 'GET' && r.path.endsWith('/messages'));
    expect(pages.map((r) => r.url.searchParams.get('after'))).toEqual([null, all[99]!.id]);
    // The stream resumes after the newest message: nothing comes twice, nothing old is announced.
    await waitFor(() => expect(fake.openStreams()).toBe(1));
    expect(fake.requests.filter((r) => r.path.endsWith('/events')).at(-1)!.headers['last-event-id']).toBe(all.at(-1)!.id);
    expect(shadowOf(widget).querySelector('[aria-live="polite"]')!.textContent).toBe('');
    fireEvent.click(button);
    expect(await ui().findByText('Written while away')).toBeTruthy();
    expect(ui().getAllByText(/^Reply \d+$/)).toHaveLength(120);
  });

  it('counts unread agent replies on the launcher while closed, and clears the count on open', async () => {
    widget = start(fake);
    await openPanel();
    await type('Hello');
    await waitFor(() => expect(fake.openStreams()).toBe(1));
    fireEvent.keyDown(ui().getByRole('dialog'), { key: 'Escape' });
    const [ticketId] = [...fake.tickets.keys()];
    fake.agentReply(ticketId!, 'One');
    fake.agentReply(ticketId!, 'Two');
    const button = await ui().findByRole('button', { name: 'Open chat with Acme Help, 2 unread messages' });
    expect(button.querySelector('.badge')!.textContent).toBe('2');
    fireEvent.click(button);
    await ui().findByRole('dialog');
    expect(ui().getByRole('button', { name: 'Hide chat', expanded: true }).querySelector('.badge')).toBeNull();
  });
});

describe('never losing a message', () => {
  it.each([
    ['offline', 'network' as const],
    ['a 503', refusal(503, 'internal_error')],
  ])('keeps a message that failed (%s) and retries it once with the same Idempotency-Key', async (_, failure) => {
    widget = start(fake);
    await openPanel();
    fake.failNext((r) => r.method === 'POST', failure);
    await type('Please keep me');
    expect(await ui().findByText('Not sent')).toBeTruthy();
    expect(ui().getByText('Please keep me')).toBeTruthy();
    expect(saved()).toBeNull(); // no ticket yet
    expect(unsentStored()).toEqual([expect.objectContaining({ message: 'Please keep me' })]);
    fireEvent.click(ui().getByRole('button', { name: 'Retry' }));
    await waitFor(() => expect(fake.tickets.size).toBe(1));
    await waitFor(() => expect(ui().queryByText('Not sent')).toBeNull());
    const posts = fake.requests.filter((r) => r.method === 'POST');
    expect(posts).toHaveLength(2);
    expect(posts[1]!.headers['idempotency-key']).toBe(posts[0]!.headers['idempotency-key']);
    expect(posts[1]!.body).toEqual(posts[0]!.body);
    expect(ui().getAllByText('Please keep me')).toHaveLength(1);
  });

  it('keeps focus in the widget when the pressed Retry button goes away', async () => {
    widget = start(fake);
    await openPanel();
    fake.failNext((r) => r.method === 'POST', 'network');
    await type('Try me again');
    const retry = await ui().findByRole('button', { name: 'Retry' });
    retry.focus();
    fireEvent.click(retry);
    await waitFor(() => expect(ui().queryByText('Not sent')).toBeNull());
    expect(retry.isConnected).toBe(false);
    expect(widget.host.shadowRoot!.activeElement?.getAttribute('aria-label')).toBe('Message');
  });

  /** The most copies of `body` the conversation ever showed at once, from now on. */
  function copiesShown(body: string) {
    const seen = { max: 0 };
    const shadow = shadowOf(widget!);
    const count = () => {
      const n = [...shadow.querySelectorAll('li.m')].filter((li) => li.querySelector('.b')?.textContent === body).length;
      seen.max = Math.max(seen.max, n);
    };
    new MutationObserver(count).observe(shadow, { subtree: true, childList: true, characterData: true, attributes: true });
    return seen;
  }

  const posts = () => fake.requests.filter((r) => r.method === 'POST');
  const settled = () => waitFor(() => expect(widget!.store.get().items.filter((i) => i.state)).toEqual([]));

  it.each(['before the failure', 'after the failure'] as const)(
    'shows a message whose answer was lost once when the stream brings its stored copy %s, and confirms it with the same Idempotency-Key',
    async (copy) => {
      widget = start(fake);
      await openPanel();
      await type('Hello');
      await waitFor(() => expect(fake.openStreams()).toBe(1));
      const text = 'Did this arrive?';
      const shown = copiesShown(text);
      fake.loseAnswer((r) => r.method === 'POST', copy);
      await type(text);
      await waitFor(() => expect(posts()).toHaveLength(3)); // the ticket, the lost answer, its replay
      await settled();
      expect(posts()[2]!.headers['idempotency-key']).toBe(posts()[1]!.headers['idempotency-key']);
      expect(ui().getAllByText(text)).toHaveLength(1);
      expect(ui().queryByText('Not sent')).toBeNull();
      expect(shown.max).toBe(1);
      const [ticket] = [...fake.tickets.values()];
      expect(ticket!.messages.map((m) => m.body)).toEqual(['Hello', text]);
    },
  );

  it('still delivers its own message when the same text, sent from another tab, arrives while it is "Not sent"', async () => {
    widget = start(fake);
    await openPanel();
    await type('Hello');
    await waitFor(() => expect(fake.openStreams()).toBe(1));
    fake.failNext((r) => r.method === 'POST', 'network'); // this one never reached the server
    await type('Same words');
    expect(await ui().findByText('Not sent')).toBeTruthy();
    const [ticketId] = [...fake.tickets.keys()];
    fake.otherTabWrites(ticketId!, 'Same words');
    await waitFor(() => expect(posts()).toHaveLength(3));
    await settled();
    expect(ui().getAllByText('Same words')).toHaveLength(2);
    expect(fake.tickets.get(ticketId!)!.messages.map((m) => m.body)).toEqual(['Hello', 'Same words', 'Same words']);
    expect(ui().queryByText('Not sent')).toBeNull();
  });

  it('shows the message as "Not sent" again when the replay that would confirm the stored copy fails too', async () => {
    widget = start(fake);
    await openPanel();
    await type('Hello');
    await waitFor(() => expect(fake.openStreams()).toBe(1));
    fake.loseAnswer((r) => r.method === 'POST', 'after the failure');
    await type('Are you there?');
    expect(await ui().findByText('Not sent')).toBeTruthy();
    fake.failNext((r) => r.method === 'POST', 'network'); // the background replay
    await waitFor(() => expect(posts()).toHaveLength(3));
    // Perhaps another tab's message: this one is kept, with Retry, beside the copy that came.
    expect(await ui().findByText('Not sent')).toBeTruthy();
    expect(ui().getAllByText('Are you there?')).toHaveLength(2);
    fireEvent.click(ui().getByRole('button', { name: 'Retry' }));
    await settled();
    expect(ui().getAllByText('Are you there?')).toHaveLength(1);
    expect([...fake.tickets.values()][0]!.messages.map((m) => m.body)).toEqual(['Hello', 'Are you there?']);
  });

  it('places a retried message after the replies that came while it was "Not sent", as the server orders it', async () => {
    const { ticketId } = await chatLive('First');
    fake.failNext((r) => r.method === 'POST', 'network');
    await type('Sent while offline');
    expect(await ui().findByText('Not sent')).toBeTruthy();
    fake.agentReply(ticketId, 'Reply A');
    fake.agentReply(ticketId, 'Reply B');
    await ui().findByText('Reply B');
    fireEvent.click(ui().getByRole('button', { name: 'Retry' }));
    await waitFor(() => expect(ui().queryByText('Not sent')).toBeNull());
    const order = ['First', 'Reply A', 'Reply B', 'Sent while offline'];
    expect(fake.tickets.get(ticketId)!.messages.map((m) => m.body)).toEqual(order);
    expect([...root().querySelectorAll('li.m:not(:first-child) .b')].map((b) => b.textContent)).toEqual(order);
  });

  it.each([
    ['a first message (no ticket yet)', false],
    ['a message to a stored ticket', true],
  ])('keeps %s that was not sent across a reload, "Not sent" with Retry and the same Idempotency-Key', async (_, hasTicket) => {
    widget = start(fake);
    await openPanel();
    if (hasTicket) {
      await type('First');
      await waitFor(() => expect(fake.openStreams()).toBe(1));
    }
    fake.failNext((r) => r.method === 'POST', 'network');
    await type('Important unsent message');
    expect(await ui().findByText('Not sent')).toBeTruthy();
    widget.destroy();

    widget = start(fake); // the reload
    await openPanel();
    expect(await ui().findByText('Not sent')).toBeTruthy();
    expect(ui().getByText('Important unsent message')).toBeTruthy();
    expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(hasTicket ? 2 : 1); // nothing resent by itself
    fireEvent.click(ui().getByRole('button', { name: 'Retry' }));
    await waitFor(() => expect(ui().queryByText('Not sent')).toBeNull());
    const posts = fake.requests.filter((r) => r.method === 'POST').slice(-2);
    expect(posts[1]!.headers['idempotency-key']).toBe(posts[0]!.headers['idempotency-key']);
    expect(posts[1]!.body).toEqual(posts[0]!.body);
    expect([...fake.tickets.values()][0]!.messages.map((m) => m.body)).toEqual([...(hasTicket ? ['First'] : []), 'Important unsent message']);
    expect(JSON.parse(saved()!)).not.toHaveProperty('outbox');
    expect(unsentStored()).toEqual([]);
  });

  /** A second tab of this page: its own store over the same localStorage (the widget's parts, not a second mount). */
  function otherTab() {
    return createStore({
      api: createApi({ base: API, serviceId: SERVICE_ID, key: KEY, userToken: () => undefined, fetch: fake.fetch }),
      storage: createStorage(SERVICE_ID),
      emitter: createEmitter(),
      serviceId: SERVICE_ID,
      apiBase: API,
      streamTiming: { baseDelay: 5, maxDelay: 20, pollInterval: 10, silence: 5_000 },
    });
  }

  it("keeps a tab's unsent message when another tab of the conversation writes what it has read", async () => {
    const { ticketId } = await chatLive('Hello');
    const tab = otherTab(); // opened after the first message, before the one that fails
    await tab.start(true);
    await waitFor(() => expect(fake.openStreams()).toBe(2));
    fake.failNext((r) => r.method === 'POST', 'network');
    await type('Only in the first tab');
    expect(await ui().findByText('Not sent')).toBeTruthy();
    fireEvent.keyDown(ui().getByRole('dialog'), { key: 'Escape' }); // closed here: only the other tab marks the reply read
    const reply = fake.agentReply(ticketId, 'Read in the other tab');
    await waitFor(() => expect(JSON.parse(saved()!)).toMatchObject({ ticketId, seen: reply.id }));
    tab.stop();
    widget!.destroy();

    widget = start(fake); // the first tab reloads
    await openPanel();
    expect(await ui().findByText('Not sent')).toBeTruthy();
    expect(ui().getByText('Only in the first tab')).toBeTruthy();
    fireEvent.click(ui().getByRole('button', { name: 'Retry' }));
    await waitFor(() => expect(fake.tickets.get(ticketId)!.messages.map((m) => m.body)).toEqual(['Hello', 'Read in the other tab', 'Only in the first tab']));
  });

  it.each([
    ['replays it by itself within 23 hours of its first send', 22.9, true],
    ['leaves it "Not sent" with Retry 23 hours or more after (the server keeps a key 24 hours)', 23, false],
  ])('a kept message whose copy is in the history: %s', async (_, hours, replayed) => {
    const text = 'Did my message arrive?';
    const ticket = fake.createTicketDirectly('Hello');
    // The send whose answer was lost: the server stored it under the key the widget kept.
    await fake.fetch(`${API}/v1/widget/${SERVICE_ID}/tickets/${ticket.ticketId}/messages`, {
      method: 'POST',
      headers: { 'X-Parley-Key': KEY, 'X-Visitor-Token': ticket.visitorToken, 'Idempotency-Key': 'k1', 'Content-Type': 'application/json' },
      body: JSON.stringify({ message: text }),
    });
    localStorage.setItem(`parley:${SERVICE_ID}`, JSON.stringify(ticket));
    const kept = { key: 'k1', message: text, idempotencyKey: 'k1', at: Date.now() - hours * 3_600_000 };
    localStorage.setItem(`parley:${SERVICE_ID}:u:k1`, JSON.stringify(kept));
    widget = start(fake);
    await openPanel();
    await ui().findByText('Hello');
    const replays = () => posts().filter((r) => r.headers['idempotency-key'] === 'k1').slice(1);
    if (replayed) {
      await waitFor(() => expect(replays()).toHaveLength(1));
      await settled();
      expect(ui().getAllByText(text)).toHaveLength(1);
      expect(unsentStored()).toEqual([]);
    } else {
      await new Promise((r) => setTimeout(r, 50));
      expect(replays()).toEqual([]);
      expect(ui().getAllByText(text)).toHaveLength(2); // the server's copy, and the kept one beside it
      expect(ui().getByText('Not sent')).toBeTruthy();
      expect(ui().getByRole('button', { name: 'Retry' })).toBeTruthy();
      expect(unsentStored()).toEqual([kept]);
    }
    expect(fake.tickets.get(ticket.ticketId)!.messages.map((m) => m.body)).toEqual(['Hello', text]);
  });

  it('keeps an unsent message in memory when localStorage throws', async () => {
    vi.spyOn(Storage.prototype, 'setItem').mockImplementation(() => {
      throw new DOMException('blocked', 'SecurityError');
    });
    widget = start(fake);
    await openPanel();
    fake.failNext((r) => r.method === 'POST', 'network');
    await type('Kept in memory');
    expect(await ui().findByText('Not sent')).toBeTruthy();
    fireEvent.click(ui().getByRole('button', { name: 'Retry' }));
    await waitFor(() => expect(fake.tickets.size).toBe(1));
    expect(errors).not.toHaveBeenCalled();
  });

  it('gives every new message its own Idempotency-Key', async () => {
    widget = start(fake);
    await openPanel();
    await type('one');
    await waitFor(() => expect(saved()).not.toBeNull());
    await type('two');
    await waitFor(() => expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(2));
    const [a, b] = fake.requests.filter((r) => r.method === 'POST').map((r) => r.headers['idempotency-key']);
    expect(a).not.toBe(b);
  });
});

describe('refusals in plain words', () => {
  it('says how long to wait when rate limited, and keeps the message', async () => {
    widget = start(fake);
    await openPanel();
    fake.failNext((r) => r.method === 'POST', refusal(429, 'rate_limit_exceeded', { 'Retry-After': '17' }));
    await type('Too fast?');
    expect((await ui().findByRole('alert')).textContent).toBe('Too many messages. Try again in 17 seconds.');
    expect(ui().getByText('Not sent')).toBeTruthy();
  });

  it('counts the wait down a second at a time, read out once, and removes the notice when it is over', async () => {
    widget = start(fake);
    await openPanel();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    fake.failNext((r) => r.method === 'POST', refusal(429, 'rate_limit_exceeded', { 'Retry-After': '3' }));
    await type('Too fast?');
    await vi.advanceTimersByTimeAsync(0);
    const note = () => root().querySelector('p.note');
    expect(note()?.textContent).toBe('Too many messages. Try again in 3 seconds.');
    expect(note()?.getAttribute('role')).toBe('alert');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(note()?.textContent).toBe('Too many messages. Try again in 2 seconds.');
    expect(note()?.getAttribute('role')).toBeNull(); // shown, not announced again every second
    await vi.advanceTimersByTimeAsync(1_000);
    expect(note()?.textContent).toBe('Too many messages. Try again in 1 second.');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(note()).toBeNull();
    expect(vi.getTimerCount()).toBe(0);
    expect(ui().getByText('Not sent')).toBeTruthy(); // the message is still kept for Retry
  });

  it.each(['Parley.reset()', 'removing the widget'] as const)('leaves no countdown running after %s', async (how) => {
    widget = start(fake);
    await openPanel();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    fake.failNext((r) => r.method === 'POST', refusal(429, 'rate_limit_exceeded', { 'Retry-After': '30' }));
    await type('Too fast?');
    await vi.advanceTimersByTimeAsync(0);
    expect(root().querySelector('p.note')?.textContent).toBe('Too many messages. Try again in 30 seconds.');
    if (how === 'Parley.reset()') Parley().reset();
    else widget.destroy();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('says chat is unavailable on this page, not "check your connection", when the API is up but refuses the page (origin removed)', async () => {
    const { ticketId } = await chatLive('Hello');
    expect(ticketId).toBeTruthy();
    fake.failNext((r) => r.method === 'POST', 'network'); // a CORS refusal: unreadable, like no answer
    fake.failNext((r) => r.method === 'HEAD' && r.path === '/widget.js', respond(200, {}));
    await type('Are you there?');
    await waitFor(() => expect(root().querySelector('p.note[role="alert"]')?.textContent).toBe('Chat is unavailable on this page right now.'));
    expect(ui().getByText('Not sent')).toBeTruthy();
    const probe = fake.requests.find((r) => r.method === 'HEAD')!;
    expect(probe.url.href).toBe(`${API}/widget.js`);
    expect(probe.headers).toEqual({}); // no key, no token: a plain request the browser sends without a preflight
  });

  it('still says "check your connection" when the API cannot be reached at all', async () => {
    await chatLive('Hello');
    fake.failNext((r) => r.method === 'POST', 'network');
    fake.failNext((r) => r.method === 'HEAD', 'network');
    await type('Are you there?');
    await ui().findByText('Not sent');
    await waitFor(() => expect(fake.requests.some((r) => r.method === 'HEAD')).toBe(true));
    await new Promise((r) => setTimeout(r, 10));
    expect(root().querySelector('p.note[role="alert"]')?.textContent).toBe('Message not sent. Check your connection and try again.');
  });

  it("says the chat has reached today's limit when the spend cap is reached (SPEC 9: a state of its own)", async () => {
    widget = start(fake);
    await openPanel();
    fake.failNext((r) => r.method === 'POST', refusal(402, 'spend_cap_exceeded', {}, { resets_at: '2030-01-01T00:00:00Z' }));
    await type('Anyone?');
    expect((await ui().findByRole('alert')).textContent).toBe('Chat has reached its limit for today. Please try again later.');
    expect(ui().getByText('Anyone?')).toBeTruthy();
    expect(ui().getByText('Not sent')).toBeTruthy();
  });

  it.each([
    ['a 500', refusal(500, 'internal_error')],
    ['a 503 without a body', refusal(503, 'internal_error')],
    ['a 409', refusal(409, 'idempotency_conflict')],
  ])('says the message was not sent after %s, not only "Not sent"', async (_, failure) => {
    widget = start(fake);
    await openPanel();
    fake.failNext((r) => r.method === 'POST', failure);
    await type('Anyone?');
    expect((await ui().findByRole('alert')).textContent).toBe('Message not sent. Please try again.');
    expect(ui().getByRole('button', { name: 'Retry' })).toBeTruthy();
  });

  it('waits for Parley.identify when identity is required, then sends with the token', async () => {
    widget = start(fake);
    const events: string[] = [];
    Parley().on('error', (e) => events.push((e as { code: string }).code));
    await openPanel();
    fake.failNext((r) => r.method === 'POST', refusal(403, 'identity_required'));
    await type('Signed-in question');
    expect((await ui().findByRole('alert')).textContent).toBe('Please sign in to send messages.');
    expect(ui().getByText('Waiting for sign-in…')).toBeTruthy();
    expect(events).toEqual(['identity_required']);
    Parley().identify('jwt.user.token');
    await waitFor(() => expect(fake.tickets.size).toBe(1));
    const posts = fake.requests.filter((r) => r.method === 'POST');
    expect(posts[1]!.body).toMatchObject({ message: 'Signed-in question', user_token: 'jwt.user.token' });
    // Another body needs another key, or the server would answer 409 idempotency_conflict.
    expect(posts[1]!.headers['idempotency-key']).not.toBe(posts[0]!.headers['idempotency-key']);
    await waitFor(() => expect(fake.requests.some((r) => r.method === 'GET' && r.headers['x-user-token'] === 'jwt.user.token')).toBe(true));
  });

  it('emits token-expired when the user token is refused', async () => {
    widget = start(fake, { 'data-user-token': 'old.token' });
    const expired = vi.fn();
    Parley().on('token-expired', expired);
    await openPanel();
    fake.failNext((r) => r.method === 'POST', refusal(401, 'invalid_user_token'));
    await type('Hello');
    await waitFor(() => expect(expired).toHaveBeenCalledTimes(1));
    expect(fake.requests.find((r) => r.method === 'POST')!.body).toMatchObject({ user_token: 'old.token' });
    expect(ui().getByText('Waiting for sign-in…')).toBeTruthy();
  });

  it.each([
    ['403 origin_not_allowed', refusal(403, 'origin_not_allowed'), /origin https:\/\/shop\.example is not allowed for service id "acme-help"; add https:\/\/shop\.example to the site's allowed origins/],
    ['401 invalid_api_key', refusal(401, 'invalid_api_key'), /data-key is not a valid, active publishable key for service id "acme-help" \(seen from https:\/\/shop\.example\)/],
    ['403 site_mismatch', refusal(403, 'site_mismatch'), /data-key belongs to a different site than service id "acme-help"/],
  ])('shows no launcher and tells the site owner what to fix on %s', async (_, failure, text) => {
    fake.failNext((r) => r.path.endsWith('/config'), failure);
    widget = start(fake);
    await waitFor(() => expect(errors).toHaveBeenCalledTimes(1));
    expect(String(errors.mock.calls[0]![0])).toMatch(text);
    expect(document.querySelector('parley-widget')).toBeNull();
    expect(fake.requests).toHaveLength(1);
  });
});

describe('a /config that fails in passing', () => {
  const configs = () => fake.requests.filter((r) => r.path.endsWith('/config')).length;
  const launcherShown = () => Boolean(widget?.host.shadowRoot?.querySelector('.launcher'));

  it.each([
    ['no answer (a TypeError, as a CORS refusal also looks)', 'network' as const, 0],
    ['503', refusal(503, 'internal_error'), 0.999],
    ['429 without Retry-After', refusal(429, 'rate_limit_exceeded'), 0.5],
  ])('is tried again after 2 s, then 4 s (plus jitter), and the launcher appears once it answers: %s', async (_, failure, random) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    vi.spyOn(Math, 'random').mockReturnValue(random);
    const jitter = 1 + random / 2; // up to half again
    fake.failNext((r) => r.path.endsWith('/config'), failure);
    fake.failNext((r) => r.path.endsWith('/config'), failure);
    widget = start(fake);
    const heard = { ready: vi.fn(), error: vi.fn() };
    Parley().on('ready', heard.ready);
    Parley().on('error', heard.error);
    await vi.advanceTimersByTimeAsync(0);
    expect(configs()).toBe(1);
    expect(launcherShown()).toBe(false);
    expect(document.querySelector('parley-widget')).not.toBeNull(); // kept, waiting
    let past = 0; // ms since the last attempt
    for (const [wait, count] of [[2_000 * jitter, 2], [4_000 * jitter, 3]] as const) {
      await vi.advanceTimersByTimeAsync(wait - 5 - past);
      expect(configs(), `not before ${wait} ms`).toBe(count - 1);
      await vi.advanceTimersByTimeAsync(10);
      expect(configs(), `after ${wait} ms`).toBe(count);
      past = 5;
    }
    expect(launcherShown()).toBe(true);
    expect(heard.ready).toHaveBeenCalledTimes(1);
    // The owner and the page were told once, not once per retry.
    expect(errors).toHaveBeenCalledTimes(1);
    expect(heard.error).toHaveBeenCalledTimes(1);
    expect(fake.requests).toHaveLength(3); // nothing but /config until it answered
  });

  it("waits for a 429's Retry-After, and opens at start as data-open asked once it answers", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    fake.failNext((r) => r.path.endsWith('/config'), refusal(429, 'rate_limit_exceeded', { 'Retry-After': '40' }));
    widget = start(fake, { 'data-open': 'true' });
    await vi.advanceTimersByTimeAsync(39_990);
    expect(configs()).toBe(1);
    await vi.advanceTimersByTimeAsync(20_010); // 40 s plus up to half again
    expect(configs()).toBe(2);
    expect(root().querySelector('[role="dialog"]')).not.toBeNull();
  });

  it('backs off to at most 5 min between tries, for as long as the API answers 503', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    for (let i = 0; i < 12; i++) fake.failNext((r) => r.path.endsWith('/config'), refusal(503, 'internal_error'));
    widget = start(fake);
    await vi.advanceTimersByTimeAsync(0);
    const at: number[] = [];
    for (let t = 0, seen = 1; t < 60 * 60_000 && configs() < 13; t += 1_000) {
      await vi.advanceTimersByTimeAsync(1_000);
      if (configs() > seen) (seen = configs()), at.push(t + 1_000);
    }
    const gaps = at.map((t, i) => (t - (at[i - 1] ?? 0)) / 1_000);
    expect(gaps.slice(0, 7).map((g, i) => g >= 2 ** (i + 1) && g <= 1.5 * 2 ** (i + 1) + 1)).toEqual(Array(7).fill(true));
    expect(Math.max(...gaps)).toBeLessThanOrEqual(451);
    expect(gaps.slice(8).every((g) => g >= 300)).toBe(true);
    expect(launcherShown()).toBe(true);
    expect(errors).toHaveBeenCalledTimes(1);
  });

  it('gives up after 8 retries in a row without any answer (a CORS refusal looks the same), saying so once more', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    vi.spyOn(Math, 'random').mockReturnValue(0);
    for (let i = 0; i < 9; i++) fake.failNext((r) => r.path.endsWith('/config'), 'network');
    widget = start(fake);
    const heard = vi.fn();
    Parley().on('error', heard);
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 1; i <= 8; i++) {
      expect(document.querySelector('parley-widget')).not.toBeNull();
      await vi.advanceTimersByTimeAsync(1_000 * Math.min(300, 2 ** i));
      expect(configs()).toBe(i + 1);
    }
    expect(document.querySelector('parley-widget')).toBeNull();
    expect(configs()).toBe(9);
    expect(errors).toHaveBeenCalledTimes(2);
    expect(String(errors.mock.calls[1]![0])).toMatch(/could not reach https:\/\/parley\.example/);
    expect(heard).toHaveBeenCalledTimes(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('counts only failures in a row without an answer: an outage of 503s ending in a dropped connection is still retried', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    vi.spyOn(Math, 'random').mockReturnValue(0);
    // 7 with no answer, a 503 (an answer), 7 more with no answer, six 503s, one dropped connection: then it answers.
    const plan = [...Array(7).fill('network'), 'answer', ...Array(7).fill('network'), ...Array(6).fill('answer'), 'network'] as const;
    for (const p of plan) fake.failNext((r) => r.path.endsWith('/config'), p === 'network' ? 'network' : refusal(503, 'internal_error', { 'Retry-After': '1' }));
    widget = start(fake);
    await vi.advanceTimersByTimeAsync(60 * 60_000);
    expect(configs()).toBe(plan.length + 1);
    expect(launcherShown()).toBe(true);
    expect(errors).toHaveBeenCalledTimes(1);
  });

  it('gives up, removing the widget and saying why, when a retry meets a refusal', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    fake.failNext((r) => r.path.endsWith('/config'), refusal(502, 'internal_error'));
    fake.failNext((r) => r.path.endsWith('/config'), refusal(403, 'origin_not_allowed'));
    widget = start(fake);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(configs()).toBe(2);
    expect(document.querySelector('parley-widget')).toBeNull();
    expect(errors).toHaveBeenCalledTimes(2);
    expect(String(errors.mock.calls[1]![0])).toMatch(/origin https:\/\/shop\.example is not allowed/);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('tells the site owner what to check when the API cannot be reached', async () => {
    fake.failNext((r) => r.path.endsWith('/config'), 'network');
    widget = start(fake);
    await waitFor(() => expect(errors).toHaveBeenCalledTimes(1));
    expect(String(errors.mock.calls[0]![0])).toMatch(/could not reach https:\/\/parley\.example for service id "acme-help" from https:\/\/shop\.example; .*add https:\/\/shop\.example to the site's allowed origins/);
    expect(String(errors.mock.calls[0]![0])).toMatch(/check data-service-id "acme-help"/); // a mistyped service id is refused the same way
    expect(launcherShown()).toBe(false);
  });

  it.each(['while it waits to retry', 'while the failing request is still out'] as const)(
    'leaves no retry pending once the widget is removed %s',
    async (when) => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      fake.failNext((r) => r.path.endsWith('/config'), 'network');
      widget = start(fake);
      if (when === 'while it waits to retry') await vi.advanceTimersByTimeAsync(0);
      widget.destroy(); // otherwise before the fake's answer, which comes a microtask later
      await vi.advanceTimersByTimeAsync(0);
      expect(vi.getTimerCount()).toBe(0);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(configs()).toBe(1);
    },
  );
});

describe('signed-in users (identity verification)', () => {
  /** The list requests the widget made (GET /tickets), with their user tokens. */
  const listed = () => fake.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/tickets')).map((r) => r.headers['x-user-token']);

  it('continues the newest ticket of the user of data-user-token on a device with nothing stored', async () => {
    fake.createTicketDirectly('An older question', 'ada');
    const { ticketId } = fake.createTicketDirectly('Asked on my phone', 'ada');
    fake.createTicketDirectly('Somebody else', 'bob');
    widget = start(fake, { 'data-user-token': 'ada.t1' });
    await waitFor(() => expect(JSON.parse(saved()!)).toEqual({ ticketId, visitorToken: `vt_${ticketId}` }));
    const list = fake.requests.find((r) => r.path.endsWith('/tickets'))!;
    expect(list.url.search).toBe('?limit=1');
    expect(list.headers['x-user-token']).toBe('ada.t1');
    await openPanel();
    expect(await ui().findByText('Asked on my phone')).toBeTruthy();
    expect(ui().queryByText('An older question')).toBeNull();
    expect(ui().queryByRole('textbox', { name: 'Your name (optional)' })).toBeNull();
    await waitFor(() => expect(fake.openStreams()).toBe(1));
    fake.agentReply(ticketId, 'Welcome back, Ada.');
    expect(await ui().findByText('Welcome back, Ada.')).toBeTruthy();
    await type('Same problem here');
    await waitFor(() => expect(fake.tickets.get(ticketId)!.messages.map((m) => m.body)).toContain('Same problem here'));
    expect(fake.tickets.size).toBe(3);
  });

  it('lists on Parley.identify when nothing is stored, and keeps a conversation that is', async () => {
    const { ticketId } = fake.createTicketDirectly('From my laptop', 'ada');
    widget = start(fake);
    await launcher();
    expect(listed()).toEqual([]);
    Parley().identify('ada.t1');
    await waitFor(() => expect(JSON.parse(saved()!).ticketId).toBe(ticketId));
    await openPanel();
    expect(await ui().findByText('From my laptop')).toBeTruthy();
    expect(listed()).toEqual(['ada.t1']);

    // Already in a conversation: identify (even as someone else) keeps it; reset() is the logout.
    const other = fake.createTicketDirectly('Bob asked', 'bob');
    Parley().identify('bob.t1');
    await new Promise((r) => setTimeout(r, 20));
    expect(listed()).toEqual(['ada.t1']);
    expect(JSON.parse(saved()!).ticketId).toBe(ticketId);
    Parley().reset();
    await waitFor(() => expect(ui().queryByText('From my laptop')).toBeNull());
    Parley().identify('bob.t2');
    expect(await ui().findByText('Bob asked')).toBeTruthy();
    expect(JSON.parse(saved()!).ticketId).toBe(other.ticketId);
  });

  it('lists when the stored ticket is gone, and starts a new ticket when the user has none', async () => {
    localStorage.setItem(`parley:${SERVICE_ID}`, JSON.stringify({ ticketId: 'tkt_gone', visitorToken: 'vt_x' }));
    const { ticketId } = fake.createTicketDirectly('Still here', 'ada');
    widget = start(fake, { 'data-user-token': 'ada.t1' });
    await waitFor(() => expect(saved() && JSON.parse(saved()!).ticketId).toBe(ticketId));
    widget.destroy();
    localStorage.clear();
    fake.requests.length = 0;

    widget = start(fake, { 'data-user-token': 'cleo.t1' });
    await openPanel();
    await waitFor(() => expect(listed()).toEqual(['cleo.t1']));
    await type('My first question');
    await waitFor(() => expect(fake.tickets.size).toBe(2));
    const post = fake.requests.find((r) => r.method === 'POST')!;
    expect(post.body).toMatchObject({ message: 'My first question', user_token: 'cleo.t1' });
    expect([...fake.tickets.values()].pop()!.ticket.user).toMatchObject({ id: 'cleo' });
  });

  it('keeps the launcher back while the site requires identity and no token is known, until Parley.identify', async () => {
    fake.setConfig({ require_identity: true });
    const { ticketId } = fake.createTicketDirectly('Yesterday', 'ada');
    widget = start(fake);
    const ready = vi.fn();
    Parley().on('ready', ready);
    await waitFor(() => expect(ready).toHaveBeenCalled());
    Parley().open(); // remembered, not shown
    await new Promise((r) => setTimeout(r, 20));
    expect(widget.host.shadowRoot!.querySelector('.root')).toBeNull();
    expect(fake.calls().map((r) => r.path)).toEqual([`/v1/widget/${SERVICE_ID}/config`]);

    Parley().identify('ada.t1');
    await launcher();
    expect(await ui().findByRole('dialog')).toBeTruthy();
    expect(await ui().findByText('Yesterday')).toBeTruthy();
    expect(JSON.parse(saved()!).ticketId).toBe(ticketId);

    // Logging out hides it again, and forgets the conversation.
    Parley().reset();
    await waitFor(() => expect(widget!.host.shadowRoot!.querySelector('.root')).toBeNull());
    expect(saved()).toBeNull();
    Parley().identify('ada.t2');
    const button = await launcher();
    expect(button.getAttribute('aria-expanded')).toBe('false');
  });

  it('does not ask a signed-in user for name and email: the server takes them from the token', async () => {
    widget = start(fake, { 'data-user-token': 'ada.t1' });
    await openPanel();
    expect(ui().queryByRole('textbox', { name: 'Your name (optional)' })).toBeNull();
    expect(ui().queryByRole('textbox', { name: 'Your email (optional)' })).toBeNull();
    await type('Hello');
    await waitFor(() => expect(fake.tickets.size).toBe(1));
    const post = fake.requests.find((r) => r.method === 'POST')!;
    expect(post.body).not.toHaveProperty('visitor');
    expect(post.body!.user_token).toBe('ada.t1');
  });

  it('shows the launcher at once on a site requiring identity when data-user-token is set', async () => {
    fake.setConfig({ require_identity: true });
    widget = start(fake, { 'data-user-token': 'ada.t1' });
    await openPanel();
    await type('Hello');
    await waitFor(() => expect(fake.tickets.size).toBe(1));
    expect(fake.requests.find((r) => r.method === 'POST')!.body).toMatchObject({ user_token: 'ada.t1' });
  });

  it('asks the page once per expired token, then resumes the stream and resends with the new one', async () => {
    widget = start(fake, { 'data-user-token': 'ada.t1' });
    let answer = 'ada.t1'; // what the page's token-expired handler hands back: at first its stale token
    const expired = vi.fn(() => Parley().identify(answer));
    Parley().on('token-expired', expired);
    await openPanel();
    await type('Hello');
    await waitFor(() => expect(fake.openStreams()).toBe(1));
    const [ticketId] = [...fake.tickets.keys()];

    // The token expires; the server ends the stream and refuses the reconnect.
    fake.expire('ada.t1');
    fake.endStreams();
    await waitFor(() => expect(expired).toHaveBeenCalledTimes(1));
    fake.agentReply(ticketId!, 'Reply while you were away');
    await type('Still there?');
    expect(await ui().findByText('Waiting for sign-in…')).toBeTruthy();
    expect((await ui().findByRole('alert')).textContent).toBe('Your session has expired. Please sign in again to send messages.');
    await new Promise((r) => setTimeout(r, 30));
    expect(expired).toHaveBeenCalledTimes(1); // not again for the same token, and the stale answer made no loop
    expect(fake.openStreams()).toBe(0);
    expect(ui().queryByText('Reply while you were away')).toBeNull();

    Parley().identify('ada.t2');
    expect(await ui().findByText('Reply while you were away')).toBeTruthy();
    await waitFor(() => expect(fake.tickets.get(ticketId!)!.messages.map((m) => m.body)).toContain('Still there?'));
    await waitFor(() => expect(ui().queryByText('Waiting for sign-in…')).toBeNull());
    expect(ui().queryByRole('alert')).toBeNull();
    await waitFor(() => expect(fake.openStreams()).toBe(1));
    expect(fake.requests.filter((r) => r.path.endsWith('/events')).pop()!.headers['x-user-token']).toBe('ada.t2');
    fake.agentReply(ticketId!, 'Live again');
    expect(await ui().findByText('Live again')).toBeTruthy();

    // The next expiry is asked about again; a page that answers at once keeps the chat live.
    answer = 'ada.t3';
    fake.expire('ada.t2');
    fake.endStreams();
    await waitFor(() => expect(expired).toHaveBeenCalledTimes(2));
    await waitFor(() => expect(fake.openStreams()).toBe(1));
    fake.agentReply(ticketId!, 'Third time');
    expect(await ui().findByText('Third time')).toBeTruthy();
    expect(expired).toHaveBeenCalledTimes(2);
    expect(fake.tickets.size).toBe(1);
  });

  it('says at once that chat is unavailable when the key is revoked under an open chat, and stops following', async () => {
    const { ticketId } = await chatLive('Hello');
    // The site owner revokes the key: the server ends the stream and refuses the reconnect.
    fake.failNext((r) => r.path.endsWith('/events'), refusal(401, 'invalid_api_key'));
    fake.endStreams();
    expect((await ui().findByRole('alert')).textContent).toBe('Chat is unavailable right now.');
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.openStreams()).toBe(0);
    expect(fake.requests.filter((r) => r.path.endsWith('/events')).length).toBe(2); // one reconnect, no more
    fake.agentReply(ticketId, 'Not delivered');
    expect(ui().queryByText('Not delivered')).toBeNull();
  });

  it('asks for a new token when loading the stored conversation is refused, then loads it', async () => {
    const stored = fake.createTicketDirectly('Stored question', 'ada');
    localStorage.setItem(`parley:${SERVICE_ID}`, JSON.stringify(stored));
    fake.expire('ada.old');
    widget = start(fake, { 'data-user-token': 'ada.old' });
    const expired = vi.fn();
    Parley().on('token-expired', expired);
    await openPanel();
    await waitFor(() => expect(expired).toHaveBeenCalledTimes(1));
    expect(ui().queryByText('Stored question')).toBeNull();
    Parley().identify('ada.new');
    expect(await ui().findByText('Stored question')).toBeTruthy();
    await waitFor(() => expect(fake.openStreams()).toBe(1));
    expect(expired).toHaveBeenCalledTimes(1);
  });
});

describe('keyboard and screen readers', () => {
  it('moves focus into the labelled dialog on open, closes on Escape and returns focus to the launcher', async () => {
    widget = start(fake);
    const button = await launcher();
    expect(button.getAttribute('aria-label')).toBe('Open chat with Acme Help');
    button.focus();
    fireEvent.click(button);
    const dialog = await ui().findByRole('dialog', { name: 'Chat with Acme Help' });
    const box = ui().getByRole('textbox', { name: 'Message' });
    expect(widget.host.shadowRoot!.activeElement).toBe(box);
    expect(button.getAttribute('aria-expanded')).toBe('true');
    fireEvent.keyDown(box, { key: 'Escape' });
    await waitFor(() => expect(ui().queryByRole('dialog')).toBeNull());
    expect(dialog.isConnected).toBe(false);
    expect(widget.host.shadowRoot!.activeElement).toBe(button);
    expect(button.getAttribute('aria-expanded')).toBe('false');
  });

  it('keeps the draft, name and email while the panel is closed and opened again', async () => {
    widget = start(fake);
    await openPanel();
    fireEvent.input(ui().getByRole('textbox', { name: 'Your name (optional)' }), { target: { value: 'Ada' } });
    fireEvent.input(ui().getByRole('textbox', { name: 'Your email (optional)' }), { target: { value: 'ada@example.com' } });
    fireEvent.input(ui().getByRole('textbox', { name: 'Message' }), { target: { value: 'Line one\nLine two' } });
    fireEvent.keyDown(ui().getByRole('textbox', { name: 'Message' }), { key: 'Escape' });
    await waitFor(() => expect(ui().queryByRole('dialog')).toBeNull());
    await openPanel();
    expect((ui().getByRole('textbox', { name: 'Message' }) as HTMLTextAreaElement).value).toBe('Line one\nLine two');
    expect((ui().getByRole('textbox', { name: 'Your name (optional)' }) as HTMLInputElement).value).toBe('Ada');
    expect((ui().getByRole('textbox', { name: 'Your email (optional)' }) as HTMLInputElement).value).toBe('ada@example.com');
    fireEvent.keyDown(ui().getByRole('textbox', { name: 'Message' }), { key: 'Enter' });
    await waitFor(() => expect(fake.tickets.size).toBe(1));
    expect((ui().getByRole('textbox', { name: 'Message' }) as HTMLTextAreaElement).value).toBe('');
    fireEvent.keyDown(ui().getByRole('textbox', { name: 'Message' }), { key: 'Escape' });
    await waitFor(() => expect(ui().queryByRole('dialog')).toBeNull());
    await openPanel();
    expect((ui().getByRole('textbox', { name: 'Message' }) as HTMLTextAreaElement).value).toBe(''); // a sent draft is gone
  });

  it('names the open launcher apart from the header\'s close button, and points it at the panel it controls', async () => {
    widget = start(fake);
    const button = await launcher();
    await openPanel();
    expect(ui().getAllByRole('button', { name: 'Close chat' })).toHaveLength(1); // the header's ×
    expect(button.getAttribute('aria-label')).toBe('Hide chat');
    const panel = ui().getByRole('dialog');
    expect(panel.id).toBeTruthy();
    expect(button.getAttribute('aria-controls')).toBe(panel.id);
  });

  it('closes on Escape pressed on the launcher too', async () => {
    widget = start(fake);
    await openPanel();
    fireEvent.keyDown(await launcher(), { key: 'Escape' });
    await waitFor(() => expect(ui().queryByRole('dialog')).toBeNull());
  });

  it('continues a conversation that another tab started', async () => {
    widget = start(fake);
    await openPanel();
    const other = fakeTicket();
    window.dispatchEvent(new StorageEvent('storage', { key: `parley:${SERVICE_ID}`, newValue: JSON.stringify(other) }));
    expect(await ui().findByText('Started in another tab')).toBeTruthy();
    window.dispatchEvent(new StorageEvent('storage', { key: `parley:${SERVICE_ID}`, newValue: null }));
    await waitFor(() => expect(ui().queryByText('Started in another tab')).toBeNull());
  });

  it('does not steal focus from the page when the page closes the chat', async () => {
    widget = start(fake);
    await openPanel();
    const pageInput = document.body.appendChild(document.createElement('input'));
    pageInput.focus();
    Parley().close();
    await waitFor(() => expect(ui().queryByRole('dialog')).toBeNull());
    expect(document.activeElement).toBe(pageInput);
    pageInput.remove();
  });

  it.each(['input', 'textarea', 'div contenteditable'])(
    'does not take the keystrokes of a visitor typing in a page %s when the page opens the chat late',
    async (what) => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      fake.failNext((r) => r.path.endsWith('/config'), refusal(503, 'internal_error'));
      widget = start(fake, { 'data-open': 'true' });
      const [tag, attr] = what.split(' ');
      const field = document.body.appendChild(document.createElement(tag!));
      if (attr) field.setAttribute(attr, '');
      field.tabIndex = 0;
      field.focus();
      await vi.advanceTimersByTimeAsync(3_100); // the retry, and the panel data-open asked for
      expect(root().querySelector('[role="dialog"]')).not.toBeNull();
      expect(document.activeElement).toBe(field);
      field.remove();
    },
  );

  it('still moves focus into the chat that a page button opens', async () => {
    widget = start(fake);
    await launcher();
    const button = document.body.appendChild(document.createElement('button'));
    button.focus();
    Parley().open();
    await ui().findByRole('dialog');
    expect(widget.host.shadowRoot!.activeElement).toBe(ui().getByRole('textbox', { name: 'Message' }));
    button.remove();
  });

  it('does not send on the Enter that confirms an IME composition, in Chrome (isComposing) or Safari (keyCode 229)', async () => {
    widget = start(fake);
    await openPanel();
    const box = ui().getByRole('textbox', { name: 'Message' }) as HTMLTextAreaElement;
    fireEvent.input(box, { target: { value: '日本' } });
    fireEvent.keyDown(box, { key: 'Enter', isComposing: true });
    fireEvent.keyDown(box, { key: 'Enter', keyCode: 229 }); // Safari: compositionend came first
    await new Promise((r) => setTimeout(r, 10));
    expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
    expect(box.value).toBe('日本');
    fireEvent.keyDown(box, { key: 'Enter', keyCode: 13 }); // the visitor's own Enter
    await waitFor(() => expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(1));
  });

  it('sends on Enter, adds a line on Shift+Enter, and counts characters near the 5,000 limit', async () => {
    widget = start(fake);
    await openPanel();
    const box = ui().getByRole('textbox', { name: 'Message' }) as HTMLTextAreaElement;
    fireEvent.input(box, { target: { value: 'line one' } });
    fireEvent.keyDown(box, { key: 'Enter', shiftKey: true });
    await new Promise((r) => setTimeout(r, 10));
    expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
    expect(ui().queryByText(/\/ 5,000/)).toBeNull();
    fireEvent.input(box, { target: { value: 'x'.repeat(4600) } });
    expect((await ui().findByText('4,600 / 5,000')).className).toBe('count');
    fireEvent.input(box, { target: { value: 'x'.repeat(5001) } });
    expect((await ui().findByText('5,001 / 5,000')).className).toBe('count over');
    expect((ui().getByRole('button', { name: 'Send' }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.keyDown(box, { key: 'Enter' });
    await new Promise((r) => setTimeout(r, 10));
    expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
  });
});

describe('the character counter', () => {
  it('counts characters as the server does (graphemes): 2,600 emoji are 2,600 of 5,000, and sendable', async () => {
    widget = start(fake);
    await openPanel();
    const box = ui().getByRole('textbox', { name: 'Message' });
    fireEvent.input(box, { target: { value: '😀'.repeat(4_600) } }); // 9,200 UTF-16 units
    expect(root().querySelector('.count')!.textContent).toBe('4,600 / 5,000');
    fireEvent.input(box, { target: { value: '👍🏽'.repeat(2_600) } }); // a skin-tone emoji: 4 units, 1 character
    expect(root().querySelector('.count')).toBeNull();
    expect(ui().getByRole('button', { name: 'Send' }).hasAttribute('disabled')).toBe(false);
    fireEvent.keyDown(box, { key: 'Enter' });
    await waitFor(() => expect(fake.tickets.size).toBe(1));
  });

  it('refuses in advance a message that fits 5,000 characters but not the 32 KiB body the server takes', async () => {
    widget = start(fake);
    await openPanel();
    const box = ui().getByRole('textbox', { name: 'Message' });
    fireEvent.input(box, { target: { value: '👍🏽'.repeat(4_500) } }); // 8 bytes of UTF-8 each: 36,000
    const count = root().querySelector('.count')!;
    expect([count.textContent, count.className]).toEqual(['4,500 / 5,000', 'count over']);
    expect(root().querySelector('.compose [role="status"]')!.textContent).toBe('Too long to send.');
    expect(ui().getByRole('button', { name: 'Send' }).hasAttribute('disabled')).toBe(true);
    fireEvent.keyDown(box, { key: 'Enter' });
    await new Promise((r) => setTimeout(r, 10));
    expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
    // 3,000 of them (24,000 bytes) fit, with the counter hidden far from the character limit.
    fireEvent.input(box, { target: { value: '👍🏽'.repeat(3_000) } });
    expect(root().querySelector('.count')).toBeNull();
    fireEvent.keyDown(box, { key: 'Enter' });
    await waitFor(() => expect(fake.tickets.size).toBe(1));
  });

  it('takes a name of 100 characters as the server counts them, and refuses a longer one in words', async () => {
    widget = start(fake);
    await openPanel();
    const name = ui().getByRole('textbox', { name: 'Your name (optional)' });
    fireEvent.input(name, { target: { value: '😀'.repeat(101) } });
    await type('Hello');
    expect((await ui().findByRole('alert')).textContent).toMatch(/name.*100 characters/);
    expect(fake.tickets.size).toBe(0);
    fireEvent.input(name, { target: { value: '😀'.repeat(100) } });
    fireEvent.keyDown(ui().getByRole('textbox', { name: 'Message' }), { key: 'Enter' });
    await waitFor(() => expect(fake.tickets.size).toBe(1));
    expect(fake.requests.find((r) => r.method === 'POST')!.body!.visitor).toEqual({ name: '😀'.repeat(100) });
  });

  it('updates on every key but tells screen readers only when it crosses a threshold', async () => {
    widget = start(fake);
    await openPanel();
    const box = ui().getByRole('textbox', { name: 'Message' }) as HTMLTextAreaElement;
    const heard: string[] = [];
    const seen: string[] = [];
    for (const n of [4400, 4500, 4600, 4601, 4700, 4899, 4900, 4950, 4951, 5000, 5001, 5002, 5400, 4999, 4998, 100]) {
      fireEvent.input(box, { target: { value: 'x'.repeat(n) } });
      await waitFor(() => expect(box.value).toHaveLength(n));
      const live = [...root().querySelectorAll('.compose :is([aria-live], [role="status"])')].map((el) => el.textContent).join('|');
      if (live !== (heard.at(-1) ?? '')) heard.push(live);
      seen.push(root().querySelector('.count')?.textContent ?? '');
    }
    expect(seen).toEqual([
      '',
      '4,500 / 5,000',
      '4,600 / 5,000',
      '4,601 / 5,000',
      '4,700 / 5,000',
      '4,899 / 5,000',
      '4,900 / 5,000',
      '4,950 / 5,000',
      '4,951 / 5,000',
      '5,000 / 5,000',
      '5,001 / 5,000',
      '5,002 / 5,000',
      '5,400 / 5,000',
      '4,999 / 5,000',
      '4,998 / 5,000',
      '',
    ]);
    expect(heard).toEqual([
      'At most 500 characters left.',
      'At most 100 characters left.',
      'Over the limit of 5,000 characters.',
      'At most 100 characters left.',
      '',
    ]);
  });
});

describe('untrusted message text', () => {
  it('renders HTML and javascript: payloads as inert text, linking only http(s) and mailto', async () => {
    const { ticketId } = await chatLive('hi');
    const payload =
      '<img src=x onerror="window.hacked=1"><b>bold</b><script>window.hacked=2</script> javascript:alert(1) ' +
      '[x](javascript:alert(2)) data:text/html,<h1>x</h1> see https://docs.example/a?b=1. or mailto:help@example.com';
    fake.agentReply(ticketId!, payload);
    await waitFor(() => expect(root().querySelectorAll('.m.agent')).toHaveLength(2));
    const bubble = root().querySelectorAll('.m.agent')[1]!;
    expect(bubble.querySelector('img, b, script, h1')).toBeNull();
    expect(bubble.querySelector('.b')!.textContent).toBe(payload);
    const links = [...bubble.querySelectorAll('a')];
    expect(links.map((a) => a.getAttribute('href'))).toEqual(['https://docs.example/a?b=1', 'mailto:help@example.com']);
    for (const a of links) {
      expect(a.getAttribute('target')).toBe('_blank');
      expect(a.getAttribute('rel')).toBe('noopener noreferrer');
    }
    expect((window as { hacked?: unknown }).hacked).toBeUndefined();
  });
});

describe('isolation and good guest manners', () => {
  it('renders in one shadow root styled by adopted stylesheets only, with no style element or attribute', async () => {
    widget = start(fake, { 'data-z-index': '42' });
    await openPanel();
    const shadow = widget.host.shadowRoot!;
    expect(document.querySelectorAll('parley-widget')).toHaveLength(1);
    expect(widget.host.tagName).toBe('PARLEY-WIDGET');
    expect(shadow.adoptedStyleSheets).toHaveLength(2);
    expect(document.querySelectorAll('style, link[rel=stylesheet]')).toHaveLength(0);
    expect(shadow.querySelectorAll('style, link')).toHaveLength(0);
    expect([widget.host, ...shadow.querySelectorAll('*')].filter((e) => e.hasAttribute('style'))).toEqual([]);
    const css = shadow.adoptedStyleSheets.map((s) => [...s.cssRules].map((r) => r.cssText).join('\n')).join('\n');
    expect(css).toMatch(/--pz:\s*42/);
    expect(css).toMatch(/--pc:\s*#2563eb/);
    expect(css).toMatch(/--pf:\s*#ffffff/);
    expect(css).not.toMatch(/\d(rem|em)\b/);
  });

  it('survives hostile page CSS aimed at every element, divs, the root font size and the host itself', async () => {
    const hostile = document.head.appendChild(document.createElement('style'));
    hostile.textContent =
      '* { all: unset !important } div { display: none !important } html { font-size: 4px }' +
      ' parley-widget { display: none !important; position: static !important; z-index: 0 !important; pointer-events: auto !important }';
    try {
      widget = start(fake, { 'data-z-index': '77' });
      const button = await launcher();
      const host = getComputedStyle(widget.host);
      expect([host.display, host.position, host.zIndex, host.width, host.pointerEvents]).toEqual(['block', 'fixed', '77', '0px', 'none']);
      const l = getComputedStyle(button);
      expect([l.display, l.position, l.width, l.pointerEvents, l.backgroundColor]).toEqual(['flex', 'fixed', '56px', 'auto', '#2563eb']);
      expect(getComputedStyle(root()).fontSize).toBe('14px');
    } finally {
      hostile.remove();
    }
  });

  it('fills a phone screen and follows the visual viewport, so the keyboard never hides the composer', async () => {
    const viewport = Object.assign(new EventTarget(), { height: 640, offsetTop: 0 });
    vi.stubGlobal('visualViewport', viewport);
    const happy = (window as unknown as { happyDOM: { setViewport(v: { width: number; height: number }): void } }).happyDOM;
    happy.setViewport({ width: 375, height: 640 });
    try {
      widget = start(fake);
      const dialog = await openPanel();
      const vars = () => [...widget!.host.shadowRoot!.adoptedStyleSheets[1]!.cssRules].map((r) => r.cssText).join('');
      expect(vars()).toMatch(/--pvh:\s*640px/);
      const panel = getComputedStyle(dialog); // the under-480px layout: full screen, square corners
      expect([panel.height, panel.top, panel.left, panel.borderRadius]).toEqual(['640px', '0px', '0px', '0px']);
      Object.assign(viewport, { height: 340, offsetTop: 12 }); // the keyboard opened
      viewport.dispatchEvent(new Event('resize'));
      expect(vars()).toMatch(/--pvh:\s*340px/);
      expect(vars()).toMatch(/--pvt:\s*12px/);
    } finally {
      happy.setViewport({ width: 1024, height: 768 });
      vi.unstubAllGlobals();
    }
  });

  it('takes no CSS from the site settings: a colour that is not #rrggbb falls back to the default', async () => {
    fake.setConfig({ color: 'red;}:host{display:none!important}' });
    widget = start(fake);
    const button = await launcher();
    const css = [...widget.host.shadowRoot!.adoptedStyleSheets[1]!.cssRules].map((r) => r.cssText).join('');
    expect(css).not.toMatch(/display|red/);
    expect(getComputedStyle(button).backgroundColor).toBe('#2563eb');
  });

  it('picks black text on a light theme colour', async () => {
    fake.setConfig({ color: '#ffd400' });
    widget = start(fake);
    await launcher();
    const css = [...widget.host.shadowRoot!.adoptedStyleSheets[1]!.cssRules].map((r) => r.cssText).join('');
    expect(css).toMatch(/--pf:\s*#000000/);
  });

  it('adds no global but window.Parley, whose API is an allow-list', async () => {
    const before = new Set(Object.keys(window));
    widget = start(fake);
    await launcher();
    expect(Object.keys(window).filter((k) => !before.has(k))).toEqual(['Parley']);
    expect(Object.keys(Parley()).sort()).toEqual(
      ['close', 'identify', 'on', 'open', 'reset', 'toggle'],
    );
  });

  it('keeps the conversation in memory when localStorage throws', async () => {
    vi.spyOn(Storage.prototype, 'setItem').mockImplementation(() => {
      throw new DOMException('blocked', 'SecurityError');
    });
    vi.spyOn(Storage.prototype, 'getItem').mockImplementation(() => {
      throw new DOMException('blocked', 'SecurityError');
    });
    widget = start(fake);
    await openPanel();
    await type('one');
    await waitFor(() => expect(fake.tickets.size).toBe(1));
    await type('two');
    await waitFor(() => expect(fake.requests.filter((r) => r.method === 'POST').map((r) => r.path.split('/').pop())).toEqual(['tickets', 'messages']));
    expect(errors).not.toHaveBeenCalled();
  });

  it('forgets the visitor on Parley.reset(): storage, messages and stream', async () => {
    widget = start(fake);
    await openPanel();
    await type('private');
    await waitFor(() => expect(fake.openStreams()).toBe(1));
    Parley().reset();
    await waitFor(() => expect(ui().queryByText('private')).toBeNull());
    expect(saved()).toBeNull();
    await waitFor(() => expect(fake.openStreams()).toBe(0));
    await type('new visitor');
    await waitFor(() => expect(fake.tickets.size).toBe(2));
  });

  it('forgets unsent messages, the draft, name and email on Parley.reset(), the panel open or closed', async () => {
    widget = start(fake);
    await openPanel();
    fake.failNext((r) => r.method === 'POST', 'network');
    await type('Not sent, private');
    expect(await ui().findByText('Not sent')).toBeTruthy();
    expect(unsentStored()).toHaveLength(1);
    const box = () => ui().getByRole('textbox', { name: 'Message' }) as HTMLTextAreaElement;
    fireEvent.input(box(), { target: { value: 'A private draft' } });
    Parley().reset();
    await waitFor(() => expect(ui().queryByText('Not sent, private')).toBeNull());
    expect(box().value).toBe('');
    expect(localStorage.length).toBe(0);
    fireEvent.input(ui().getByRole('textbox', { name: 'Your name (optional)' }), { target: { value: 'Ada' } });
    fireEvent.input(box(), { target: { value: 'Another draft' } });
    fireEvent.keyDown(box(), { key: 'Escape' });
    await waitFor(() => expect(ui().queryByRole('dialog')).toBeNull());
    Parley().reset();
    await openPanel();
    expect(box().value).toBe('');
    expect((ui().getByRole('textbox', { name: 'Your name (optional)' }) as HTMLInputElement).value).toBe('');
  });

  it('replays calls queued on the stub before the script loaded', async () => {
    const seen: string[] = [];
    const w = window as unknown as { Parley: { q: unknown[][] } };
    w.Parley = { q: [['on', 'ready', () => seen.push('ready')], ['on', 'open', () => seen.push('open')], ['open'], ['nope'], ['identify', 'tok']] };
    widget = start(fake);
    await launcher();
    expect(await ui().findByRole('dialog')).toBeTruthy();
    expect(seen).toEqual(['ready', 'open']);
    expect(widget.store.userToken).toBe('tok');
  });

  it('opens at start with data-open, and keeps the conversation across SPA route changes', async () => {
    widget = start(fake, { 'data-open': 'true' });
    await launcher();
    expect(await ui().findByRole('dialog')).toBeTruthy();
    await type('before navigation');
    await waitFor(() => expect(fake.tickets.size).toBe(1));
    history.pushState({}, '', '/checkout');
    await type('after navigation');
    await waitFor(() => expect([...fake.tickets.values()][0]!.messages).toHaveLength(2));
    expect(fake.tickets.size).toBe(1);
    expect(ui().getByText('before navigation')).toBeTruthy();
    history.pushState({}, '', '/products/1');
  });
});
