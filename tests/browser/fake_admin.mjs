// A development aid, not a test: a stand-in for loopchat's admin port, to work on the
// inspector page (src/admin/page/) and its browser test (inspect.mjs) without building
// the server. It serves the three page files, read from disk on every request (edit and
// reload), with the admin port's Content-Security-Policy, and a WebSocket at
// /inspect/ws that pushes synthetic snapshots, in the schema the real server sends, 4
// times a second. The simulated loop is busy for 8 s (a benchmark: hundreds of turns per
// snapshot, many events per wake-up, many frames per write) and then idle for 4 s (a few
// turns, each a long sleep in poll), over and over. A room with an HTML-like name tests
// that the page shows it as text. The real test runs against loopchat itself.
//
//   node tests/browser/fake_admin.mjs [--port 9090] [--token SECRET] [--no-rooms] [--redis]
//
// With --redis the snapshots carry a link to Redis that is up for 17 s of every 20, then
// down for 2 s, then connecting for 1 s, for the page's Redis card.
//
// Prints `fake admin port: http://127.0.0.1:PORT/inspect` once it listens (port 0, the
// default, picks a free one). With --token, /inspect/ws wants `?token=SECRET` (or an
// `Authorization: Bearer SECRET` header) and answers 401 otherwise; the page files are
// served to anyone, as they hold no data (a browser asks for the stylesheet and the
// script without the page's query).

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { WebSocketServer } from 'ws';

const PAGE_DIR = new URL('../../src/admin/page/', import.meta.url);
const FILES = {
  '/inspect': ['inspect.html', 'text/html; charset=utf-8'],
  '/inspect.js': ['inspect.js', 'text/javascript; charset=utf-8'],
  '/inspect.css': ['inspect.css', 'text/css; charset=utf-8'],
};
const CSP = "default-src 'self'; connect-src 'self' ws: wss:";
const PUSH_MS = 250;

// ------------------------------------------------------------------------ arguments

const args = process.argv.slice(2);
const options = { port: 0, token: null, rooms: true, redis: false };
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--port') options.port = Number(args[++i]);
  else if (args[i] === '--token') options.token = args[++i];
  else if (args[i] === '--no-rooms') options.rooms = false;
  else if (args[i] === '--redis') options.redis = true;
  else {
    console.error('usage: node tests/browser/fake_admin.mjs [--port N] [--token SECRET] [--no-rooms] [--redis]');
    process.exit(2);
  }
}

// ------------------------------------------------------------------------ the simulated loop

const EVENT_BOUNDS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const FRAME_BOUNDS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
const started = Date.now();
const UPTIME_AT_START = 42.5; // as if the server had been up a while
const totals = {
  turns: 0, events: 0, accepted: 0, refused: 0, messages_in: 0, messages_out: 0,
  bytes_in: 0, bytes_out: 0, broadcasts: 0, deliveries: 0, writes: 0,
  slow_closed: 0, dropped_messages: 0, rate_limited: 0,
};
const histograms = {
  events_per_wakeup: { bounds: EVENT_BOUNDS, counts: EVENT_BOUNDS.map(() => 0).concat(0), sum: 0, count: 0 },
  frames_per_write: { bounds: FRAME_BOUNDS, counts: FRAME_BOUNDS.map(() => 0).concat(0), sum: 0, count: 0 },
};
let seq = 0;
let open = 12;

const rand = (lo, hi) => lo + Math.random() * (hi - lo);
const randInt = (lo, hi) => Math.floor(rand(lo, hi + 1));
const round1 = (x) => Math.round(x * 10) / 10;

function observe(h, value) {
  let i = h.bounds.findIndex((b) => value <= b);
  if (i < 0) i = h.bounds.length;
  h.counts[i] += 1;
  h.sum += value;
  h.count += 1;
}

/** The benchmark runs for 8 s out of every 12. */
function busyNow() {
  return ((Date.now() - started) / 1000) % 12 < 8;
}

function makeTurn(busy) {
  seq += 1;
  let t;
  if (busy) {
    // Events come in bursts: mostly a few, sometimes dozens.
    const events = Math.min(400, Math.max(1, Math.round(Math.exp(rand(0, 4.2)))));
    const messagesIn = randInt(0, Math.min(events, 3));
    const members = Math.max(1, open - 3);
    const deliveries = messagesIn * members;
    const writes = deliveries ? Math.min(open, randInt(1, Math.ceil(deliveries / 8) + 1)) : randInt(0, 2);
    const frames = Math.max(writes, deliveries);
    t = {
      seq, events, accepts: Math.random() < 0.01 ? 1 : 0, reads: events, bytes_in: messagesIn * 140,
      messages_in: messagesIn, broadcasts: messagesIn, writes, frames, bytes_out: frames * 140,
      poll_wait_us: round1(Math.random() < 0.05 ? rand(500, 5000) : rand(2, 80)),
      dispatch_us: round1(events * rand(1.5, 4)),
      timers_us: round1(Math.random() < 0.2 ? rand(0.2, 3) : 0),
      flush_us: round1(writes * rand(0.8, 2.5)),
    };
  } else {
    // Idle: the loop sleeps in poll until a deadline or the inspector's own push.
    t = {
      seq, events: 1, accepts: 0, reads: Math.random() < 0.3 ? 1 : 0, bytes_in: 0, messages_in: 0,
      broadcasts: 0, writes: 1, frames: 1, bytes_out: 1800,
      poll_wait_us: round1(rand(120_000, 245_000)), dispatch_us: round1(rand(4, 30)),
      timers_us: round1(Math.random() < 0.5 ? rand(0.3, 4) : 0), flush_us: round1(rand(3, 20)),
    };
  }
  totals.turns += 1;
  totals.events += t.events;
  totals.accepted += t.accepts;
  totals.messages_in += t.messages_in;
  totals.bytes_in += t.bytes_in;
  totals.broadcasts += t.broadcasts;
  totals.deliveries += t.frames;
  totals.messages_out += t.frames;
  totals.writes += t.writes;
  totals.bytes_out += t.bytes_out;
  observe(histograms.events_per_wakeup, t.events);
  // The turn's frames shared out over its writes.
  for (let w = 0; w < t.writes; w++) {
    observe(histograms.frames_per_write, Math.floor(t.frames / t.writes) + (w < t.frames % t.writes ? 1 : 0));
  }
  return t;
}

function snapshot() {
  const busy = busyNow();
  const n = busy ? randInt(150, 260) : randInt(1, 2);
  const recent = Array.from({ length: n }, () => makeTurn(busy));
  // Benchmark clients come and go.
  open = Math.max(8, Math.min(80, open + (busy ? randInt(-1, 4) : randInt(-3, 0))));
  const handshake = busy ? randInt(0, 3) : 0;
  const closing = randInt(0, 1);
  const line = 1;
  const by_phase = { handshake, websocket: open - handshake - closing - line, line, closing };
  const consumers = busy
    ? Array.from({ length: 5 }, (_, i) => ({
      id: 7 + i * 13,
      peer: `127.0.0.1:${53412 + i * 7}`,
      queued_bytes: Math.round(rand(2, 256) * 1024),
    })).sort((a, b) => b.queued_bytes - a.queued_bytes)
    : [];
  if (busy && Math.random() < 0.02) totals.slow_closed += 1;
  const snap = {
    type: 'snapshot',
    server: {
      version: '0.1.0',
      mode: options.rooms ? 'chat' : 'broadcast',
      uptime_seconds: UPTIME_AT_START + (Date.now() - started) / 1000,
      pid: process.pid,
    },
    totals: { ...totals },
    connections: {
      open,
      by_phase,
      by_transport: {
        http: { handshake, closing: 0 },
        websocket: { open: by_phase.websocket, closing },
        line: { open: line, closing: 0 },
        admin: { handshake: 0, open: 1, closing: 0 },
      },
    },
    queued_outbound_bytes: consumers.reduce((s, c) => s + c.queued_bytes, 0),
    histograms: structuredClone(histograms),
    recent_turns: recent,
    slowest_consumers: consumers,
  };
  if (options.rooms) {
    snap.rooms = [
      { name: 'lobby', members: by_phase.websocket + line },
      { name: 'design', members: 3 },
      { name: 'rust', members: busy ? 5 : 2 },
      { name: '<img src=x onerror=alert(1)>', members: 1 },
    ];
  }
  if (options.redis) {
    // Every 20 s Redis goes away for 2 s, then the link takes 1 s to come back.
    const second = Math.floor((Date.now() - started) / 1000);
    const cycle = second % 20;
    const linkState = cycle < 17 ? 'up' : cycle < 19 ? 'down' : 'connecting';
    const rounds = Math.floor(second / 20);
    snap.links = [{
      name: 'redis',
      peer: 'redis://127.0.0.1:6380/0',
      state: linkState,
      nodes: linkState === 'down' ? 0 : 1,
      pending_replies: linkState === 'up' ? randInt(0, 3) : 0,
      reconnects: 2 * rounds + (cycle >= 19 ? 2 : cycle >= 18 ? 1 : 0),
      lost: rounds + (cycle >= 17 ? 1 : 0),
    }];
  } else {
    snap.links = [];
  }
  return JSON.stringify(snap);
}

// ------------------------------------------------------------------------ the server

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const file = FILES[url.pathname];
  if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
    return;
  }
  const body = await readFile(new URL(file[0], PAGE_DIR));
  res.writeHead(200, {
    'content-type': file[1],
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
});

const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname !== '/inspect/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  const bearer = (req.headers.authorization ?? '').replace(/^Bearer /, '');
  if (options.token != null && url.searchParams.get('token') !== options.token && bearer !== options.token) {
    socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws));
});

// One simulated loop for every inspector, as on the real server.
setInterval(() => {
  if (wss.clients.size === 0) return;
  const message = snapshot();
  for (const ws of wss.clients) ws.send(message);
}, PUSH_MS);

server.listen(options.port, '127.0.0.1', () => {
  console.log(`fake admin port: http://127.0.0.1:${server.address().port}/inspect`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
