// A real browser against `loopchat serve --mode echo`: Debian's Chromium, driven by
// playwright-core, opens the server's page, uses its console, then runs a plain
// `new WebSocket()` in the page through text, binary, large, many and a clean close.
//
//   node tests/browser/echo.mjs http://127.0.0.1:PORT OUTPUT_DIR
//
// Prints one line per check and exits 0 when all pass; on any failure prints
// `FAIL <check>: <why>` and exits 1 (2 for bad usage). Whatever happens, it finishes
// within OVERALL_TIMEOUT_MS, closes the browser and removes its temporary profile.
// Run by tests/browser.rs; install with `npm ci --prefix tests/browser` and
// `apt-get install -y chromium`.

import { join } from 'node:path';
import { state, ok, check, launchChromium, parseArgs, runMain, watchErrors, STEP_TIMEOUT_MS } from './launch.mjs';

const OVERALL_TIMEOUT_MS = 300_000;

const { base, pageUrl, outDir } = parseArgs('tests/browser/echo.mjs');
const wsUrl = `ws://${base.host}/`;
const screenshot = join(outDir, 'echo-page.png');

async function main() {
  await launchChromium(outDir);

  const context = await state.browser.newContext({ viewport: { width: 900, height: 720 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  watchErrors(page, pageErrors);

  // The page and its console, as a person would use them.
  state.step = 'load the page';
  const response = await page.goto(pageUrl);
  check(response && response.status() === 200, `GET ${pageUrl} answered ${response?.status()}`);
  check(
    (await page.locator('#url').textContent()) === wsUrl,
    `the page shows ${JSON.stringify(await page.locator('#url').textContent())}, not ${wsUrl}`,
  );
  ok(`GET ${pageUrl}: 200, "${await page.title()}"`);

  state.step = 'page console connects';
  await page.waitForFunction(
    () => document.querySelector('#status')?.textContent === 'open',
    null,
    { timeout: STEP_TIMEOUT_MS },
  ).catch(async (e) => {
    const status = await page.locator('#status').textContent().catch(() => '?');
    throw new Error(`#status is ${JSON.stringify(status)}, not "open" (${e.message.split('\n')[0]})`);
  });
  ok('page console connected: #status reads "open"');

  state.step = 'page console echoes a typed message';
  const typed = 'Hello from Chromium, héllo wörld ✓';
  await page.locator('#text').click();
  await page.keyboard.type(typed);
  await page.keyboard.press('Enter');
  const echoedLine = page.locator('#log div.in', { hasText: `< ${typed}` });
  await echoedLine.waitFor({ state: 'visible' });
  const lines = await page.locator('#log div').allTextContents();
  check(
    JSON.stringify(lines) === JSON.stringify([`> ${typed}`, `< ${typed}`]),
    `#log holds ${JSON.stringify(lines)}`,
  );
  check((await page.locator('#text').inputValue()) === '', 'the input was not cleared');
  await page.screenshot({ path: screenshot, fullPage: true });
  ok(`page console: typed "${typed}" + Enter, "< ${typed}" came back; screenshot ${screenshot}`);

  // A plain `new WebSocket()` in the page. Messages are queued in the page; `next()`
  // waits for one, failing if the socket closes or nothing comes in time.
  state.step = 'open a WebSocket';
  await page.evaluate(
    ({ url, stepMs }) =>
      new Promise((resolve, reject) => {
        const t = (window.__echo = { queue: [], waiters: [], closeEvent: null });
        const ws = (t.ws = new WebSocket(url));
        ws.onmessage = (e) => {
          const waiter = t.waiters.shift();
          if (waiter) waiter.resolve(e.data);
          else t.queue.push(e.data);
        };
        t.closed = new Promise((done) => {
          ws.onclose = (e) => {
            t.closeEvent = { code: e.code, reason: e.reason, wasClean: e.wasClean };
            for (const w of t.waiters.splice(0)) {
              w.reject(new Error(`socket closed while waiting for a message: code ${e.code}`));
            }
            reject(new Error(`closed before open: code ${e.code}, wasClean ${e.wasClean}`));
            done(t.closeEvent);
          };
        });
        t.next = () => {
          if (t.queue.length) return Promise.resolve(t.queue.shift());
          if (t.closeEvent) return Promise.reject(new Error('socket already closed'));
          return new Promise((res, rej) => {
            const w = { resolve: res, reject: rej };
            t.waiters.push(w);
            setTimeout(() => {
              const i = t.waiters.indexOf(w);
              if (i >= 0) {
                t.waiters.splice(i, 1);
                rej(new Error(`no message within ${stepMs} ms`));
              }
            }, stepMs);
          });
        };
        ws.onopen = () => resolve();
      }),
    { url: wsUrl, stepMs: STEP_TIMEOUT_MS },
  );
  ok(`new WebSocket('${wsUrl}') opened`);

  // Chromium offers permessage-deflate on every WebSocket; the server accepts it, so what
  // the page sends from here on arrives compressed and is inflated by the server.
  state.step = 'permessage-deflate negotiated';
  const extensions = await page.evaluate(() => window.__echo.ws.extensions);
  check(extensions === 'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
    `ws.extensions is ${JSON.stringify(extensions)}`);
  ok(`ws.extensions: ${extensions}`);

  state.step = 'echo non-ASCII text';
  const unicode = 'héllo wörld · κόσμε · Привет · 日本語 · 😀🎉 · \u0000 · 𝄞';
  const textResult = await page.evaluate(async (text) => {
    const t = window.__echo;
    t.ws.send(text);
    const back = await t.next();
    return { type: typeof back, same: back === text, length: String(back).length };
  }, unicode);
  check(textResult.type === 'string', `got a ${textResult.type}, not a string`);
  check(textResult.same, `got ${textResult.length} UTF-16 units back, not the same text`);
  ok(`text with non-ASCII characters echoed (${Buffer.byteLength(unicode)} UTF-8 bytes)`);

  state.step = 'echo binary';
  const binaryResult = await page.evaluate(async () => {
    const t = window.__echo;
    t.ws.binaryType = 'arraybuffer';
    const bytes = new Uint8Array(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) % 256;
    bytes.set([0, 0xff, 0x80, 0xc3, 0x28], 0); // also bytes that are not UTF-8
    t.ws.send(bytes.buffer);
    const back = await t.next();
    if (!(back instanceof ArrayBuffer)) {
      return { error: `got ${Object.prototype.toString.call(back)}, not an ArrayBuffer` };
    }
    const got = new Uint8Array(back);
    if (got.length !== bytes.length) return { error: `got ${got.length} bytes, sent ${bytes.length}` };
    const at = got.findIndex((b, i) => b !== bytes[i]);
    if (at >= 0) return { error: `byte ${at} is ${got[at]}, sent ${bytes[at]}` };
    return { length: got.length };
  });
  check(!binaryResult.error, binaryResult.error);
  ok(`binary message echoed byte for byte (${binaryResult.length} bytes, ArrayBuffer)`);

  state.step = 'echo 1 MiB of text';
  const bigResult = await page.evaluate(async () => {
    const t = window.__echo;
    // 131072 numbered 8-byte pieces: exactly 1 MiB, and a shuffled piece would show.
    const pieces = [];
    for (let i = 0; i < 131072; i++) pieces.push(`${String(i).padStart(7, '0')} `);
    const text = pieces.join('');
    t.ws.send(text);
    const back = await t.next();
    if (typeof back !== 'string') return { error: `got a ${typeof back}, not a string` };
    if (back.length !== text.length) return { error: `got ${back.length} characters, sent ${text.length}` };
    if (back !== text) {
      let at = 0;
      while (back[at] === text[at]) at++;
      return { error: `text differs from character ${at}` };
    }
    return { length: back.length };
  });
  check(!bigResult.error, bigResult.error);
  check(bigResult.length === 1 << 20, `sent ${bigResult.length} bytes, not 1 MiB`);
  ok(`1 MiB text message echoed intact (${bigResult.length} bytes)`);

  state.step = 'echo 100 messages in order';
  const manyResult = await page.evaluate(async () => {
    const t = window.__echo;
    const sent = [];
    for (let i = 0; i < 100; i++) {
      sent.push(`message ${i} of 100`);
      t.ws.send(sent[i]);
    }
    const got = [];
    for (let i = 0; i < 100; i++) got.push(await t.next());
    const at = got.findIndex((m, i) => m !== sent[i]);
    if (at >= 0) return { error: `message ${at} came back as ${JSON.stringify(got[at])}` };
    return { count: got.length, queued: t.queue.length };
  });
  check(!manyResult.error, manyResult.error);
  check(manyResult.queued === 0, `${manyResult.queued} unexpected extra messages came back`);
  ok(`100 messages sent back to back all came back, in order`);

  state.step = 'close with 4000';
  const closeResult = await page.evaluate(async (stepMs) => {
    const t = window.__echo;
    t.ws.close(4000, 'done');
    return await Promise.race([
      t.closed,
      new Promise((res) => setTimeout(() => res(null), stepMs)),
    ]);
  }, STEP_TIMEOUT_MS);
  check(closeResult !== null, `no close event within ${STEP_TIMEOUT_MS / 1000} s of ws.close(4000, "done")`);
  check(
    closeResult.code === 4000 && closeResult.wasClean === true,
    `close event has code ${closeResult.code}, wasClean ${closeResult.wasClean}, ` +
      `reason ${JSON.stringify(closeResult.reason)}; expected code 4000, wasClean true`,
  );
  ok(`ws.close(4000, 'done'): close event code 4000, wasClean true, reason ${JSON.stringify(closeResult.reason)}`);

  state.step = 'no page errors';
  check(pageErrors.length === 0, `the page reported errors: ${pageErrors.join(' | ')}`);
  ok('no errors in the page');
}

await runMain(main, { pageUrl, overallTimeoutMs: OVERALL_TIMEOUT_MS });
