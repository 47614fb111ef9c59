// Stored XSS through the API: every payload of the corpus is stored and returned verbatim (after
// trimming) as JSON by the widget and management APIs, with nosniff; script URLs are refused as page_url.
// Rendering the same corpus inert is the widget's test (it imports XSS_CORPUS).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TestServer } from '../../server/src/test-helpers/harness.js';
import { counters, expectEnvelope, noSecretsInLogsTest, reliabilityFile, send, watchLogs, type Reply } from './support.js';
import { makeWorkspace, roomyServer, widgetHeaders, type SiteFx } from './world.js';
import { XSS_CORPUS } from './xss-corpus.js';

reliabilityFile();

function expectJson(r: Reply): void {
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  expect(r.headers.get('x-content-type-options')).toBe('nosniff');
}

describe('stored XSS corpus', () => {
  let srv: TestServer;
  let site: SiteFx;
  beforeAll(async () => {
    srv = await roomyServer();
    watchLogs(() => srv.logs);
    site = makeWorkspace(srv, 'Xss', 1).sites[0]!;
  });
  afterAll(async () => {
    await srv?.close();
  });

  test('the corpus has at least 30 payloads of every family', () => {
    expect(XSS_CORPUS.length).toBeGreaterThanOrEqual(30);
    for (const family of [/<img[^>]*onerror/i, /<svg[^>]*onload/i, /JaVaScRiPt:/, /^data:/, /<noscript>/]) {
      expect(XSS_CORPUS.some((p) => family.test(p)), String(family)).toBe(true);
    }
  });

  test.each(XSS_CORPUS.map((p, i) => [i, p] as const))('payload %i is stored and returned verbatim as JSON', async (_i, payload) => {
    counters.badInputs++;
    const expected = payload.trim();
    const name = payload.slice(0, 100);
    const created = await send(srv.base, 'POST', `/v1/widget/${site.serviceId}/tickets`, {
      headers: widgetHeaders(site, 'live'),
      body: { message: payload, visitor: { name }, metadata: { note: payload.slice(0, 500) } },
    });
    expect(created.status, created.text).toBe(201);
    expectJson(created);
    expect(created.json.messages[0].body).toBe(expected);
    expect(created.json.ticket.visitor.name).toBe(name.trim());
    expect(created.json.ticket.metadata.note).toBe(payload.slice(0, 500));
    const { id } = created.json.ticket;
    const token = created.json.visitor_token;

    // An agent answers with the same payload, under the same name.
    const reply = await send(srv.base, 'POST', `/v1/sites/${site.serviceId}/tickets/${id}/messages`, {
      headers: { Authorization: `Bearer ${site.ws.sk.live}` },
      body: { message: payload, author_name: name.trim() || 'Agent' },
    });
    expect(reply.status, reply.text).toBe(201);
    expect(reply.json.message.body).toBe(expected);

    const widgetRead = await send(srv.base, 'GET', `/v1/widget/${site.serviceId}/tickets/${id}/messages`, { headers: widgetHeaders(site, 'live', token) });
    expect(widgetRead.status).toBe(200);
    expectJson(widgetRead);
    expect(widgetRead.json.messages.map((m: { body: string }) => m.body)).toEqual([expected, expected]);
    expect(widgetRead.json.messages[1].author_name).toBe(name.trim() || 'Agent');
    expect(widgetRead.json.ticket.metadata.note).toBe(payload.slice(0, 500));

    const manageRead = await send(srv.base, 'GET', `/v1/sites/${site.serviceId}/tickets/${id}`, { headers: { Authorization: `Bearer ${site.ws.sk.live}` } });
    expect(manageRead.status).toBe(200);
    expectJson(manageRead);
    expect(manageRead.json.messages.map((m: { body: string }) => m.body)).toEqual([expected, expected]);
    expect(manageRead.json.ticket.visitor.name).toBe(name.trim());

    // The raw bytes are JSON: no payload appears unescaped where an HTML sniffer could find it first.
    expect(widgetRead.text.trimStart().startsWith('{')).toBe(true);
  });

  test('script and data URLs are refused as page_url; the refusal stores nothing', async () => {
    const bad = XSS_CORPUS.filter((p) => /^\s*(javascript|data|vbscript|jav)/i.test(p));
    expect(bad.length).toBeGreaterThanOrEqual(5);
    for (const page_url of [...bad, 'JAVASCRIPT:alert(1)', ' javascript:alert(1)', 'javascript://example.com/%0aalert(1)']) {
      counters.badInputs++;
      const r = await send(srv.base, 'POST', `/v1/widget/${site.serviceId}/tickets`, { headers: widgetHeaders(site, 'live'), body: { message: 'hi', page_url } });
      expect(r.status, `${page_url} -> ${r.text}`).toBe(400);
      expectEnvelope(r);
      expect(r.json.error.code).toBe('invalid_request');
    }
    // Script URLs are plain text elsewhere: stored as the message they are.
    const ok = await send(srv.base, 'POST', `/v1/widget/${site.serviceId}/tickets`, { headers: widgetHeaders(site, 'live'), body: { message: 'javascript:alert(1)' } });
    expect(ok.status).toBe(201);
  });

  test('error messages never reflect a payload unescaped outside JSON', async () => {
    for (const payload of XSS_CORPUS.slice(0, 10)) {
      counters.badInputs++;
      const r = await send(srv.base, 'POST', `/v1/widget/${site.serviceId}/tickets`, { headers: widgetHeaders(site, 'live'), body: { message: payload, visitor: { email: payload } } });
      expect(r.status).toBe(400);
      expectJson(r);
      expectEnvelope(r);
    }
  });

  noSecretsInLogsTest();
});
