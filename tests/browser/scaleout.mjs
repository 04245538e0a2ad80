// The chat page across two instances of `loopchat serve --redis` that share one Redis:
// ann's page is served by instance A and lists both servers (`?ws=ws://A/ws,ws://B/ws`,
// so its reconnect goes to B); ben's is served by B. They chat in #lobby and #rust; then
// the Rust test (tests/browser_scale_out.rs) kills A with SIGKILL. While ann's page is
// cut off, ben says three things in #lobby and one in #rust; ann's page reconnects to B
// with the last id it saw in each room, and shows what it missed, each message once.
//
//   node tests/browser/scaleout.mjs http://127.0.0.1:A http://127.0.0.1:B OUTPUT_DIR
//
// The kill is a handshake over the pipes: the script prints `KILL A` on stdout and waits
// for `KILLED A` on stdin, which the Rust test writes once A has exited.
//
// ann's WebSockets go through Playwright (`routeWebSocket`), for two reasons: the script
// holds her reconnect until ben has spoken (else, on a fast machine, his messages would
// reach her live on B and the resume would go untested), and it keeps every event the
// server sent her, to check the `history` she got on arrival.
//
// Prints one line per check and exits 0 when all pass; on any failure prints
// `FAIL <check>: <why>` and exits 1 (2 for bad usage). Saves scaleout.png to OUTPUT_DIR.

import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { state, ok, check, launchChromium, runMain, sleep, STEP_TIMEOUT_MS } from './launch.mjs';
import { watched, until, seeMessage, say, title, arrive } from './page.mjs';

const OVERALL_TIMEOUT_MS = 300_000;
/** How long ann's page may take to get her nickname back: the instances drop a dead
 * one's members within 15 s (10 s of silence, plus a heartbeat), and the page retries
 * for 18 s after it arrives; generous for a loaded machine. */
const NICK_BACK_MS = 30_000;

const HELLO = 'Hello ben, this is ann on instance A.';
const REPLY = 'Hi ann, ben here on instance B.';
const IN_RUST = 'Borrow checker says hi from #rust.';
const MISSED = ['While you were away: one', 'While you were away: two', 'While you were away: three'];
const MISSED_IN_RUST = 'Meanwhile in #rust, while ann was away';
const AFTER = 'Welcome back, ann.';
const BACK = 'Thanks ben, back on instance B.';

// ------------------------------------------------------------------------ arguments

function parseArguments() {
  const args = process.argv.slice(2);
  const usage = 'usage: node tests/browser/scaleout.mjs http://HOST:A http://HOST:B OUTPUT_DIR';
  if (args.length !== 3) {
    console.error(usage);
    process.exit(2);
  }
  const bases = args.slice(0, 2).map((arg) => {
    try {
      const url = new URL(arg);
      if (url.protocol !== 'http:') throw new Error('not http:');
      return url;
    } catch (e) {
      console.error(`FAIL arguments: ${JSON.stringify(arg)} is not an http:// URL (${e.message})`);
      return process.exit(2);
    }
  });
  return { a: bases[0], b: bases[1], outDir: resolve(args[2]) };
}

const { a, b, outDir } = parseArguments();
const wsA = `ws://${a.host}/ws`;
const wsB = `ws://${b.host}/ws`;
const annUrl = new URL(`/?ws=${wsA},${wsB}`, a).href;
const benUrl = new URL('/', b).href;

// ------------------------------------------------------------------------ helpers

/** The lines written to our stdin, one at a time. */
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Asks the Rust test to do something (a line on stdout) and waits for its answer. */
async function askRust(request, answer) {
  console.log(request);
  const timeout = sleep(STEP_TIMEOUT_MS).then(() => ({ timedOut: true }));
  const next = await Promise.race([stdinLines.next(), timeout]);
  check(!next.timedOut, `no ${JSON.stringify(answer)} on stdin within ${STEP_TIMEOUT_MS / 1000} s`);
  check(!next.done, `stdin closed before ${JSON.stringify(answer)}`);
  check(next.value === answer, `stdin said ${JSON.stringify(next.value)}, not ${JSON.stringify(answer)}`);
}

/** Waits, in this script, until `condition()` holds; the error names `what`. */
async function waitUntil(what, condition, timeoutMs = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    check(Date.now() < deadline, `${what} (not within ${timeoutMs / 1000} s)`);
    await sleep(50);
  }
}

/** Something to wait for, settled from outside. */
function deferred() {
  let open;
  const promise = new Promise((res) => {
    open = res;
  });
  return { promise, open };
}

/** The texts of the messages in the shown conversation, top to bottom. */
function shownTexts(page) {
  return page.locator('#log li.msg .text').allTextContents();
}

async function showConv(page, key) {
  await page.locator(`.conv-button[data-key="${key}"]`).click();
  await until(page, `${key} is not shown`,
    (k) => document.querySelector('.conv-button.active')?.dataset.key === k, key);
}

/** The `data-id` of the last message in the shown conversation. */
async function lastId(page) {
  return Number(await page.locator('#log li.msg').last().getAttribute('data-id'));
}

async function seesMember(page, who, nick) {
  await until(page, `${who} does not see ${nick} among the members`,
    (n) => Array.from(document.querySelectorAll('#member-list .member-name')).some((e) => e.textContent === n),
    nick);
}

async function joinRoom(page, who, room) {
  await say(page, `/join #${room}`);
  await until(page, `${who} did not switch to #${room}`,
    (t) => document.querySelector('#conv-title')?.textContent === t, `#${room}`);
}

/** The same list, as one line for a failure message. */
const same = (got, wanted) => JSON.stringify(got) === JSON.stringify(wanted);

// ------------------------------------------------------------------------ the run

async function main() {
  const browser = await launchChromium(outDir);

  // Every WebSocket ann's page opens: its URL and the events the server sent on it.
  // While `hold` is set, a new one waits before it reaches the server (it stays
  // "connecting" in the page).
  const annSockets = [];
  let hold = null;
  const routeAnn = (page) => page.routeWebSocket(/\/ws(\?|$)/, async (route) => {
    const socket = { url: route.url(), events: [] };
    annSockets.push(socket);
    if (hold) await hold.promise;
    const server = route.connectToServer();
    server.onMessage((message) => {
      try {
        socket.events.push(JSON.parse(message));
      } catch {
        socket.events.push({ type: '(not JSON)', message });
      }
      route.send(message);
    });
  });

  state.step = 'ann arrives on A, ben on B';
  watched.pageUrl = annUrl;
  const ann = await arrive(browser, 'ann', { viewport: { width: 1280, height: 800 } }, { beforeLoad: routeAnn });
  check(annSockets.length === 1 && annSockets[0].url === wsA,
    `ann's page connected to ${annSockets.map((s) => s.url)}, not only ${wsA}`);
  watched.pageUrl = benUrl;
  const ben = await arrive(browser, 'ben', { viewport: { width: 1280, height: 800 } });
  await seesMember(ann.page, 'ann', 'ben');
  await seesMember(ben.page, 'ben', 'ann');
  ok(`ann's page (${annUrl}) is on A, ben's (${benUrl}) on B; each sees the other in #lobby`);

  state.step = 'ann and ben chat across the instances';
  await say(ann.page, HELLO);
  await seeMessage(ben.page, 'ben', 'ann', HELLO);
  await say(ben.page, REPLY);
  await seeMessage(ann.page, 'ann', 'ben', REPLY);
  await joinRoom(ann.page, 'ann', 'rust');
  await joinRoom(ben.page, 'ben', 'rust');
  await seesMember(ann.page, 'ann', 'ben');
  await say(ben.page, IN_RUST);
  await seeMessage(ann.page, 'ann', 'ben', IN_RUST);
  const rustLastId = await lastId(ann.page);
  await showConv(ann.page, 'room:lobby');
  await showConv(ben.page, 'room:lobby');
  const lobbyLastId = await lastId(ann.page);
  check(same(await shownTexts(ann.page), [HELLO, REPLY]), `ann's #lobby shows ${JSON.stringify(await shownTexts(ann.page))}`);
  ok(`ann → ben and ben → ann in #lobby (last id ${lobbyLastId}), ben → ann in #rust (last id ${rustLastId})`);

  state.step = 'instance A is killed';
  hold = deferred();
  await askRust('KILL A', 'KILLED A');
  const killedAt = Date.now();
  await until(ann.page, 'ann\'s page does not say the connection was lost',
    () => Array.from(document.querySelectorAll('#log .notice-text')).some((e) => e.textContent === 'Connection lost. Reconnecting…'));
  await waitUntil('ann\'s page did not try to reconnect', () => annSockets.length === 2);
  const resumeUrl = new URL(annSockets[1].url);
  check(`${resumeUrl.protocol}//${resumeUrl.host}${resumeUrl.pathname}` === wsB,
    `ann's page reconnects to ${annSockets[1].url}, not ${wsB}`);
  const after = resumeUrl.searchParams.get('after');
  check(same((after ?? '').split(',').sort(), [`lobby:${lobbyLastId}`, `rust:${rustLastId}`]),
    `ann's page reconnects with after=${JSON.stringify(after)}, not lobby:${lobbyLastId},rust:${rustLastId}`);
  ok(`A killed: ann's page lost its connection and reconnects to ${annSockets[1].url} (held for now)`);

  state.step = 'ben talks while ann is away';
  for (const text of MISSED) {
    await say(ben.page, text);
    await seeMessage(ben.page, 'ben', 'ben', text);
  }
  await showConv(ben.page, 'room:rust');
  await say(ben.page, MISSED_IN_RUST);
  await seeMessage(ben.page, 'ben', 'ben', MISSED_IN_RUST);
  await showConv(ben.page, 'room:lobby');
  const annState = await ann.page.evaluate(() => document.querySelector('#status')?.dataset.state);
  check(annState !== 'online', `ann's page is ${annState} while its reconnect is held`);
  ok(`ben said ${MISSED.length} things in #lobby and 1 in #rust while ann's page was ${annState}`);

  state.step = 'ann\'s page reconnects to B';
  hold.open();
  await until(ann.page, 'ann\'s page did not come back online',
    () => document.querySelector('#status')?.dataset.state === 'online');
  const events = annSockets[1].events;
  const history = (room) => events.find((e) => e.type === 'history' && e.room === room);
  await waitUntil('ann\'s page got no #lobby and #rust history on B', () => history('lobby') && history('rust'));
  for (const [room, id, wanted] of [['lobby', lobbyLastId, MISSED], ['rust', rustLastId, [MISSED_IN_RUST]]]) {
    const h = history(room);
    const texts = h.messages.map((m) => m.text);
    check(h.after === id && !h.truncated, `#${room}'s history on B is after ${h.after} (truncated: ${h.truncated}), not ${id}`);
    check(same(texts, wanted), `#${room}'s history on B holds ${JSON.stringify(texts)}, not ${JSON.stringify(wanted)}`);
  }
  ok('on B, ann\'s page got the history after its last ids: exactly the 3 missed in #lobby and the 1 in #rust');

  state.step = 'ann\'s page shows what she missed, each once';
  const wantLobby = [HELLO, REPLY, ...MISSED];
  await until(ann.page, 'ann\'s #lobby does not show the missed messages',
    (n) => document.querySelectorAll('#log li.msg').length >= n, wantLobby.length);
  const lobby = await shownTexts(ann.page);
  check(same(lobby, wantLobby), `ann's #lobby shows ${JSON.stringify(lobby)}, not ${JSON.stringify(wantLobby)}`);
  check((await title(ann.page)) === '#lobby', `ann's page shows ${await title(ann.page)}, not #lobby`);
  await showConv(ann.page, 'room:rust');
  const wantRust = [IN_RUST, MISSED_IN_RUST];
  await until(ann.page, 'ann\'s #rust does not show the missed message',
    (n) => document.querySelectorAll('#log li.msg').length >= n, wantRust.length);
  const rust = await shownTexts(ann.page);
  check(same(rust, wantRust), `ann's #rust shows ${JSON.stringify(rust)}, not ${JSON.stringify(wantRust)}`);
  await showConv(ann.page, 'room:lobby');
  ok(`ann's #lobby shows ${wantLobby.length} messages, each once and in order; #rust ${wantRust.length}`);

  state.step = 'ben → ann after the reconnect';
  await say(ben.page, AFTER);
  await seeMessage(ann.page, 'ann', 'ben', AFTER);
  const lobbyAfter = await shownTexts(ann.page);
  check(same(lobbyAfter, [...wantLobby, AFTER]), `ann's #lobby shows ${JSON.stringify(lobbyAfter)}`);
  ok('ben → ann on B: shown once, after the rest');

  state.step = 'ann gets her nickname back';
  // Until the instances drop A's members, "ann" is still taken by her connection on A.
  try {
    await ann.page.waitForFunction(() => document.querySelector('#me-nick')?.textContent === 'ann',
      null, { timeout: NICK_BACK_MS });
  } catch (e) {
    const nick = await ann.page.locator('#me-nick').textContent();
    throw new Error(`ann's page is still ${nick} ${NICK_BACK_MS / 1000} s after the reconnect (${e.message.split('\n')[0]})`);
  }
  check(!(await ann.page.locator('#nick-dialog').isVisible()), 'the nickname dialog opened on ann\'s page');
  await seesMember(ben.page, 'ben', 'ann');
  await say(ann.page, BACK);
  await seeMessage(ben.page, 'ben', 'ann', BACK);
  const seconds = ((Date.now() - killedAt) / 1000).toFixed(1);
  ok(`ann is "ann" again on B ${seconds} s after the kill (ben sees her among the members and her message)`);

  state.step = 'screenshot';
  const shot = join(outDir, 'scaleout.png');
  await ann.page.evaluate(() => document.activeElement?.blur());
  await ann.page.screenshot({ path: shot });
  ok(`screenshot of ann's page: ${shot}`);

  state.step = 'no page errors, no dialogs';
  check(annSockets.length === 2, `ann's page opened ${annSockets.length} WebSockets, not 2`);
  check(watched.errors.length === 0, `the pages reported errors: ${watched.errors.join(' | ')}`);
  check(watched.dialogs.length === 0, `dialogs opened: ${watched.dialogs.join(' | ')}`);
  ok('no errors and no dialogs in either page');
}

await runMain(main, { pageUrl: `${annUrl} and ${benUrl}`, overallTimeoutMs: OVERALL_TIMEOUT_MS });
