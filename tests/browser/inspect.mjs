// A real browser against loopchat's admin port: Debian's Chromium, driven by
// playwright-core, opens the live inspector (/inspect) on a desktop and on a phone and
// checks what it shows against the snapshots the page was sent: it goes live, turns per
// second becomes a number, the strip of recent turns fills and ends with the newest
// turn, the totals, the connections by phase, the links (the Redis card, shown only
// when the server has links) and the workers (a card only with several) follow the
// snapshots, the histograms
// have their bars, a turn's figures show on hover and with the arrow keys (paused), the
// phone layout does not scroll sideways, the page reconnects after its socket is cut,
// and nothing is ever built as HTML. Against the real server:
//
//   node tests/browser/inspect.mjs http://127.0.0.1:ADMIN_PORT/inspect OUTPUT_DIR [--expect-rooms lobby,design] [--expect-links redis] [--expect-workers N]
//
// (a base URL `http://HOST:PORT` means its /inspect; a `?token=...` on the page URL is
// passed on, and checked to reach the WebSocket's URL). The rooms to expect may also be
// given as INSPECT_EXPECT_ROOMS=lobby. While developing the page, against the stand-in
// server:
//
//   node tests/browser/fake_admin.mjs --token s3cret &   # prints its URL
//   node tests/browser/inspect.mjs 'http://127.0.0.1:PORT/inspect?token=s3cret' /tmp/inspect --expect-rooms lobby
//
// Prints one line per check and exits 0 when all pass; on any failure prints
// `FAIL <check>: <why>` and exits 1 (2 for bad usage). Saves inspect.png (desktop, the
// whole page) and inspect-phone.png (390 px wide, dark) to OUTPUT_DIR. Whatever happens,
// it finishes within OVERALL_TIMEOUT_MS, closes the browser and removes its temporary
// profile. Install with `npm ci --prefix tests/browser` and `apt-get install -y chromium`.

import { join } from 'node:path';
import { state, ok, check, launchChromium, parseArgs, runMain, sleep, watchErrors, STEP_TIMEOUT_MS } from './launch.mjs';
import { until } from './page.mjs';

const OVERALL_TIMEOUT_MS = 180_000;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const MAX_TURNS = 120; // the strip's columns (inspect.js)

// `--expect-rooms a,b` is ours; the rest is launch.mjs's `URL OUTPUT_DIR`.
let expectRooms = process.env.INSPECT_EXPECT_ROOMS ?? '';
{
  const i = process.argv.indexOf('--expect-rooms');
  if (i >= 0) {
    if (!process.argv[i + 1]) {
      console.error('usage: --expect-rooms NAME[,NAME...]');
      process.exit(2);
    }
    expectRooms = process.argv[i + 1];
    process.argv.splice(i, 2);
  }
}
expectRooms = expectRooms.split(',').map((r) => r.trim().replace(/^#/, '')).filter(Boolean);
// `--expect-links redis`: links the server keeps (the chat's to Redis), to be shown up.
let expectLinks = '';
{
  const i = process.argv.indexOf('--expect-links');
  if (i >= 0) {
    if (!process.argv[i + 1]) {
      console.error('usage: --expect-links NAME[,NAME...]');
      process.exit(2);
    }
    expectLinks = process.argv[i + 1];
    process.argv.splice(i, 2);
  }
}
expectLinks = expectLinks.split(',').map((l) => l.trim()).filter(Boolean);
// `--expect-workers N`: a server with N workers, each shown on the workers card.
let expectWorkers = 0;
{
  const i = process.argv.indexOf('--expect-workers');
  if (i >= 0) {
    expectWorkers = Number(process.argv[i + 1]);
    if (!Number.isInteger(expectWorkers) || expectWorkers < 1) {
      console.error('usage: --expect-workers N');
      process.exit(2);
    }
    process.argv.splice(i, 2);
  }
}
const { base, outDir } = parseArgs('tests/browser/inspect.mjs');
const pageUrl = new URL(base);
if (pageUrl.pathname === '/') pageUrl.pathname = '/inspect';
const token = pageUrl.searchParams.get('token');
const wsUrl = `ws://${pageUrl.host}/inspect/ws${token == null ? '' : `?token=${encodeURIComponent(token)}`}`;
const desktopShot = join(outDir, 'inspect.png');
const phoneShot = join(outDir, 'inspect-phone.png');

const pageErrors = [];
const dialogs = [];

// ------------------------------------------------------------------------ helpers

/** Opens the page in a new context; every snapshot its WebSockets receive is kept in
 * `snapshots`, in order. With `route`, the page's socket goes through Playwright (so that
 * the test can cut it); otherwise it is the browser's own, under the page's CSP. */
async function openInspector(browser, label, contextOptions, { route = false } = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  watchErrors(page, pageErrors, label);
  page.on('dialog', (d) => {
    dialogs.push(`${label}: ${d.type()} ${JSON.stringify(d.message())}`);
    d.dismiss().catch(() => {});
  });
  const seen = { snapshots: [], urls: [], routes: [] };
  const keep = (payload) => {
    if (typeof payload !== 'string') return;
    try {
      const message = JSON.parse(payload);
      if (message?.type === 'snapshot') seen.snapshots.push(message);
    } catch {
      // not JSON: the page ignores it too
    }
  };
  if (route) {
    await page.routeWebSocket(/\/inspect\/ws(\?|$)/, (ws) => {
      seen.urls.push(ws.url());
      const server = ws.connectToServer();
      seen.routes.push({ page: ws, server });
      // Forwarded by hand, to see each message on its way.
      server.onMessage((m) => {
        keep(m);
        ws.send(m);
      });
      ws.onMessage((m) => server.send(m));
    });
  } else {
    page.on('websocket', (ws) => {
      seen.urls.push(ws.url());
      ws.on('framereceived', ({ payload }) => keep(payload));
    });
  }
  const response = await page.goto(pageUrl.href);
  check(response && response.status() === 200, `GET ${pageUrl.href} answered ${response?.status()}`);
  const csp = response.headers()['content-security-policy'] ?? '';
  check(csp.includes("default-src 'self'"), `no Content-Security-Policy on the page (${JSON.stringify(csp)})`);
  return { context, page, seen };
}

/** What the page shows, read in one go (so it is all from one snapshot). */
function readView(page) {
  return page.evaluate(() => {
    const value = (e) => (e && e.dataset.value !== '' ? Number(e.dataset.value) : null);
    const phases = {};
    for (const li of document.querySelectorAll('#phases li')) {
      phases[li.dataset.phase] = value(li.querySelector('.phase-count'));
    }
    const totals = {};
    for (const div of document.querySelectorAll('#totals [data-total]')) {
      totals[div.dataset.total] = value(div.querySelector('dd'));
    }
    const rooms = {};
    for (const li of document.querySelectorAll('#rooms li')) {
      rooms[li.dataset.room] = value(li.querySelector('.room-members'));
    }
    const seqs = Array.from(document.querySelectorAll('#strip .turn'), (g) => Number(g.dataset.seq));
    const links = {};
    for (const li of document.querySelectorAll('#links li')) {
      links[li.dataset.link] = li.dataset.state;
    }
    return {
      snapshots: Number(document.querySelector('#board').dataset.snapshots),
      status: document.querySelector('#status').dataset.state,
      turnsRate: document.querySelector('#rate-turns').textContent,
      turnsRateValue: value(document.querySelector('#rate-turns')),
      open: value(document.querySelector('#open-connections')),
      phases,
      totals,
      rooms,
      links,
      linksHidden: document.querySelector('#links-card').hidden,
      workersHidden: document.querySelector('#workers-card').hidden,
      workers: Object.fromEntries(Array.from(document.querySelectorAll('#workers li'),
        (li) => [li.dataset.worker, value(li.querySelector('.room-members'))])),
      seqs,
      eventBars: document.querySelectorAll('#hist-events li.bar').length,
      frameBars: document.querySelectorAll('#hist-frames li.bar').length,
      detailSeq: document.querySelector('#turn-detail').dataset.seq,
      detail: document.querySelector('#turn-detail').textContent.replace(/\s+/g, ' ').trim(),
    };
  });
}

/** Waits until the test has seen the snapshot the view was drawn from, and returns it. */
async function snapshotOf(seen, view) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (seen.snapshots.length < view.snapshots) {
    check(Date.now() < deadline, `the page drew ${view.snapshots} snapshots, the test saw ${seen.snapshots.length}`);
    await sleep(20);
  }
  return seen.snapshots[view.snapshots - 1];
}

/** Checks that `view` shows `snap`'s totals, connections by phase and (expected) rooms,
 * and that its strip ends with the newest turn sent so far. */
function checkView(view, snap, seen, what) {
  for (const [key, v] of Object.entries(snap.totals)) {
    if (typeof v !== 'number') continue; // the page shows numbers only
    check(view.totals[key] === v, `${what}: total ${key} shows ${view.totals[key]}, the snapshot has ${v}`);
  }
  const phases = snap.connections?.by_phase ?? {};
  check(JSON.stringify(Object.keys(view.phases).sort()) === JSON.stringify(Object.keys(phases).sort()),
    `${what}: phases shown ${JSON.stringify(view.phases)}, sent ${JSON.stringify(phases)}`);
  for (const [phase, v] of Object.entries(phases)) {
    check(view.phases[phase] === v, `${what}: ${phase} shows ${view.phases[phase]} connections, the snapshot has ${v}`);
  }
  check(view.open === snap.connections.open, `${what}: ${view.open} open connections shown, ${snap.connections.open} sent`);
  const links = snap.links ?? [];
  check(view.linksHidden === (links.length === 0),
    `${what}: the links card is ${view.linksHidden ? 'hidden' : 'shown'} with ${links.length} links sent`);
  const sentLinks = Object.fromEntries(links.map((l) => [l.name, l.state]));
  check(JSON.stringify(view.links) === JSON.stringify(sentLinks),
    `${what}: links shown ${JSON.stringify(view.links)}, sent ${JSON.stringify(sentLinks)}`);
  const workers = snap.workers ?? [];
  check(view.workersHidden === (workers.length === 0),
    `${what}: the workers card is ${view.workersHidden ? 'hidden' : 'shown'} with ${workers.length} workers sent`);
  const sentWorkers = Object.fromEntries(workers.map((w) => [String(w.worker), w.connections]));
  check(JSON.stringify(view.workers) === JSON.stringify(sentWorkers),
    `${what}: workers shown ${JSON.stringify(view.workers)}, sent ${JSON.stringify(sentWorkers)}`);
  if (expectWorkers) {
    check(workers.length === expectWorkers, `${what}: ${workers.length} workers sent, ${expectWorkers} expected`);
  }
  for (const room of expectRooms) {
    const sent = (snap.rooms ?? []).find((r) => r.name === room);
    check(sent, `${what}: the snapshot has no room ${JSON.stringify(room)} (rooms: ${JSON.stringify(snap.rooms)})`);
    check(view.rooms[room] === sent.members, `${what}: #${room} shows ${view.rooms[room]} members, the snapshot has ${sent.members}`);
  }
  // As the page keeps them: in order, a turn already seen skipped, the last MAX_TURNS.
  const seqs = [];
  for (const s of seen.snapshots.slice(0, view.snapshots)) {
    for (const t of s.recent_turns ?? []) {
      if (!seqs.length || t.seq > seqs.at(-1)) seqs.push(t.seq);
    }
  }
  if (seqs.length) {
    const want = seqs.slice(-MAX_TURNS);
    check(JSON.stringify(view.seqs) === JSON.stringify(want),
      `${what}: the strip holds turns ${view.seqs.slice(0, 3)}…${view.seqs.slice(-3)} (${view.seqs.length}), ` +
      `not the last ${want.length} sent, ${want.slice(0, 3)}…${want.slice(-3)}`);
  }
}

/** Waits for the page to be live, with a number for turns per second and turns in the
 * strip. */
async function untilLive(page, label) {
  await until(page, `${label}: the status never became live`,
    () => document.querySelector('#status')?.dataset.state === 'live');
  await until(page, `${label}: turns per second never became a number`,
    () => /^\d[\d,.\s]*( M)?$/.test(document.querySelector('#rate-turns')?.textContent ?? '') &&
      Number.isFinite(Number(document.querySelector('#rate-turns').dataset.value)));
  await until(page, `${label}: the strip of recent turns stayed empty`,
    () => document.querySelectorAll('#strip .turn').length > 0);
}

// ------------------------------------------------------------------------ the run

async function main() {
  const browser = await launchChromium(outDir);

  state.step = 'the page builds no HTML from data and loads nothing from elsewhere';
  const files = {};
  for (const path of ['/inspect', '/inspect.js', '/inspect.css']) {
    const response = await fetch(new URL(path, pageUrl));
    check(response.status === 200, `GET ${path} answered ${response.status}`);
    files[path] = await response.text();
  }
  const forbidden = files['/inspect.js'].match(/\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval)\b/);
  check(!forbidden, `inspect.js uses ${forbidden?.[0]}`);
  const html = files['/inspect'];
  check(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(html), 'inspect.html has an inline script');
  check(!/<style|\sstyle=|\son[a-z]+=/i.test(html), 'inspect.html has an inline style or event handler');
  for (const [path, text] of Object.entries(files)) {
    const external = text.replaceAll('http://www.w3.org/2000/svg', '').match(/\b(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i);
    check(!external, `${path} refers to ${external?.[0]}`);
  }
  ok(`inspect.js (${files['/inspect.js'].length} bytes) uses no innerHTML, outerHTML, insertAdjacentHTML, document.write or eval; no inline script, style or handler; nothing from other hosts`);

  state.step = 'desktop: the page goes live';
  const desk = await openInspector(browser, 'desktop', { viewport: DESKTOP });
  await untilLive(desk.page, 'desktop');
  check(desk.seen.urls[0] === wsUrl, `the page's WebSocket went to ${desk.seen.urls[0]}, not ${wsUrl}`);
  const first = await readView(desk.page);
  ok(`desktop: live through ${desk.seen.urls[0]}; ${first.turnsRate} turns/s; ${first.seqs.length} turns in the strip`);

  state.step = 'desktop: the view follows the snapshots';
  const before = await readView(desk.page);
  checkView(before, await snapshotOf(desk.seen, before), desk.seen, `snapshot ${before.snapshots}`);
  await until(desk.page, 'the turn counter did not increase',
    (turns) => Number(document.querySelector('#totals [data-total="turns"] dd')?.dataset.value) > turns,
    before.totals.turns);
  const after = await readView(desk.page);
  const afterSnap = await snapshotOf(desk.seen, after);
  checkView(after, afterSnap, desk.seen, `snapshot ${after.snapshots}`);
  check(after.snapshots > before.snapshots, 'the turns grew without a new snapshot');
  check(after.turnsRateValue > 0, `turns per second reads ${after.turnsRate} while turns grow`);
  check(after.eventBars === afterSnap.histograms.events_per_wakeup.bounds.length + 1,
    `${after.eventBars} bars for events per wake-up`);
  check(after.frameBars === afterSnap.histograms.frames_per_write.bounds.length + 1,
    `${after.frameBars} bars for frames per write`);
  const phasesMoved = JSON.stringify(before.phases) !== JSON.stringify(after.phases) ? 'changed' : 'unchanged';
  ok(`snapshots ${before.snapshots} → ${after.snapshots}: turns ${before.totals.turns} → ${after.totals.turns}, ` +
    `connections by phase ${JSON.stringify(after.phases)} (${phasesMoved}), the strip ends at turn ${after.seqs.at(-1)}, ` +
    `${after.eventBars} + ${after.frameBars} histogram bars; all as sent`);

  if (expectRooms.length) {
    state.step = 'desktop: rooms';
    await until(desk.page, `the rooms ${expectRooms} are not all shown`,
      (names) => names.every((n) => Array.from(document.querySelectorAll('#rooms li')).some((li) => li.dataset.room === n)),
      expectRooms);
    const view = await readView(desk.page);
    checkView(view, await snapshotOf(desk.seen, view), desk.seen, `snapshot ${view.snapshots}`);
    ok(`rooms shown with their members as sent: ${expectRooms.map((r) => `#${r} ${view.rooms[r]}`).join(', ')}`);
  }

  if (expectLinks.length) {
    state.step = 'desktop: links';
    await until(desk.page, `the links ${expectLinks} are not all shown up`,
      (names) => names.every((n) => Array.from(document.querySelectorAll('#links li'))
        .some((li) => li.dataset.link === n && li.dataset.state === 'up')),
      expectLinks);
    const view = await readView(desk.page);
    checkView(view, await snapshotOf(desk.seen, view), desk.seen, `snapshot ${view.snapshots}`);
    const heading = await desk.page.locator('#links-heading').textContent();
    ok(`the ${JSON.stringify(heading)} card shows the links as sent: ${JSON.stringify(view.links)}`);
  }

  if (expectWorkers) {
    state.step = 'desktop: workers';
    await until(desk.page, `the ${expectWorkers} workers are not all shown`,
      (n) => document.querySelectorAll('#workers li').length === n, expectWorkers);
    const view = await readView(desk.page);
    checkView(view, await snapshotOf(desk.seen, view), desk.seen, `snapshot ${view.snapshots}`);
    ok(`the workers card shows each worker's clients as sent: ${JSON.stringify(view.workers)}`);
  }

  state.step = 'desktop: nothing from the server became an element';
  const asText = await desk.page.evaluate(() => ({
    images: document.querySelectorAll('img, iframe, object, embed').length,
    scripts: document.querySelectorAll('script').length,
    nested: Array.from(document.querySelectorAll('.room-name, .peer, .phase-name, .remote-name, .remote-peer, #server-info, #totals dt'))
      .filter((e) => e.childElementCount > 0).length,
    htmlish: Array.from(document.querySelectorAll('.room-name')).map((e) => e.textContent).filter((t) => t.includes('<')),
  }));
  check(asText.images === 0 && asText.scripts === 1, `the page holds ${asText.images} images/frames and ${asText.scripts} scripts`);
  check(asText.nested === 0, `${asText.nested} names from the server hold elements`);
  ok(`names from the server are text${asText.htmlish.length ? ` (shown as typed: ${JSON.stringify(asText.htmlish)})` : ''}; no image, frame or extra script`);

  state.step = 'desktop: pause, then a turn on hover and with the keys';
  await desk.page.locator('#pause-button').click();
  check((await desk.page.locator('#pause-button').getAttribute('aria-pressed')) === 'true', 'Pause is not pressed');
  const paused = await readView(desk.page);
  await sleep(1200);
  const stillPaused = await readView(desk.page);
  check(stillPaused.snapshots === paused.snapshots && JSON.stringify(stillPaused.seqs) === JSON.stringify(paused.seqs),
    `the paused view moved: snapshot ${paused.snapshots} → ${stillPaused.snapshots}`);
  check(stillPaused.status === 'live', `paused, the status is ${stillPaused.status}`);
  const box = await desk.page.locator('#strip').boundingBox();
  await desk.page.mouse.move(box.x + box.width - 2, box.y + box.height / 2);
  const hovered = await readView(desk.page);
  const newest = paused.seqs.at(-1);
  check(Number(hovered.detailSeq) === newest, `hovering the last column shows turn ${hovered.detailSeq}, not ${newest}`);
  const pausedSnap = await snapshotOf(desk.seen, paused);
  const sentTurn = desk.seen.snapshots.slice(0, paused.snapshots).flatMap((s) => s.recent_turns).find((t) => t.seq === newest);
  const eventsText = `${sentTurn.events} event${sentTurn.events === 1 ? '' : 's'}`;
  check(hovered.detail.includes(eventsText) && /poll wait .*dispatch .*timers .*flush/.test(hovered.detail),
    `turn ${newest}'s figures (${eventsText}) are not shown: ${JSON.stringify(hovered.detail)}`);
  await desk.page.locator('#strip').focus();
  await desk.page.keyboard.press('ArrowLeft');
  const left = await readView(desk.page);
  if (paused.seqs.length > 1) {
    check(Number(left.detailSeq) === paused.seqs.at(-2), `ArrowLeft shows turn ${left.detailSeq}, not ${paused.seqs.at(-2)}`);
  }
  await desk.page.keyboard.press('Home');
  const home = await readView(desk.page);
  check(Number(home.detailSeq) === paused.seqs[0], `Home shows turn ${home.detailSeq}, not ${paused.seqs[0]}`);
  ok(`paused at snapshot ${paused.snapshots} (${pausedSnap.recent_turns.length} turns in it): hover shows turn ${newest} ` +
    `(${JSON.stringify(hovered.detail.slice(0, 90))}…), ArrowLeft turn ${left.detailSeq}, Home turn ${home.detailSeq}`);

  state.step = 'desktop: resume';
  await desk.page.keyboard.press('End');
  await desk.page.locator('#pause-button').click();
  await until(desk.page, 'the view did not move on after Resume',
    (n) => Number(document.querySelector('#board').dataset.snapshots) > n, paused.snapshots);
  const resumed = await readView(desk.page);
  checkView(resumed, await snapshotOf(desk.seen, resumed), desk.seen, `after resume, snapshot ${resumed.snapshots}`);
  ok(`resumed: the held snapshots were taken in; snapshot ${resumed.snapshots} shown as sent, strip complete`);

  state.step = 'desktop: screenshot';
  await desk.page.mouse.move(0, 0);
  await desk.page.evaluate(() => document.activeElement?.blur());
  await desk.page.screenshot({ path: desktopShot, fullPage: true });
  ok(`screenshot ${desktopShot}`);

  state.step = 'phone: the page goes live';
  const phone = await openInspector(browser, 'phone', {
    viewport: PHONE,
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    colorScheme: 'dark',
  }, { route: true });
  await untilLive(phone.page, 'phone');
  const phoneView = await readView(phone.page);
  checkView(phoneView, await snapshotOf(phone.seen, phoneView), phone.seen, `phone, snapshot ${phoneView.snapshots}`);
  ok(`phone (390×844, touch, dark): live, ${phoneView.turnsRate} turns/s, ${phoneView.seqs.length} turns in the strip, as sent`);

  state.step = 'phone layout';
  const layout = await phone.page.evaluate(() => {
    const overflowing = Array.from(document.querySelectorAll('.card, .tile, .strip, .histogram, table, .topbar'))
      .map((e) => [e.className || e.tagName, e.getBoundingClientRect().right])
      .filter(([, right]) => right > innerWidth + 0.5);
    return {
      innerWidth,
      docScroll: document.documentElement.scrollWidth,
      bodyScroll: document.body.scrollWidth,
      overflowing,
      strip: document.querySelector('#strip').getBoundingClientRect().width,
      background: getComputedStyle(document.body).backgroundColor,
    };
  });
  check(layout.innerWidth === PHONE.width, `the phone's viewport is ${layout.innerWidth} wide`);
  check(layout.docScroll <= layout.innerWidth && layout.bodyScroll <= layout.innerWidth,
    `the page scrolls sideways: ${layout.docScroll}/${layout.bodyScroll} > ${layout.innerWidth}`);
  check(layout.overflowing.length === 0, `past the right edge: ${JSON.stringify(layout.overflowing)}`);
  check(layout.strip >= 300, `the strip is only ${layout.strip} px wide`);
  await phone.page.screenshot({ path: phoneShot, fullPage: true });
  ok(`phone layout: no sideways scroll (${layout.docScroll} ≤ ${layout.innerWidth}), strip ${Math.round(layout.strip)} px, ` +
    `dark background ${layout.background}; screenshot ${phoneShot}`);

  state.step = 'phone: reconnect';
  check(phone.seen.routes.length === 1, `the phone's page opened ${phone.seen.routes.length} WebSockets, not 1`);
  // As when the server goes away (a routed socket's server end may close only with 1000
  // or 3000-4999); closing it closes the page's end too.
  await phone.seen.routes[0].server.close({ code: 1000, reason: 'going away' });
  await until(phone.page, 'the page does not say it is reconnecting',
    () => document.querySelector('#status')?.dataset.state === 'reconnecting' &&
      /^Reconnecting in \d+ s$/.test(document.querySelector('#status-text')?.textContent ?? ''));
  const reconnecting = (await phone.page.locator('#status-text').textContent()).trim();
  await until(phone.page, 'the page did not come back live',
    () => document.querySelector('#status')?.dataset.state === 'live');
  check(phone.seen.urls.length === 2, `the page opened ${phone.seen.urls.length} WebSockets in all, not 2`);
  check(phone.seen.urls[1] === wsUrl, `it reconnected to ${phone.seen.urls[1]}, not ${wsUrl}`);
  const back = await readView(phone.page);
  const count = back.snapshots;
  await until(phone.page, 'no snapshot drawn after the reconnect',
    (n) => Number(document.querySelector('#board').dataset.snapshots) > n, count);
  const later = await readView(phone.page);
  checkView(later, await snapshotOf(phone.seen, later), phone.seen, `after the reconnect, snapshot ${later.snapshots}`);
  ok(`cut the phone's socket: "${reconnecting}", then live again through ${phone.seen.urls[1]}, snapshot ${later.snapshots} shown as sent`);

  state.step = 'no page errors, no dialogs';
  check(pageErrors.length === 0, `the pages reported errors: ${pageErrors.join(' | ')}`);
  check(dialogs.length === 0, `dialogs opened: ${dialogs.join(' | ')}`);
  ok('no errors and no dialogs in either page');
}

await runMain(main, { pageUrl: pageUrl.href, overallTimeoutMs: OVERALL_TIMEOUT_MS });
