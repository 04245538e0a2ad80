// The load generator of benches/scaleout.sh for Socket.IO servers, since `loopchat bench`
// speaks plain WebSocket only. It runs the scenario of `loopchat bench broadcast --rate`
// with socket.io-client, with the same definitions and the same JSON field names where
// they mean the same thing (src/bin/loopchat/bench/report.rs).
//
//   node load.js --url ws://127.0.0.1:3001,ws://127.0.0.1:3002 --clients 1000 \
//       --senders 100 --rate 1 [--size 64] [--duration 10] [--warmup 1] [--drain 3] \
//       [--self-delivery] [--workers 1] [--connect-concurrency 64] \
//       [--server-pid PID,PID] [--label NAME] [--client socket.io-client|raw]
//
// - C clients (socket.io-client, WebSocket transport only, no reconnection); client i
//   connects to URL i mod n. The server is expected to put every client in one room and
//   to send each `message` event to the whole room as a `message` event (server.js).
// - S senders, chosen among the connected clients as loopchat bench does (spread evenly,
//   client k*open/S), then moved to the next client whose URL index is k mod n, so the
//   senders are shared evenly between the URLs (loopchat bench's even spread would put
//   them all on the first URL when C/S is a multiple of n).
// - Each sender emits `--rate` messages a second (per sender, as loopchat bench's --rate;
//   the total is S times that) on a fixed schedule, senders staggered evenly over one
//   period. Each message carries its *scheduled* time and latency is counted from it, so
//   a server or generator that falls behind shows as latency (no coordinated omission);
//   `send_lag_us` says how late the generator itself was.
// - A message is 64 bytes of text by default: the marker ~lcb1:RUN:SENDER:SEQ:TIME~ of
//   loopchat bench (run id, sender slot, sequence number, scheduled time in ns, in hex)
//   padded with filler.
// - Phases: connect; warm-up (--warmup s of load); measure (--duration s); drain (sending
//   stopped, at most --drain s for the rest, less if everything has arrived); close.
//
// Definitions, as in loopchat bench (src/bin/loopchat/bench/stats.rs):
// - expected: every message times every client connected when sending began, except its
//   sender; the sender's own copy (a chat sends it; --self-delivery expects it, otherwise
//   detected from what senders receive) is counted apart, in self_deliveries.
// - delivered: unique deliveries to expected recipients (own copies not included).
// - lost: expected − delivered, plus the own copies that never came back when
//   self_delivery. A client that is dropped stays expected: what it missed is lost.
// - duplicated: a message the client already had; out_of_order: arrived after a later
//   message of the same sender.
// - deliveries_per_s: unique deliveries (own copies not included) that arrived inside the
//   measured window, divided by its length.
// - latency_us: messages scheduled inside the measured window, whenever they arrive (own
//   copies not included), in a log histogram of 0.1 % resolution (hdrhistogram's 3
//   significant digits).
//
// The generator is Node: on its own it can be the bottleneck (every delivery is a
// WebSocket frame, an Engine.IO and a Socket.IO packet decoded in JavaScript). It reports
// its CPU time in the measured window (bench_cpu_s, bench_cpu_pct: percent of one core,
// summed over its processes) and each process's event-loop utilisation, and sets
// generator.saturated (with a note) when the processes used more than 85 % of the cores
// they could use, or an event loop was busy more than 90 % of the window (CPU time can be
// lower than that when other processes share the core): then the figures are the
// generator's, not the server's. Sends more than 5 ms late at p99 get a note. --workers N runs the clients in N child
// processes (client i in worker i mod N), for machines with cores to spare; on a single
// pinned core it does not help.
//
// Prints one JSON object on stdout; progress on stderr. Exit status 1 if it could not run.

"use strict";

const { fork } = require("node:child_process");
const { readFileSync } = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { performance } = require("node:perf_hooks");

const MARKER_LEN = 46;
const PREFIX = "~lcb1:";
const FILLER = "abcdefghijklmnopqrstuvwxyz0123456789";
const CONNECT_TIMEOUT_MS = 10_000;
const CONNECT_PHASE_LIMIT_MS = 120_000;
const CLOSE_LIMIT_MS = 10_000;
/// A sender whose output (Engine.IO's write buffer) holds more packets than this skips
/// its turn, and the skip is counted (loopchat bench caps a connection's output at 4 MiB).
const MAX_BACKLOG_PACKETS = 65_536;
const MAX_GAPS_PER_PAIR = 1024;
const SATURATED_CPU = 0.85;
const SATURATED_SEND_LAG_US = 5_000;
const SATURATED_ELU = 0.9;

const now = () => Number(process.hrtime.bigint()); // CLOCK_MONOTONIC: the same in every process

// ---------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = {
    urls: ["ws://127.0.0.1:3000"],
    clients: 1000,
    senders: 10,
    rate: 1,
    size: 64,
    duration: 10,
    warmup: 1,
    drain: 3,
    selfDelivery: false,
    workers: 1,
    connectConcurrency: 64,
    serverPids: [],
    label: null,
    client: "socket.io-client",
  };
  const number = (name, value, { min = 0, integer = false } = {}) => {
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
      usage(`${name} takes ${integer ? "an integer" : "a number"} of at least ${min}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    switch (arg) {
      case "--url":
        o.urls = String(value || "").split(",").filter(Boolean);
        i++;
        break;
      case "--clients":
        o.clients = number(arg, value, { min: 2, integer: true });
        i++;
        break;
      case "--senders":
        o.senders = number(arg, value, { min: 1, integer: true });
        i++;
        break;
      case "--rate":
        o.rate = number(arg, value, { min: 1e-6 });
        i++;
        break;
      case "--size":
        o.size = number(arg, value, { min: MARKER_LEN, integer: true });
        i++;
        break;
      case "--duration":
        o.duration = number(arg, value, { min: 0.1 });
        i++;
        break;
      case "--warmup":
        o.warmup = number(arg, value);
        i++;
        break;
      case "--drain":
        o.drain = number(arg, value);
        i++;
        break;
      case "--self-delivery":
        o.selfDelivery = true;
        break;
      case "--workers":
        o.workers = number(arg, value, { min: 1, integer: true });
        i++;
        break;
      case "--connect-concurrency":
        o.connectConcurrency = number(arg, value, { min: 1, integer: true });
        i++;
        break;
      case "--server-pid":
        o.serverPids = String(value || "").split(",").filter(Boolean).map((p) => number(arg, p, { min: 1, integer: true }));
        i++;
        break;
      case "--label":
        o.label = value;
        i++;
        break;
      case "--client":
        if (value !== "socket.io-client" && value !== "raw") usage("--client is socket.io-client or raw");
        o.client = value;
        i++;
        break;
      case "--json":
        break; // the output is always one JSON object; accepted for loopchat bench's sake
      case "-h":
      case "--help":
        process.stdout.write(readFileSync(__filename, "utf8").split("\n\"use strict\"")[0].replace(/^\/\/ ?/gm, ""));
        process.exit(0);
        break;
      default:
        usage(`unknown argument ${arg}`);
    }
  }
  if (o.urls.length === 0 || !o.urls.every((u) => /^wss?:\/\//.test(u))) usage("--url takes ws:// URLs, comma-separated");
  if (o.senders > o.clients) usage(`--senders (${o.senders}) cannot exceed --clients (${o.clients})`);
  return o;
}

function usage(problem) {
  console.error(`load.js: ${problem} (see --help)`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------
// Markers: ~lcb1:RRRRRRRR:SSSSSSSS:QQQQQQQQ:TTTTTTTTTTTT~ then filler, as in loopchat bench

const hex = (value, width) => value.toString(16).padStart(width, "0");

function messageText(run, sender, seq, sentNs, size) {
  const marker = `${PREFIX}${hex(run, 8)}:${hex(sender, 8)}:${hex(seq, 8)}:${hex(sentNs, 12)}~`;
  return marker + FILLER.repeat(Math.ceil(size / FILLER.length)).slice(0, size - MARKER_LEN);
}

/// The marker at the start of `text`, or null.
function parseMarker(text) {
  if (typeof text !== "string" || text.length < MARKER_LEN || !text.startsWith(PREFIX) || text.charCodeAt(45) !== 126) {
    return null;
  }
  const run = parseInt(text.slice(6, 14), 16);
  const sender = parseInt(text.slice(15, 23), 16);
  const seq = parseInt(text.slice(24, 32), 16);
  const sentNs = parseInt(text.slice(33, 45), 16);
  if (Number.isNaN(run + sender + seq + sentNs)) return null;
  return { run, sender, seq, sentNs };
}

// ---------------------------------------------------------------------------------------
// A log histogram of nanoseconds, 0.1 % per bucket, mergeable across processes

const LOG_RATIO = Math.log(1.001);
const BUCKETS = Math.ceil(Math.log(3.6e12) / LOG_RATIO) + 2; // 1 ns to an hour

class Histogram {
  constructor() {
    this.counts = new Float64Array(BUCKETS);
    this.total = 0;
    this.max = 0;
  }
  record(ns) {
    const value = Math.max(1, ns);
    const bucket = Math.min(BUCKETS - 1, Math.floor(Math.log(value) / LOG_RATIO));
    this.counts[bucket]++;
    this.total++;
    if (value > this.max) this.max = value;
  }
  toJSON() {
    const buckets = [];
    for (let b = 0; b < BUCKETS; b++) if (this.counts[b] > 0) buckets.push([b, this.counts[b]]);
    return { buckets, total: this.total, max: this.max };
  }
  merge(json) {
    for (const [b, n] of json.buckets) this.counts[b] += n;
    this.total += json.total;
    this.max = Math.max(this.max, json.max);
  }
  /// The value at quantile q: the top of the bucket holding the ceil(q × total)-th value.
  quantile(q) {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b];
      if (seen >= rank) return Math.min(this.max, Math.exp((b + 1) * LOG_RATIO));
    }
    return this.max;
  }
  /// In microseconds, with loopchat bench's field names.
  latency() {
    const us = (ns) => Math.round(ns) / 1000;
    return {
      p50: us(this.quantile(0.5)),
      p90: us(this.quantile(0.9)),
      p99: us(this.quantile(0.99)),
      p999: us(this.quantile(0.999)),
      max: us(this.max),
      count: this.total,
    };
  }
}

// ---------------------------------------------------------------------------------------
// A worker: some of the clients, the senders among them, and their accounting

/// A client on socket.io-client, the library a Socket.IO user runs.
function sioSocket(url, on) {
  const { io } = require("socket.io-client");
  const socket = io(url, {
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
    timeout: CONNECT_TIMEOUT_MS,
  });
  socket.on("connect", on.connect);
  socket.on("connect_error", (error) => on.connectError(error.message));
  socket.on("disconnect", (reason) => on.disconnect(reason));
  socket.on("message", on.message);
  return {
    emit: (text) => socket.emit("message", text),
    backlog: () => {
      const engine = socket.io.engine;
      return engine && engine.writeBuffer ? engine.writeBuffer.length : 0;
    },
    close: () => socket.close(),
    disconnect: () => socket.disconnect(),
  };
}

/// A client that speaks the same wire protocol (Engine.IO 4 over a WebSocket, Socket.IO 5
/// packets) directly on the `ws` library that socket.io-client itself uses: the open packet
/// `0{...}`, CONNECT `40` and its reply `40{...}`, ping `2` answered with pong `3`, events
/// `42["message","..."]`, DISCONNECT `41`. What the server sees is the same; the
/// generator skips socket.io-client's layers (Engine.IO and Socket.IO objects, the
/// decoder, event emitters), which cost several times the server's CPU per delivery.
/// Only for payloads that need no JSON escaping, as the markers and filler here.
function rawSocket(url, on) {
  const WebSocket = require("ws");
  const target = new URL(url);
  target.pathname = target.pathname === "/" ? "/socket.io/" : target.pathname;
  target.search = "?EIO=4&transport=websocket";
  const ws = new WebSocket(target.href, { perMessageDeflate: false, handshakeTimeout: CONNECT_TIMEOUT_MS });
  let state = "opening"; // opening, connected, closed
  const timer = setTimeout(() => fail("timeout"), CONNECT_TIMEOUT_MS);
  const fail = (reason) => {
    if (state === "opening") {
      state = "closed";
      clearTimeout(timer);
      on.connectError(reason);
      ws.terminate();
    }
  };
  const EVENT_HEAD = '42["message","';
  ws.on("message", (data) => {
    // data is a Buffer: the first bytes say which packet it is.
    const type = data[0];
    if (type === 0x34 /* 4 */ && data[1] === 0x32 /* 2: EVENT */) {
      // 42["message","TEXT"]: TEXT is our marker and filler, with nothing to unescape.
      if (data.length > EVENT_HEAD.length + 2 && data.latin1Slice(0, EVENT_HEAD.length) === EVENT_HEAD) {
        on.message(data.latin1Slice(EVENT_HEAD.length, data.length - 2));
      }
    } else if (type === 0x32 /* 2: ping */) {
      ws.send("3");
    } else if (type === 0x30 /* 0: open */) {
      ws.send("40");
    } else if (type === 0x34 && data[1] === 0x30 /* 40: connected to the namespace */) {
      if (state === "opening") {
        state = "connected";
        clearTimeout(timer);
        on.connect();
      }
    } else if (type === 0x34 && (data[1] === 0x34 || data[1] === 0x31) /* 44 error, 41 disconnect */) {
      fail(data.toString());
      if (state === "connected") ws.close();
    } else if (type === 0x31 /* 1: close */) {
      ws.close();
    }
  });
  ws.on("error", (error) => fail(error.message));
  ws.on("close", (code) => {
    if (state === "opening") fail(`closed (${code})`);
    else if (state === "connected") {
      state = "closed";
      on.disconnect(`transport close (${code})`);
    }
  });
  return {
    emit: (text) => ws.send(`${EVENT_HEAD}${text}"]`),
    backlog: () => Math.ceil(ws.bufferedAmount / 64),
    close: () => ws.terminate(),
    disconnect: () => {
      if (ws.readyState === WebSocket.OPEN) {
        ws.send("41");
        ws.close(1000);
      } else {
        ws.terminate();
      }
    },
  };
}

function runWorker() {
  let config = null; // from "init"
  let clients = []; // { global, url, socket, open, expects }
  const counts = {
    sent: 0,
    expected: 0,
    delivered: 0,
    self_copies: 0,
    duplicated: 0,
    out_of_order: 0,
    measured: 0,
    foreign: 0,
    unexpected: 0,
    sends_skipped: 0,
    self_expected: 0,
  };
  const failures = {};
  const drops = {};
  let opened = 0;
  let failed = 0;
  let firstAttempt = 0;
  let lastSuccess = 0;
  const latency = new Histogram();
  const sendLag = new Histogram();
  let next = null; // Uint32Array: next sequence expected, per (sender, local receiver)
  const gaps = new Map();
  let localIndex = new Map(); // global client index -> local index
  let senders = []; // global: client index of each slot
  let localSlots = []; // slots whose client is ours, by slot number
  let sentBySlot = null; // Uint32Array over every slot (ours are counted here)
  let windowFrom = 0;
  let windowTo = 0;
  let sendUntil = 0;
  let expectingLocal = 0;
  let draining = false;
  let cpuFrom = null;
  let cpu = null;
  let eluFrom = null;
  let elu = null;

  const send = (message) => process.send(message);
  const bump = (map, key) => {
    map[key] = (map[key] || 0) + 1;
  };

  function connectAll() {
    firstAttempt = now();
    let nextClient = 0;
    let inFlight = 0;
    let done = 0;
    const limit = config.connectConcurrency;
    const finish = () => {
      send({ type: "connected", opened, failed, failures, open: clients.filter((c) => c.open).map((c) => c.global), firstAttempt, lastSuccess });
    };
    const start = () => {
      while (inFlight < limit && nextClient < clients.length) {
        const client = clients[nextClient++];
        inFlight++;
        let settled = false;
        const settle = (ok, reason) => {
          if (settled) return;
          settled = true;
          inFlight--;
          done++;
          if (ok) {
            opened++;
            client.open = true;
            lastSuccess = now();
          } else {
            failed++;
            bump(failures, reason);
            client.socket.close();
          }
          if (done === clients.length) finish();
          else start();
        };
        const onDrop = (reason) => {
          if (client.open && !client.closing) {
            client.open = false;
            bump(drops, reason);
          }
        };
        client.socket =
          config.client === "raw"
            ? rawSocket(client.url, {
                connect: () => settle(true),
                connectError: (reason) => settle(false, `connect: ${reason}`),
                disconnect: onDrop,
                message: (text) => onMessage(client.local, text),
              })
            : sioSocket(client.url, {
                connect: () => settle(true),
                connectError: (reason) => settle(false, `connect: ${reason}`),
                disconnect: onDrop,
                message: (text) => onMessage(client.local, text),
              });
      }
    };
    if (clients.length === 0) finish();
    else start();
  }

  function onMessage(receiver, text) {
    const at = now();
    const marker = parseMarker(text);
    if (marker === null) return; // not one of ours (a chat's other events)
    if (marker.run !== config.run) {
      counts.foreign++;
      return;
    }
    const { sender, seq, sentNs } = marker;
    if (sender >= senders.length || !clients[receiver].expects) {
      counts.unexpected++;
      return;
    }
    const pair = sender * clients.length + receiver;
    const expected = next[pair];
    if (seq === expected) {
      next[pair] = seq + 1;
    } else if (seq > expected) {
      let list = gaps.get(pair);
      if (!list) gaps.set(pair, (list = []));
      if (list.length === MAX_GAPS_PER_PAIR) list.shift();
      list.push([expected, seq]);
      next[pair] = seq + 1;
    } else if (fillGap(pair, seq)) {
      counts.out_of_order++;
    } else {
      counts.duplicated++;
      return;
    }
    if (senders[sender] === clients[receiver].global) {
      counts.self_copies++;
    } else {
      counts.delivered++;
      if (at >= windowFrom && at < windowTo) counts.measured++;
      if (sentNs + config.epoch >= windowFrom && sentNs + config.epoch < windowTo) latency.record(at - config.epoch - sentNs);
    }
  }

  function fillGap(pair, seq) {
    const list = gaps.get(pair);
    if (!list) return false;
    const at = list.findIndex(([from, to]) => seq >= from && seq < to);
    if (at < 0) return false;
    const [from, to] = list[at];
    const pieces = [];
    if (from < seq) pieces.push([from, seq]);
    if (seq + 1 < to) pieces.push([seq + 1, to]);
    list.splice(at, 1, ...pieces);
    if (list.length === 0) gaps.delete(pair);
    return true;
  }

  // The schedule: slot k sends at start + r × period + k × period / S, r = 0, 1, 2, ...
  function runSchedule(start) {
    const period = 1e9 / config.rate;
    const slotOffset = period / senders.length;
    let round = 0;
    let at = 0; // index into localSlots
    const due = () => start + round * period + localSlots[at] * slotOffset;
    const tick = () => {
      const t = now();
      let d;
      while ((d = due()) <= t && d < sendUntil) {
        const slot = localSlots[at];
        const client = clients[localIndex.get(senders[slot])];
        if (client.open) {
          if (client.socket.backlog() > MAX_BACKLOG_PACKETS) {
            counts.sends_skipped++;
          } else {
            client.socket.emit(messageText(config.run, slot, sentBySlot[slot], Math.round(d - config.epoch), config.size));
            sentBySlot[slot]++;
            counts.sent++;
            sendLag.record(t - d);
          }
        }
        if (++at === localSlots.length) {
          at = 0;
          round++;
        }
      }
      if (d < sendUntil) {
        setTimeout(tick, Math.max(0, (d - now()) / 1e6));
      } else {
        reportSent();
      }
    };
    // Told once the measured window is over (not at the last send), so the drain never
    // starts inside it.
    const reportSent = () => {
      if (now() < sendUntil) setTimeout(reportSent, Math.max(1, (sendUntil - now()) / 1e6));
      else send({ type: "sent", sent: Array.from(sentBySlot) });
    };
    if (localSlots.length === 0) {
      reportSent();
    } else {
      setTimeout(tick, Math.max(0, (start - now()) / 1e6));
    }
  }

  function startLoad(message) {
    senders = message.senders;
    sentBySlot = new Uint32Array(senders.length);
    localSlots = [];
    senders.forEach((client, slot) => {
      if (localIndex.has(client)) localSlots.push(slot);
    });
    for (const c of clients) c.expects = c.open;
    expectingLocal = clients.filter((c) => c.open).length;
    next = new Uint32Array(senders.length * clients.length);
    windowFrom = message.windowFrom;
    windowTo = message.windowTo;
    sendUntil = message.windowTo;
    setTimeout(() => {
      cpuFrom = process.cpuUsage();
      eluFrom = performance.eventLoopUtilization();
    }, Math.max(0, (windowFrom - now()) / 1e6));
    setTimeout(() => {
      cpu = process.cpuUsage(cpuFrom);
      elu = performance.eventLoopUtilization(eluFrom);
    }, Math.max(0, (windowTo - now()) / 1e6));
    runSchedule(message.start);
  }

  function drain(message) {
    draining = true;
    // What this worker's clients should have received, now that every slot's count is known.
    const selfDelivery = config.selfDelivery || counts.self_copies > 0;
    counts.expected = 0;
    counts.self_expected = 0;
    message.sent.forEach((sent, slot) => {
      const local = localIndex.get(senders[slot]);
      const senderHere = local !== undefined && clients[local].expects;
      counts.expected += sent * (expectingLocal - (senderHere ? 1 : 0));
      if (senderHere && selfDelivery) counts.self_expected += sent;
    });
    const complete = () => counts.delivered >= counts.expected && counts.self_copies >= counts.self_expected;
    const report = (drainComplete) => {
      clearInterval(check);
      send({
        type: "result",
        counts,
        drainComplete,
        latency: latency.toJSON(),
        sendLag: sendLag.toJSON(),
        cpu,
        elu: elu ? elu.utilization : null,
        dropped: Object.values(drops).reduce((a, b) => a + b, 0),
        drops,
      });
    };
    const check = setInterval(() => {
      if (complete()) report(true);
      else if (now() >= message.deadline) report(false);
    }, 20);
  }

  function closeAll() {
    let closed = 0;
    for (const c of clients) {
      c.closing = true;
      if (c.socket) {
        c.socket.disconnect();
        closed++;
      }
    }
    send({ type: "closed", closed });
    setTimeout(() => process.exit(0), 200);
  }

  process.on("message", (message) => {
    switch (message.type) {
      case "init":
        config = message.config;
        clients = message.clients.map((global, local) => ({
          global,
          local,
          url: config.urls[global % config.urls.length],
          socket: null,
          open: false,
          expects: false,
          closing: false,
        }));
        localIndex = new Map(clients.map((c) => [c.global, c.local]));
        connectAll();
        break;
      case "start":
        startLoad(message);
        break;
      case "drain":
        drain(message);
        break;
      case "close":
        closeAll();
        break;
    }
  });
  process.on("disconnect", () => process.exit(0));
  void draining;
}

// ---------------------------------------------------------------------------------------
// The coordinator: starts the workers, chooses the senders, times the phases, reports

function procCpuSeconds(pid) {
  // utime and stime, fields 14 and 15 of /proc/PID/stat, in clock ticks (100 a second).
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function procMemory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (key) => {
    const m = status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"));
    return m ? Number(m[1]) : null;
  };
  return { rss_kib: kib("VmRSS"), peak_rss_kib: kib("VmHWM") };
}

function versionOf(name) {
  try {
    let dir = path.dirname(require.resolve(name));
    while (dir !== path.dirname(dir)) {
      try {
        const json = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
        if (json.name === name) return json.version;
      } catch {
        // one folder up
      }
      dir = path.dirname(dir);
    }
  } catch {
    // not installed
  }
  return null;
}

/// Slot k's client: loopchat bench's even spread over the open clients, moved forward to
/// the first open client on URL k mod n (so senders are shared evenly between the URLs).
function chooseSenders(open, count, urls) {
  const taken = new Set();
  const chosen = [];
  for (let k = 0; k < count; k++) {
    const base = Math.floor((k * open.length) / count);
    let pick = null;
    for (let step = 0; step < open.length; step++) {
      const candidate = open[(base + step) % open.length];
      if (!taken.has(candidate) && (urls === 1 || candidate % urls === k % urls)) {
        pick = candidate;
        break;
      }
    }
    if (pick === null) {
      for (let step = 0; step < open.length && pick === null; step++) {
        const candidate = open[(base + step) % open.length];
        if (!taken.has(candidate)) pick = candidate;
      }
    }
    taken.add(pick);
    chosen.push(pick);
  }
  return chosen;
}

async function coordinate(o) {
  const notes = [];
  const run = Math.floor(Math.random() * 0xffffffff) >>> 0;
  const epoch = now();
  const config = {
    run,
    epoch,
    urls: o.urls,
    size: o.size,
    rate: o.rate,
    selfDelivery: o.selfDelivery,
    client: o.client,
    connectConcurrency: Math.max(1, Math.ceil(o.connectConcurrency / o.workers)),
  };
  const workers = [];
  for (let w = 0; w < o.workers; w++) {
    const child = fork(__filename, ["--worker"], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
    const worker = { child, inbox: [], waiting: null, exited: false };
    child.on("message", (message) => {
      if (worker.waiting && worker.waiting.type === message.type) {
        const { resolve } = worker.waiting;
        worker.waiting = null;
        resolve(message);
      } else {
        worker.inbox.push(message);
      }
    });
    child.on("exit", (code) => {
      worker.exited = true;
      if (worker.waiting) worker.waiting.reject(new Error(`worker ${w} exited (${code}) while the run waited for "${worker.waiting.type}"`));
    });
    workers.push(worker);
  }
  const expect = (worker, type, ms) =>
    new Promise((resolve, reject) => {
      const at = worker.inbox.findIndex((m) => m.type === type);
      if (at >= 0) return resolve(worker.inbox.splice(at, 1)[0]);
      if (worker.exited) return reject(new Error(`a worker exited before "${type}"`));
      const timer = setTimeout(() => reject(new Error(`no "${type}" from a worker within ${ms / 1000} s`)), ms);
      worker.waiting = {
        type,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  const all = (type, ms) => Promise.all(workers.map((w) => expect(w, type, ms)));
  const tell = (message) => workers.forEach((w) => w.child.send(message));

  try {
    // Connect.
    process.stderr.write(`load.js: connecting ${o.clients} clients to ${o.urls.join(", ")} (${o.workers} worker(s))\n`);
    workers.forEach((w, index) => {
      const mine = [];
      for (let i = index; i < o.clients; i += o.workers) mine.push(i);
      w.child.send({ type: "init", config, clients: mine });
    });
    const connected = await all("connected", CONNECT_PHASE_LIMIT_MS);
    const open = connected.flatMap((c) => c.open).sort((a, b) => a - b);
    const failures = {};
    for (const c of connected) for (const [k, v] of Object.entries(c.failures)) failures[k] = (failures[k] || 0) + v;
    const opened = open.length;
    const failed = connected.reduce((a, c) => a + c.failed, 0);
    const firstAttempt = Math.min(...connected.map((c) => c.firstAttempt));
    const lastSuccess = Math.max(...connected.map((c) => c.lastSuccess));
    const handshakesPerS = opened > 0 && lastSuccess > firstAttempt ? opened / ((lastSuccess - firstAttempt) / 1e9) : 0;
    if (opened < 2) throw new Error(`only ${opened} clients connected, 2 needed: ${JSON.stringify(failures)}`);
    const senderCount = Math.min(o.senders, opened);
    if (senderCount < o.senders) notes.push(`only ${opened} clients connected: ${senderCount} senders instead of ${o.senders}`);
    const senders = chooseSenders(open, senderCount, o.urls.length);
    const sendersPerUrl = o.urls.map((_, u) => senders.filter((c) => c % o.urls.length === u).length);
    const clientsPerUrl = o.urls.map((_, u) => open.filter((c) => c % o.urls.length === u).length);

    // Load: warm-up, then the measured window.
    const start = now() + 50e6; // every worker has the message by then
    const windowFrom = start + o.warmup * 1e9;
    const windowTo = windowFrom + o.duration * 1e9;
    process.stderr.write(
      `load.js: ${opened} connected (${failed} failed); ${senderCount} senders × ${o.rate} msg/s = ${senderCount * o.rate} msg/s, ` +
        `${o.warmup} s warm-up, ${o.duration} s measured\n`,
    );
    tell({ type: "start", senders, start, windowFrom, windowTo });
    const pids = o.serverPids;
    let serverBefore = null;
    let serverAfter = null;
    let serverMemory = null;
    setTimeout(() => {
      serverBefore = pids.map((pid) => {
        try {
          return procCpuSeconds(pid);
        } catch (error) {
          notes.push(`cannot read the CPU time of process ${pid}: ${error.message}`);
          return null;
        }
      });
    }, Math.max(0, (windowFrom - now()) / 1e6));
    setTimeout(() => {
      serverAfter = pids.map((pid) => {
        try {
          return procCpuSeconds(pid);
        } catch {
          return null;
        }
      });
      serverMemory = pids.map((pid) => {
        try {
          return procMemory(pid);
        } catch (error) {
          notes.push(`cannot read the memory of process ${pid}: ${error.message}`);
          return { rss_kib: null, peak_rss_kib: null };
        }
      });
    }, Math.max(0, (windowTo - now()) / 1e6));

    const sentReports = await all("sent", (o.warmup + o.duration + 60) * 1000);
    const sent = new Array(senderCount).fill(0);
    for (const r of sentReports) r.sent.forEach((n, slot) => (sent[slot] += n));
    const deadline = now() + o.drain * 1e9;
    process.stderr.write(`load.js: sending stopped; draining (at most ${o.drain} s)\n`);
    tell({ type: "drain", sent, deadline });
    const results = await all("result", (o.drain + 30) * 1000);
    tell({ type: "close" });
    const closed = await all("closed", CLOSE_LIMIT_MS).catch(() => []);

    // Sum up.
    const sum = (key) => results.reduce((a, r) => a + r.counts[key], 0);
    const latency = new Histogram();
    const sendLag = new Histogram();
    for (const r of results) {
      latency.merge(r.latency);
      sendLag.merge(r.sendLag);
    }
    const totalSent = sum("sent");
    const selfCopies = sum("self_copies");
    const selfDelivery = o.selfDelivery || selfCopies > 0;
    const expected = sum("expected");
    const delivered = sum("delivered");
    const lost = Math.max(0, expected - delivered) + (selfDelivery ? Math.max(0, totalSent - selfCopies) : 0);
    const measured = sum("measured");
    const cpuS = results.map((r) => (r.cpu ? (r.cpu.user + r.cpu.system) / 1e6 : null));
    const benchCpuS = cpuS.every((v) => v !== null) ? Math.round(cpuS.reduce((a, b) => a + b, 0) * 100) / 100 : null;
    const benchCpuPct = benchCpuS !== null ? (benchCpuS / o.duration) * 100 : null;
    const cores = Math.min(o.workers, typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length);
    const lag = sendLag.latency();
    const reasons = [];
    if (benchCpuPct !== null && benchCpuPct > SATURATED_CPU * 100 * cores) {
      reasons.push(`its processes used ${benchCpuPct.toFixed(0)} % of one core with ${cores} core(s) to use`);
    }
    const elus = results.map((r) => r.elu).filter((v) => v !== null);
    if (elus.some((v) => v > SATURATED_ELU)) reasons.push(`event-loop utilisation ${Math.max(...elus).toFixed(2)}`);
    const saturated = reasons.length > 0;
    if (lag.p99 > SATURATED_SEND_LAG_US) {
      // One message reaches every client of a process in one burst of callbacks: sends due
      // meanwhile wait for it. Counted in the latency; a sign of saturation only with the above.
      notes.push(`sends were queued up to ${lag.p99.toFixed(0)} µs late at p99 (send_lag_us; included in latency_us)`);
    }
    if (saturated) notes.push(`the load generator was saturated (${reasons.join("; ")}): these figures are bounded by it, not by the server`);
    if (Object.keys(failures).length > 0) notes.push(`connection failures: ${JSON.stringify(failures)}`);
    notes.push("closed_cleanly counts the clients disconnected by the generator (a Socket.IO disconnect packet, then the WebSocket close), not a verified closing handshake");
    const servers = pids.map((pid, i) => {
      const before = serverBefore && serverBefore[i];
      const after = serverAfter && serverAfter[i];
      const cpu = before !== null && after !== null && before !== undefined && after !== undefined ? Math.round((after - before) * 100) / 100 : null;
      const memory = (serverMemory && serverMemory[i]) || { rss_kib: null, peak_rss_kib: null };
      return {
        pid,
        cpu_s: cpu,
        cpu_ns_per_delivery: cpu !== null && measured > 0 ? (cpu * 1e9) / measured : null,
        rss_kib: memory.rss_kib,
        peak_rss_kib: memory.peak_rss_kib,
      };
    });
    const drops = {};
    for (const r of results) for (const [k, v] of Object.entries(r.drops)) drops[k] = (drops[k] || 0) + v;
    const totalServerCpu = servers.length > 0 && servers.every((s) => s.cpu_s !== null) ? servers.reduce((a, s) => a + s.cpu_s, 0) : null;

    return {
      scenario: "broadcast",
      label: o.label,
      url: o.urls.join(","),
      clients: o.clients,
      senders: senderCount,
      size: o.size,
      window: null,
      rate: o.rate,
      duration_s: o.duration,
      sent: totalSent,
      delivered,
      expected,
      deliveries_per_s: measured / o.duration,
      round_trips_per_s: null,
      lost,
      duplicated: sum("duplicated"),
      out_of_order: sum("out_of_order"),
      self_delivery: selfDelivery,
      self_deliveries: selfCopies,
      latency_us: latency.latency(),
      send_lag_us: lag,
      bench_cpu_s: benchCpuS,
      bench_cpu_pct: benchCpuPct,
      server:
        servers.length === 1
          ? servers[0]
          : servers.length > 1
            ? {
                pid: null,
                cpu_s: totalServerCpu,
                cpu_ns_per_delivery: totalServerCpu !== null && measured > 0 ? (totalServerCpu * 1e9) / measured : null,
                rss_kib: servers.every((s) => s.rss_kib !== null) ? servers.reduce((a, s) => a + s.rss_kib, 0) : null,
                peak_rss_kib: servers.every((s) => s.peak_rss_kib !== null) ? servers.reduce((a, s) => a + s.peak_rss_kib, 0) : null,
              }
            : null,
      servers,
      connections: {
        opened,
        failed,
        handshakes_per_s: handshakesPerS,
        rss_before_kib: null,
        rss_after_kib: null,
        bytes_per_idle_connection: null,
        closed_cleanly: closed.reduce((a, c) => a + c.closed, 0),
        close_failed: 0,
        dropped: results.reduce((a, r) => a + r.dropped, 0),
        failures,
        drops,
      },
      details: {
        warmup_s: o.warmup,
        drain_s: o.drain,
        drain_complete: results.every((r) => r.drainComplete),
        measured_deliveries: measured,
        window_stalls: 0,
        sends_skipped: sum("sends_skipped"),
        foreign_markers: sum("foreign"),
        unexpected_markers: sum("unexpected"),
        notes,
      },
      points: null,
      svg: null,
      error: null,
      // Beyond loopchat bench's fields:
      urls: o.urls,
      clients_per_url: clientsPerUrl,
      senders_per_url: sendersPerUrl,
      total_rate: senderCount * o.rate,
      generator: {
        tool: "benches/peers/socketio/load.js",
        node: process.version,
        client: o.client,
        socket_io_client: o.client === "socket.io-client" ? versionOf("socket.io-client") : null,
        ws: o.client === "raw" ? versionOf("ws") : null,
        workers: o.workers,
        cores_usable: cores,
        worker_cpu_pct: cpuS.map((v) => (v === null ? null : (v / o.duration) * 100)),
        worker_event_loop_utilization: results.map((r) => r.elu),
        saturated,
      },
    };
  } finally {
    for (const w of workers) if (!w.exited) w.child.kill("SIGTERM");
  }
}

// ---------------------------------------------------------------------------------------

if (process.argv[2] === "--worker") {
  runWorker();
} else {
  const options = parseArgs(process.argv.slice(2));
  coordinate(options)
    .then((report) => {
      process.stdout.write(JSON.stringify(report) + "\n");
      const l = report.latency_us;
      process.stderr.write(
        `load.js: ${report.deliveries_per_s.toFixed(0)} deliveries/s, p50 ${l.p50.toFixed(0)} µs, p99 ${l.p99.toFixed(0)} µs, ` +
          `lost ${report.lost}, generator CPU ${report.bench_cpu_pct === null ? "?" : report.bench_cpu_pct.toFixed(0)} %` +
          `${report.generator.saturated ? " (SATURATED)" : ""}\n`,
      );
      process.exit(0);
    })
    .catch((error) => {
      process.stderr.write(`load.js: ${error.message}\n`);
      process.stdout.write(
        JSON.stringify({ scenario: "broadcast", label: options.label, url: options.urls.join(","), error: error.message }) + "\n",
      );
      process.exit(1);
    });
}
