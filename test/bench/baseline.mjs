#!/usr/bin/env node
// The baselines Parley is measured against, each run in its own process:
//   node test/bench/baseline.mjs express PORT   bare Express 5 with express.json() and one JSON route:
//                                               the ceiling for any Express service on this machine
//   node test/bench/baseline.mjs http PORT      a raw node:http route: the floor of Node itself
// The one route, /json, answers GET with a small JSON document and POST with one built from the
// parsed body (201), so each Parley case is compared with the same method and a like body.
import { createServer } from 'node:http';
import express from 'express';

const [kind, portArg] = process.argv.slice(2);
const port = Number(portArg);
if (!['express', 'http'].includes(kind ?? '') || !Number.isInteger(port)) {
  process.stderr.write('usage: baseline.mjs express|http PORT\n');
  process.exit(2);
}

const reply = (body) => ({ ok: true, id: 'msg_0123456789abcdefghijkl', received: body?.message?.length ?? 0, at: new Date().toISOString() });

let server;
if (kind === 'express') {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '32kb' }));
  app.all('/json', (req, res) => {
    res.status(req.method === 'POST' ? 201 : 200).json(reply(req.body));
  });
  server = createServer(app);
} else {
  server = createServer((req, res) => {
    if (req.url !== '/json') {
      res.writeHead(404).end();
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      } catch {
        res.writeHead(400).end();
        return;
      }
      const out = JSON.stringify(reply(body));
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
}
server.keepAliveTimeout = 5_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
