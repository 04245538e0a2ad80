// loopchat's live inspector. One WebSocket to /inspect/ws on the admin port, which pushes a
// snapshot of the event loop's figures several times a second (one JSON text message
// each, `{"type": "snapshot", ...}`). From successive snapshots the page computes rates,
// keeps the last MAX_TURNS turns for the strip, and draws everything with createElement,
// createElementNS and textContent: nothing from the network is ever parsed as HTML, and
// no style or script is inline (the admin port's Content-Security-Policy forbids both;
// setting `element.style.x` from a script is allowed, being CSSOM, not markup).
'use strict';

(() => {
  // ---------------------------------------------------------------------------------
  // Settings

  /** Turns kept for the strip: about one column per 3 px at phone width. */
  const MAX_TURNS = 120;
  /** Rates are taken over this much server time, so they do not jitter from snapshot to
   * snapshot (a snapshot holds whole turns, and turns do not tick evenly). */
  const RATE_WINDOW_S = 2;
  /** The histograms show what changed over this much server time. */
  const HIST_WINDOW_S = 5;
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 10_000;
  /** A live connection with no snapshot for this long is shown as stalled. */
  const STALL_MS = 5_000;
  const MAX_CONSUMERS = 10;
  const MAX_ROOMS = 50;
  /** Snapshots held while paused (ten minutes at 4 a second); older ones are dropped. */
  const MAX_HELD = 2400;

  /** The phases of a turn, in the loop's order (bottom to top in the strip). */
  const PHASES = [
    { key: 'poll_wait_us', label: 'poll wait', cls: 'phase-poll' },
    { key: 'dispatch_us', label: 'dispatch', cls: 'phase-dispatch' },
    { key: 'timers_us', label: 'timers', cls: 'phase-timers' },
    { key: 'flush_us', label: 'flush', cls: 'phase-flush' },
  ];
  /** Connection phases in the order a connection goes through them; others follow. */
  const CONNECTION_PHASES = ['handshake', 'websocket', 'line', 'closing'];
  const LINK_LABELS = { up: 'up', connecting: 'connecting', down: 'down, retrying' };
  const CONNECTION_LABELS = {
    handshake: 'HTTP handshake',
    websocket: 'WebSocket',
    line: 'Line (TCP)',
    closing: 'Closing',
  };
  /** Labels of the known totals, in the order shown; unknown keys follow under their name. */
  const TOTAL_LABELS = {
    turns: 'Turns',
    events: 'Readiness events',
    accepted: 'Connections accepted',
    refused: 'Connections refused',
    messages_in: 'Messages in',
    messages_out: 'Messages out',
    bytes_in: 'Bytes in',
    bytes_out: 'Bytes out',
    broadcasts: 'Broadcasts',
    deliveries: 'Deliveries',
    writes: 'Writes',
    slow_closed: 'Slow consumers closed',
    dropped_messages: 'Messages dropped',
    rate_limited: 'Rate-limited clients',
  };
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // ---------------------------------------------------------------------------------
  // Elements

  const $ = (id) => document.getElementById(id);
  const ui = {
    board: $('board'),
    serverInfo: $('server-info'),
    pauseButton: $('pause-button'),
    status: $('status'),
    statusText: $('status-text'),
    statusLive: $('status-live'),
    retryButton: $('retry-button'),
    ratesNote: $('rates-note'),
    rateTurns: $('rate-turns'),
    meanEvents: $('mean-events'),
    meanEventsNote: $('mean-events-note'),
    meanFrames: $('mean-frames'),
    meanFramesNote: $('mean-frames-note'),
    rateMessagesIn: $('rate-messages-in'),
    rateMessagesOut: $('rate-messages-out'),
    rateDeliveries: $('rate-deliveries'),
    rateBytesIn: $('rate-bytes-in'),
    rateBytesOut: $('rate-bytes-out'),
    openConnections: $('open-connections'),
    queuedBytes: $('queued-bytes'),
    strip: $('strip'),
    stripNote: $('strip-note'),
    turnDetail: $('turn-detail'),
    turnTitle: $('turn-title'),
    turnWork: $('turn-work'),
    turnPhases: $('turn-phases'),
    histEvents: $('hist-events'),
    histEventsCaption: $('hist-events-caption'),
    histFrames: $('hist-frames'),
    histFramesCaption: $('hist-frames-caption'),
    phasesNote: $('phases-note'),
    phaseBar: $('phase-bar'),
    phases: $('phases'),
    consumersBody: $('consumers-body'),
    roomsNote: $('rooms-note'),
    rooms: $('rooms'),
    linksCard: $('links-card'),
    linksHeading: $('links-heading'),
    links: $('links'),
    workersCard: $('workers-card'),
    workers: $('workers'),
    totals: $('totals'),
  };

  // ---------------------------------------------------------------------------------
  // State

  const state = {
    /** The current socket, or null. */
    ws: null,
    /** 'connecting' | 'live' | 'stalled' | 'reconnecting' */
    conn: 'connecting',
    /** Failed attempts since the last snapshot, for the backoff. */
    attempt: 0,
    retryAt: 0,
    retryTimer: 0,
    /** When the last snapshot arrived (performance.now()). */
    lastSnapshotAt: 0,
    /** Snapshots received since the page loaded (shown as data-snapshots on <main>). */
    received: 0,
    /** The latest snapshot, normalised by `readSnapshot`; null before the first. */
    latest: null,
    /** Recent snapshots, oldest first, as { t, totals, histograms }: the rate and
     * histogram windows. `t` is the server's uptime in seconds. */
    history: [],
    /** The last MAX_TURNS turns, oldest first. */
    turns: [],
    /** The `seq` of the turn whose figures are shown; null follows the newest. */
    pinnedSeq: null,
    /** Whether the view is frozen: snapshots keep arriving and wait in `held`. */
    paused: false,
    held: [],
  };

  // ---------------------------------------------------------------------------------
  // Formatting

  /** A finite number, or null: the server's JSON is checked, never trusted. */
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const obj = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});
  const str = (v) => (typeof v === 'string' ? v : v == null ? '' : String(v));

  const intFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const oneDecimal = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const twoDecimals = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  function fmtCount(n) {
    return n == null ? '—' : intFormat.format(n);
  }

  /** A rate or a mean: one decimal below 10, whole numbers below a million, then "M". */
  function fmtRate(n) {
    if (n == null) return '—';
    if (n < 10) return oneDecimal.format(n);
    if (n < 1e6) return intFormat.format(n);
    return `${twoDecimals.format(n / 1e6)} M`;
  }

  function fmtBytes(n) {
    if (n == null) return '—';
    if (n < 1024) return `${intFormat.format(n)} B`;
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i += 1;
    }
    return `${v < 10 ? twoDecimals.format(v) : v < 100 ? oneDecimal.format(v) : intFormat.format(v)} ${units[i]}`;
  }

  /** A duration given in microseconds. */
  function fmtMicros(us) {
    if (us == null) return '—';
    if (us === 0) return '0 µs';
    if (us < 1000) return `${us < 10 ? oneDecimal.format(us) : intFormat.format(us)} µs`;
    if (us < 1e6) return `${us < 10_000 ? twoDecimals.format(us / 1000) : oneDecimal.format(us / 1000)} ms`;
    return `${twoDecimals.format(us / 1e6)} s`;
  }

  function fmtUptime(seconds) {
    if (seconds == null) return '';
    const s = Math.floor(seconds);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  /** A histogram bound, short enough to sit under a bar: 512, 1k (= 1024), 2k. */
  function fmtBound(b) {
    return b >= 1024 && b % 1024 === 0 ? `${b / 1024}k` : String(b);
  }

  /** Sets an element's text, and its machine-readable value for scripts and tests, only
   * when they change (so that a screen reader or a text selection is not disturbed). */
  function setValue(el, text, value) {
    if (el.textContent !== text) el.textContent = text;
    const v = value == null ? '' : String(value);
    if (el.dataset.value !== v) el.dataset.value = v;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  // ---------------------------------------------------------------------------------
  // The connection

  /** ws(s)://<this host>/inspect/ws, with the page's `?token=` passed on: browsers cannot
   * set an Authorization header on a WebSocket, so the admin port takes the token from
   * the query instead. */
  function socketUrl() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const token = new URLSearchParams(location.search).get('token');
    const query = token == null ? '' : `?token=${encodeURIComponent(token)}`;
    return `${scheme}//${location.host}/inspect/ws${query}`;
  }

  function connect() {
    clearTimeout(state.retryTimer);
    if (state.ws) return;
    setConn('connecting');
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    ws.addEventListener('message', (e) => {
      if (state.ws !== ws || typeof e.data !== 'string') return;
      let message;
      try {
        message = JSON.parse(e.data);
      } catch {
        return;
      }
      if (!message || message.type !== 'snapshot') return;
      try {
        onSnapshot(message);
      } catch (err) {
        // An error, not a warning: the browser tests fail on it, as they should.
        console.error('loopchat inspector: could not show a snapshot', err);
      }
    });
    // An error is always followed by a close, which is where the reconnect starts.
    ws.addEventListener('close', () => {
      if (state.ws !== ws) return;
      state.ws = null;
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    clearTimeout(state.retryTimer);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** state.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5)); // ±25 % jitter
    state.attempt += 1;
    state.retryAt = Date.now() + delay;
    state.retryTimer = setTimeout(connect, delay);
    setConn('reconnecting');
  }

  function reconnectNow() {
    if (state.ws) return;
    state.attempt = 0;
    connect();
  }

  function setConn(conn) {
    const changed = state.conn !== conn;
    state.conn = conn;
    renderStatus();
    if (changed) {
      ui.statusLive.textContent = {
        connecting: 'Connecting to the server.',
        live: 'Live.',
        stalled: 'No updates from the server.',
        reconnecting: 'Connection lost; reconnecting.',
      }[conn];
    }
  }

  function renderStatus() {
    let text;
    switch (state.conn) {
      case 'live': text = 'Live'; break;
      case 'stalled': {
        const s = Math.round((performance.now() - state.lastSnapshotAt) / 1000);
        text = `No update for ${s} s`;
        break;
      }
      case 'reconnecting': {
        const s = Math.max(1, Math.ceil((state.retryAt - Date.now()) / 1000));
        text = `Reconnecting in ${s} s`;
        break;
      }
      default: text = state.ws && state.ws.readyState === WebSocket.OPEN ? 'Waiting for data…' : 'Connecting…';
    }
    ui.status.dataset.state = state.conn;
    if (ui.statusText.textContent !== text) ui.statusText.textContent = text;
    ui.retryButton.hidden = state.conn !== 'reconnecting';
  }

  // The countdown while reconnecting, and noticing a server that stopped sending.
  setInterval(() => {
    if ((state.conn === 'live' || state.conn === 'stalled') &&
        performance.now() - state.lastSnapshotAt > STALL_MS) {
      setConn('stalled');
    } else if (state.conn === 'reconnecting' || state.conn === 'connecting') {
      renderStatus();
    }
  }, 250);

  ui.retryButton.addEventListener('click', reconnectNow);

  // ---------------------------------------------------------------------------------
  // Snapshots

  /** The snapshot with every part the page uses checked and defaulted: a missing or
   * malformed part shows as "—" or as empty, never as an error. */
  function readSnapshot(raw) {
    const server = obj(raw.server);
    const totals = {};
    for (const [k, v] of Object.entries(obj(raw.totals))) {
      if (num(v) != null) totals[k] = v;
    }
    const connections = obj(raw.connections);
    const byPhase = {};
    for (const [k, v] of Object.entries(obj(connections.by_phase))) {
      if (num(v) != null) byPhase[k] = v;
    }
    const histograms = {};
    for (const [k, h] of Object.entries(obj(raw.histograms))) {
      const bounds = Array.isArray(h?.bounds) ? h.bounds.map(num) : [];
      const counts = Array.isArray(h?.counts) ? h.counts.map((c) => num(c) ?? 0) : [];
      // One count per bound and one more for everything above the last bound.
      if (bounds.length && !bounds.includes(null) && counts.length === bounds.length + 1) {
        histograms[k] = { bounds, counts, sum: num(h.sum), count: num(h.count) };
      }
    }
    const turns = (Array.isArray(raw.recent_turns) ? raw.recent_turns : [])
      .filter((t) => t && typeof t === 'object' && num(t.seq) != null);
    const consumers = (Array.isArray(raw.slowest_consumers) ? raw.slowest_consumers : [])
      .filter((c) => c && typeof c === 'object');
    const rooms = Array.isArray(raw.rooms)
      ? raw.rooms.filter((r) => r && typeof r === 'object' && typeof r.name === 'string')
      : null;
    const links = (Array.isArray(raw.links) ? raw.links : [])
      .filter((l) => l && typeof l === 'object' && typeof l.name === 'string');
    const workers = (Array.isArray(raw.workers) ? raw.workers : [])
      .filter((w) => w && typeof w === 'object' && num(w.worker) != null);
    return {
      version: str(server.version),
      mode: str(server.mode),
      pid: num(server.pid),
      uptime: num(server.uptime_seconds),
      totals,
      open: num(connections.open),
      byPhase,
      queued: num(raw.queued_outbound_bytes),
      histograms,
      turns,
      consumers,
      rooms,
      links,
      workers,
    };
  }

  function onSnapshot(raw) {
    state.lastSnapshotAt = performance.now();
    state.attempt = 0;
    if (state.conn !== 'live') setConn('live');
    // While paused, nothing the view shows may move (a pinned turn must stay put), so the
    // snapshots wait, and are all taken in on resume: no turn and no rate is lost.
    if (state.paused) {
      state.held.push(raw);
      if (state.held.length > MAX_HELD) state.held.shift();
      return;
    }
    take(raw);
    render();
  }

  /** Adds one snapshot to the page's state. */
  function take(raw) {
    const snap = readSnapshot(raw);
    const prev = state.latest;
    state.received += 1;

    // Rates need the server's clock; without an uptime, the page's clock will do.
    const t = snap.uptime ?? performance.now() / 1000;
    // A server that restarted (after a reconnect) starts its counters and turns again.
    if (prev && ((snap.uptime != null && prev.uptime != null && snap.uptime < prev.uptime) ||
                 (snap.totals.turns ?? 0) < (prev.totals.turns ?? 0))) {
      state.history = [];
      state.turns = [];
      state.pinnedSeq = null;
    }
    state.latest = snap;

    state.history.push({ t, totals: snap.totals, histograms: snap.histograms });
    // Keep one snapshot older than the longest window, so the window is always full.
    while (state.history.length > 2 && state.history[1].t <= t - HIST_WINDOW_S) state.history.shift();

    // A snapshot holds the turns since the previous one; a turn seen before is skipped
    // (a reconnect may repeat some).
    const lastSeq = state.turns.length ? state.turns[state.turns.length - 1].seq : -Infinity;
    for (const turn of snap.turns) {
      if (turn.seq > lastSeq) state.turns.push(turn);
    }
    if (state.turns.length > MAX_TURNS) state.turns.splice(0, state.turns.length - MAX_TURNS);
    if (state.pinnedSeq != null && !state.turns.some((x) => x.seq === state.pinnedSeq)) {
      state.pinnedSeq = null; // it scrolled out of the strip
    }
  }

  /** The oldest kept snapshot at least `seconds` older than the newest, or the oldest. */
  function windowStart(seconds) {
    const h = state.history;
    const newest = h[h.length - 1];
    for (let i = h.length - 1; i >= 0; i--) {
      if (h[i].t <= newest.t - seconds) return h[i];
    }
    return h[0];
  }

  /** Per second over the rate window, or null before there are two snapshots. */
  function rate(key) {
    const h = state.history;
    if (h.length < 2) return null;
    const newest = h[h.length - 1];
    const oldest = windowStart(RATE_WINDOW_S);
    const a = num(oldest.totals[key]);
    const b = num(newest.totals[key]);
    const dt = newest.t - oldest.t;
    if (a == null || b == null || !(dt > 0)) return null;
    return Math.max(0, (b - a) / dt);
  }

  // ---------------------------------------------------------------------------------
  // Drawing

  function render() {
    const snap = state.latest;
    if (!snap) return;
    renderServer(snap);
    renderRates(snap);
    renderStrip();
    renderDetail();
    renderHistogram(ui.histEvents, ui.histEventsCaption, 'events_per_wakeup',
      { one: 'wake-up', many: 'wake-ups', unit: 'events' });
    renderHistogram(ui.histFrames, ui.histFramesCaption, 'frames_per_write',
      { one: 'write', many: 'writes', unit: 'frames' });
    renderPhases(snap);
    renderConsumers(snap);
    renderRooms(snap);
    renderLinks(snap);
    renderWorkers(snap);
    renderTotals(snap);
    // What has been drawn: tests compare it with the snapshots they saw go by.
    ui.board.dataset.snapshots = String(state.received);
  }

  function renderServer(snap) {
    const parts = [];
    if (snap.version) parts.push(`loopchat ${snap.version}`);
    if (snap.mode) parts.push(`${snap.mode} mode`);
    if (snap.pid != null) parts.push(`pid ${snap.pid}`);
    if (snap.uptime != null) parts.push(`up ${fmtUptime(snap.uptime)}`);
    const text = parts.join(' · ');
    if (ui.serverInfo.textContent !== text) ui.serverInfo.textContent = text;
  }

  function renderRates(snap) {
    const turnsRate = rate('turns');
    setValue(ui.rateTurns, fmtRate(turnsRate), turnsRate);
    const mIn = rate('messages_in');
    setValue(ui.rateMessagesIn, fmtRate(mIn), mIn);
    const mOut = rate('messages_out');
    setValue(ui.rateMessagesOut, fmtRate(mOut), mOut);
    const deliveries = rate('deliveries');
    setValue(ui.rateDeliveries, fmtRate(deliveries), deliveries);
    const bIn = rate('bytes_in');
    setValue(ui.rateBytesIn, bIn == null ? '—' : `${fmtBytes(bIn)}/s`, bIn);
    const bOut = rate('bytes_out');
    setValue(ui.rateBytesOut, bOut == null ? '—' : `${fmtBytes(bOut)}/s`, bOut);
    setValue(ui.openConnections, fmtCount(snap.open), snap.open);
    setValue(ui.queuedBytes, fmtBytes(snap.queued), snap.queued);

    // The means of the turns in the strip: what the loop is doing now, not since start.
    const turns = state.turns;
    let events = 0;
    let writes = 0;
    let frames = 0;
    for (const t of turns) {
      events += num(t.events) ?? 0;
      writes += num(t.writes) ?? 0;
      frames += num(t.frames) ?? 0;
    }
    const meanEvents = turns.length ? events / turns.length : null;
    setValue(ui.meanEvents, fmtRate(meanEvents), meanEvents);
    const noteEvents = turns.length ? `mean of ${turns.length} turns` : 'no turns yet';
    if (ui.meanEventsNote.textContent !== noteEvents) ui.meanEventsNote.textContent = noteEvents;
    const meanFrames = writes ? frames / writes : null;
    setValue(ui.meanFrames, fmtRate(meanFrames), meanFrames);
    const noteFrames = writes ? `over ${fmtCount(writes)} writes` : 'no writes lately';
    if (ui.meanFramesNote.textContent !== noteFrames) ui.meanFramesNote.textContent = noteFrames;
  }

  // The strip: an SVG whose user units are one per column across and one "step" (a
  // tenfold in time) upward, stretched to the box by preserveAspectRatio="none". Each
  // phase's band is log10(1 + µs) steps tall on its own, so bands stay comparable across
  // turns whatever the others did: a 2 s poll wait is 6.3 steps, a 12 µs dispatch 1.1.
  const strip = {
    svg: document.createElementNS(SVG_NS, 'svg'),
    /** The least height in steps, so that a strip of quick turns does not zoom in on noise. */
    minSteps: 8,
  };
  strip.svg.setAttribute('class', 'strip-svg');
  strip.svg.setAttribute('preserveAspectRatio', 'none');
  strip.svg.setAttribute('aria-hidden', 'true');
  strip.svg.setAttribute('viewBox', `0 0 ${MAX_TURNS} ${strip.minSteps}`);
  ui.strip.append(strip.svg);

  const steps = (us) => Math.log10(1 + Math.max(0, num(us) ?? 0));

  function svgRect(cls, x, y, w, h) {
    const r = document.createElementNS(SVG_NS, 'rect');
    r.setAttribute('class', cls);
    r.setAttribute('x', String(x));
    r.setAttribute('y', String(y));
    r.setAttribute('width', String(w));
    r.setAttribute('height', String(h));
    return r;
  }

  function renderStrip() {
    const turns = state.turns;
    let top = strip.minSteps;
    for (const t of turns) {
      let h = 0;
      for (const p of PHASES) h += steps(t[p.key]);
      top = Math.max(top, h);
    }
    top = Math.ceil(top);
    strip.svg.setAttribute('viewBox', `0 0 ${MAX_TURNS} ${top}`);

    const columns = [];
    const first = MAX_TURNS - turns.length; // newest on the right edge
    const shown = shownTurn();
    if (shown) {
      const x = first + turns.indexOf(shown);
      columns.push(svgRect('selected', x - 0.1, 0, 1, top));
    }
    turns.forEach((t, i) => {
      const g = document.createElementNS(SVG_NS, 'g');
      g.setAttribute('class', 'turn');
      g.dataset.seq = String(t.seq);
      let y = top;
      for (const p of PHASES) {
        const h = steps(t[p.key]);
        if (h <= 0) continue;
        y -= h;
        g.append(svgRect(p.cls, first + i, y, 0.8, h));
      }
      columns.push(g);
    });
    strip.svg.replaceChildren(...columns);
    const note = turns.length
      ? `The last ${turns.length} turns of the loop, newest on the right.`
      : 'No turns yet: an idle loop sleeps in poll until something happens.';
    if (ui.stripNote.textContent !== note) ui.stripNote.textContent = note;
  }

  /** The turn whose figures are shown: the pinned one, else the newest. */
  function shownTurn() {
    const turns = state.turns;
    if (state.pinnedSeq != null) {
      const t = turns.find((x) => x.seq === state.pinnedSeq);
      if (t) return t;
    }
    return turns[turns.length - 1] ?? null;
  }

  function renderDetail() {
    const t = shownTurn();
    ui.turnDetail.dataset.seq = t ? String(t.seq) : '';
    if (!t) {
      ui.turnTitle.textContent = 'No turn yet.';
      ui.turnWork.textContent = '';
      ui.turnPhases.replaceChildren();
      return;
    }
    const total = PHASES.reduce((s, p) => s + (num(t[p.key]) ?? 0), 0);
    const which = state.pinnedSeq == null ? 'newest turn' : 'turn';
    ui.turnTitle.textContent = `Turn ${fmtCount(t.seq)} (${which}): ${fmtMicros(total)} in all`;
    const n = (key, one, many) => {
      const v = num(t[key]);
      return v == null ? null : `${fmtCount(v)} ${v === 1 ? one : many}`;
    };
    const work = [
      n('events', 'event', 'events'),
      n('accepts', 'accept', 'accepts'),
      n('reads', 'read', 'reads'),
      num(t.bytes_in) == null ? null : `${fmtBytes(t.bytes_in)} in`,
      n('messages_in', 'message in', 'messages in'),
      n('broadcasts', 'broadcast', 'broadcasts'),
      n('writes', 'write', 'writes'),
      n('frames', 'frame', 'frames'),
      num(t.bytes_out) == null ? null : `${fmtBytes(t.bytes_out)} out`,
    ].filter(Boolean);
    ui.turnWork.textContent = work.join(' · ');
    ui.turnPhases.replaceChildren(...PHASES.map((p) => {
      const li = el('li');
      li.append(el('span', `swatch ${p.cls}`), `${p.label} ${fmtMicros(num(t[p.key]))}`);
      li.firstChild.setAttribute('aria-hidden', 'true');
      return li;
    }));
  }

  // Hover (mouse), tap (touch) and the arrow keys pick a turn; its seq is pinned, so it
  // stays under the reader's eyes while the strip moves left under it.
  function turnAt(clientX) {
    const box = ui.strip.getBoundingClientRect();
    if (!box.width) return null;
    const column = Math.floor(((clientX - box.left) / box.width) * MAX_TURNS);
    return state.turns[column - (MAX_TURNS - state.turns.length)] ?? null;
  }

  function pin(turn) {
    const seq = turn ? turn.seq : null;
    if (state.pinnedSeq === seq) return;
    state.pinnedSeq = seq;
    renderStrip();
    renderDetail();
  }

  ui.strip.addEventListener('pointermove', (e) => {
    if (e.pointerType === 'mouse') pin(turnAt(e.clientX));
  });
  ui.strip.addEventListener('pointerdown', (e) => pin(turnAt(e.clientX)));
  ui.strip.addEventListener('pointerleave', (e) => {
    if (e.pointerType === 'mouse' && document.activeElement !== ui.strip) pin(null);
  });
  ui.strip.addEventListener('focus', () => {
    // Announce the figures while the strip has focus, and hold still so that they can be
    // read: the newest turn at the moment of focus is pinned.
    ui.turnDetail.setAttribute('aria-live', 'polite');
    if (state.pinnedSeq == null) pin(shownTurn());
  });
  ui.strip.addEventListener('blur', () => {
    ui.turnDetail.setAttribute('aria-live', 'off');
    pin(null);
  });
  ui.strip.addEventListener('keydown', (e) => {
    const turns = state.turns;
    if (!turns.length) return;
    const current = shownTurn();
    let i = turns.indexOf(current);
    switch (e.key) {
      case 'ArrowLeft': i = Math.max(0, i - 1); break;
      case 'ArrowRight': i = Math.min(turns.length - 1, i + 1); break;
      case 'Home': i = 0; break;
      case 'End': i = turns.length - 1; break;
      default: return;
    }
    e.preventDefault();
    pin(turns[i]);
  });

  /** The histogram's counts over the last HIST_WINDOW_S seconds (the difference of two
   * snapshots), or since start when there is no such window or nothing happened in it. */
  function histogramCounts(name) {
    const h = state.latest.histograms[name];
    if (!h) return null;
    if (state.history.length >= 2) {
      const old = windowStart(HIST_WINDOW_S).histograms[name];
      if (old && old.counts.length === h.counts.length &&
          old.bounds.every((b, i) => b === h.bounds[i])) {
        const counts = h.counts.map((c, i) => Math.max(0, c - old.counts[i]));
        const count = counts.reduce((a, b) => a + b, 0);
        const sum = h.sum != null && old.sum != null ? h.sum - old.sum : null;
        if (count > 0) return { bounds: h.bounds, counts, count, sum, recent: true };
      }
    }
    const count = h.count ?? h.counts.reduce((a, b) => a + b, 0);
    return { bounds: h.bounds, counts: h.counts, count, sum: h.sum, recent: false };
  }

  function renderHistogram(list, caption, name, words) {
    const h = histogramCounts(name);
    if (!h) {
      list.replaceChildren();
      caption.textContent = 'Not reported by this server.';
      return;
    }
    const n = h.counts.length;
    // The bars are made once and then updated, so that their tooltips survive updates.
    if (list.children.length !== n) {
      list.replaceChildren(...h.counts.map(() => {
        const li = el('li', 'bar');
        li.append(el('span', 'bar-track'), el('span', 'bar-label'), el('span', 'visually-hidden'));
        li.firstChild.append(el('span', 'bar-fill'));
        li.firstChild.setAttribute('aria-hidden', 'true');
        li.children[1].setAttribute('aria-hidden', 'true');
        return li;
      }));
    }
    const max = Math.max(1, ...h.counts);
    h.counts.forEach((c, i) => {
      const li = list.children[i];
      const [track, label, spoken] = li.children;
      const lo = i === 0 ? null : h.bounds[i - 1];
      const hi = i < h.bounds.length ? h.bounds[i] : null;
      // Bucket i holds values above the previous bound, up to and including its own.
      const range = hi == null ? `more than ${lo}`
        : lo == null ? `${hi} or fewer`
        : hi - lo === 1 ? String(hi)
        : `${lo + 1} to ${hi}`;
      const share = h.count ? Math.round((100 * c) / h.count) : 0;
      const text = `${range} ${words.unit}: ${fmtCount(c)} ${c === 1 ? words.one : words.many} (${share} %)`;
      const short = hi == null ? `>${fmtBound(lo)}` : fmtBound(hi);
      if (label.textContent !== short) label.textContent = short;
      if (spoken.textContent !== text) spoken.textContent = text;
      if (li.title !== text) li.title = text;
      track.firstChild.style.height = `${(100 * c) / max}%`;
      li.classList.toggle('empty', c === 0);
    });
    const mean = h.sum != null && h.count ? h.sum / h.count : null;
    const when = h.recent ? `last ${HIST_WINDOW_S} s` : 'since start';
    caption.textContent = `${when}: ${fmtCount(h.count)} ${h.count === 1 ? words.one : words.many}` +
      (mean == null ? '' : `, ${fmtRate(mean)} ${words.unit} per ${words.one} on average`);
  }

  function renderPhases(snap) {
    const keys = [
      ...CONNECTION_PHASES.filter((k) => k in snap.byPhase),
      ...Object.keys(snap.byPhase).filter((k) => !CONNECTION_PHASES.includes(k)).sort(),
    ];
    const total = keys.reduce((s, k) => s + snap.byPhase[k], 0);
    const bar = [];
    const items = [];
    for (const k of keys) {
      const v = snap.byPhase[k];
      const cls = CONNECTION_PHASES.includes(k) ? `conn-${k}` : 'conn-other';
      if (v > 0) {
        const seg = el('span', `segment ${cls}`);
        seg.style.flexGrow = String(v);
        bar.push(seg);
      }
      const li = el('li');
      li.dataset.phase = k;
      li.append(el('span', `swatch ${cls}`), el('span', 'phase-name', CONNECTION_LABELS[k] ?? k));
      li.firstChild.setAttribute('aria-hidden', 'true');
      const value = el('span', 'phase-count', fmtCount(v));
      value.dataset.value = String(v);
      li.append(value);
      items.push(li);
    }
    ui.phaseBar.replaceChildren(...bar);
    ui.phases.replaceChildren(...items);
    const open = snap.open ?? total;
    const note = `${fmtCount(open)} open ${open === 1 ? 'connection' : 'connections'}` +
      (snap.open != null && snap.open !== total ? ` (${fmtCount(total)} by phase)` : '');
    if (ui.phasesNote.textContent !== note) ui.phasesNote.textContent = note;
  }

  function renderConsumers(snap) {
    const rows = snap.consumers
      .slice()
      .sort((a, b) => (num(b.queued_bytes) ?? 0) - (num(a.queued_bytes) ?? 0))
      .slice(0, MAX_CONSUMERS);
    if (!rows.length) {
      const tr = el('tr', 'empty-row');
      const td = el('td', null, 'Nothing queued: every connection keeps up.');
      td.colSpan = 3;
      tr.append(td);
      ui.consumersBody.replaceChildren(tr);
      return;
    }
    const max = Math.max(1, ...rows.map((r) => num(r.queued_bytes) ?? 0));
    ui.consumersBody.replaceChildren(...rows.map((r) => {
      const tr = el('tr');
      const queued = num(r.queued_bytes);
      tr.dataset.id = str(r.id);
      tr.append(el('td', 'mono', num(r.id) == null ? str(r.id) : `#${r.id}`));
      tr.append(el('td', 'mono peer', str(r.peer)));
      const td = el('td', 'num');
      const meter = el('span', 'meter');
      meter.setAttribute('aria-hidden', 'true');
      const fill = el('span', 'meter-fill');
      fill.style.width = `${(100 * (queued ?? 0)) / max}%`;
      meter.append(fill);
      td.append(el('span', 'meter-value', fmtBytes(queued)), meter);
      tr.append(td);
      return tr;
    }));
  }

  function renderRooms(snap) {
    if (!snap.rooms) {
      ui.roomsNote.textContent = snap.mode && snap.mode !== 'chat'
        ? `The ${snap.mode} mode has no rooms.`
        : 'This server reports no rooms.';
      ui.rooms.replaceChildren();
      return;
    }
    const rooms = snap.rooms
      .slice()
      .sort((a, b) => (num(b.members) ?? 0) - (num(a.members) ?? 0) || a.name.localeCompare(b.name));
    const people = rooms.reduce((s, r) => s + (num(r.members) ?? 0), 0);
    ui.roomsNote.textContent = rooms.length
      ? `${fmtCount(rooms.length)} ${rooms.length === 1 ? 'room' : 'rooms'}, ${fmtCount(people)} memberships` +
        (rooms.length > MAX_ROOMS ? ` (the ${MAX_ROOMS} largest shown)` : '')
      : 'No rooms yet.';
    const max = Math.max(1, ...rooms.map((r) => num(r.members) ?? 0));
    ui.rooms.replaceChildren(...rooms.slice(0, MAX_ROOMS).map((r) => {
      const members = num(r.members);
      const text = members == null ? '—' : `${fmtCount(members)} ${members === 1 ? 'member' : 'members'}`;
      const li = meterItem(`#${r.name}`, text, members, max);
      li.dataset.room = r.name;
      return li;
    }));
  }

  /** A list item of the rooms' and the workers' cards: a name, a figure in words, and a
   * bar for `value` out of `max`. */
  function meterItem(name, text, value, max) {
    const li = el('li');
    li.append(el('span', 'room-name', name));
    const count = el('span', 'room-members', text);
    count.dataset.value = value == null ? '' : String(value);
    const meter = el('span', 'meter');
    meter.setAttribute('aria-hidden', 'true');
    const fill = el('span', 'meter-fill');
    fill.style.width = `${(100 * (value ?? 0)) / max}%`;
    meter.append(fill);
    li.append(count, meter);
    return li;
  }

  /** The application's links (the chat's to Redis): a card only when there are some. */
  function renderLinks(snap) {
    ui.linksCard.hidden = snap.links.length === 0;
    if (!snap.links.length) {
      ui.links.replaceChildren();
      return;
    }
    const heading = snap.links.every((l) => l.name === 'redis') ? 'Redis' : 'Links';
    if (ui.linksHeading.textContent !== heading) ui.linksHeading.textContent = heading;
    const plural = (n, one, many) => `${fmtCount(n)} ${n === 1 ? one : many}`;
    ui.links.replaceChildren(...snap.links.map((l) => {
      const li = el('li');
      const linkState = str(l.state);
      li.dataset.link = l.name;
      li.dataset.state = linkState;
      li.append(el('span', 'remote-name', l.name));
      const badge = el('span', 'remote-state', LINK_LABELS[linkState] ?? linkState);
      badge.dataset.state = linkState;
      li.append(badge);
      li.append(el('span', 'remote-peer mono', str(l.peer)));
      const figures = [];
      if (num(l.nodes) != null) figures.push(plural(l.nodes, 'server', 'servers'));
      if (num(l.pending_replies) != null) figures.push(`${fmtCount(l.pending_replies)} awaiting a reply`);
      if (num(l.reconnects) != null) figures.push(plural(l.reconnects, 'reconnect', 'reconnects'));
      if (num(l.lost) != null) figures.push(`lost ${plural(l.lost, 'time', 'times')}`);
      li.append(el('span', 'remote-figures', figures.join(' · ')));
      return li;
    }));
  }

  /** Each worker's connections and deliveries: a card only with several workers. */
  function renderWorkers(snap) {
    ui.workersCard.hidden = snap.workers.length === 0;
    const max = Math.max(1, ...snap.workers.map((w) => num(w.connections) ?? 0));
    ui.workers.replaceChildren(...snap.workers.map((w) => {
      const connections = num(w.connections);
      const deliveries = num(w.totals?.deliveries);
      const text = connections == null ? '—'
        : `${fmtCount(connections)} ${connections === 1 ? 'client' : 'clients'}` +
          (deliveries == null ? '' : ` · ${fmtCount(deliveries)} deliveries`);
      const li = meterItem(`worker ${w.worker}`, text, connections, max);
      li.dataset.worker = String(w.worker);
      return li;
    }));
  }

  function renderTotals(snap) {
    const keys = [
      ...Object.keys(TOTAL_LABELS).filter((k) => k in snap.totals),
      ...Object.keys(snap.totals).filter((k) => !(k in TOTAL_LABELS)).sort(),
    ];
    // Kept in place and updated: the counters tick several times a second.
    const existing = new Map(Array.from(ui.totals.children, (div) => [div.dataset.total, div]));
    const divs = keys.map((k) => {
      let div = existing.get(k);
      if (!div) {
        div = el('div', 'total');
        div.dataset.total = k;
        div.append(el('dt', null, TOTAL_LABELS[k] ?? k.replace(/_/g, ' ')), el('dd'));
      }
      const v = snap.totals[k];
      setValue(div.lastChild, k.startsWith('bytes_') ? fmtBytes(v) : fmtCount(v), v);
      return div;
    });
    const same = divs.length === ui.totals.children.length && divs.every((d, i) => ui.totals.children[i] === d);
    if (!same) ui.totals.replaceChildren(...divs);
  }

  // ---------------------------------------------------------------------------------
  // Pause

  ui.pauseButton.addEventListener('click', () => {
    state.paused = !state.paused;
    ui.pauseButton.setAttribute('aria-pressed', String(state.paused));
    ui.pauseButton.textContent = state.paused ? 'Resume' : 'Pause';
    document.body.classList.toggle('paused', state.paused);
    if (!state.paused) {
      const held = state.held;
      state.held = [];
      for (const raw of held) take(raw);
      render();
    }
  });

  connect();
})();
