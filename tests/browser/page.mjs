// What the chat's browser scripts share: a PNG made on the spot, waiting for things in a
// page, typing like a person, and arriving on the page as someone (nickname dialog
// included). Errors and dialogs from every page opened with `arrive` are collected in
// `watched`, which the scripts check at the end; `watched.pageUrl` must be set first.

import { deflateSync } from 'node:zlib';
import { ok, check, watchErrors, STEP_TIMEOUT_MS } from './launch.mjs';

/** The page's URL, and errors and dialogs from every page `arrive` opened. */
export const watched = { pageUrl: '', errors: [], dialogs: [] };

// ------------------------------------------------------------------------ a PNG

/** A small picture (a sunset over hills) encoded here as a valid PNG: RGB, 8 bits. */
export function makePng(width = 192, height = 128) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  const mix = (a, b, t) => Math.round(a + (b - a) * t);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    raw[row] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const t = y / height;
      let rgb = [mix(251, 253, t), mix(113, 224, t), mix(133, 140, t)]; // sky: rose to gold
      const dx = x - 128;
      const dy = y - 58;
      if (dx * dx + dy * dy < 22 * 22) rgb = [255, 247, 225]; // sun
      const back = 84 + 10 * Math.sin(x / 17) + 6 * Math.sin(x / 7);
      const front = 100 + 12 * Math.sin(x / 23 + 2);
      if (y > back) rgb = [124, 58, 237]; // far hills
      if (y > front) rgb = [67, 30, 140]; // near hills
      raw.set(rgb, row + 1 + x * 3);
    }
  }
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, deflate, no filter method, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ------------------------------------------------------------------------ helpers

/** Waits until `fn(arg)` in the page is truthy; the error names `what`. */
export async function until(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: STEP_TIMEOUT_MS });
  } catch (e) {
    throw new Error(`${what} (${e.message.split('\n')[0]})`);
  }
}

/** The message (li.msg) in the shown conversation whose text is exactly `text`. */
export function message(page, text) {
  return page.locator('#log li.msg').filter({
    has: page.locator('.text', { hasText: new RegExp(`^${escapeRegExp(text)}$`) }),
  });
}

export function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Waits for a message with exactly `text` from `from` in `page`'s shown conversation. */
export async function seeMessage(page, who, from, text) {
  const li = message(page, text).last();
  try {
    await li.waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
  } catch (e) {
    const shown = await page.locator('#log li').allTextContents().catch(() => []);
    throw new Error(`${who} never saw ${JSON.stringify(text)}; the log holds ${JSON.stringify(shown.slice(-8))}`);
  }
  const sender = await li.getAttribute('data-from');
  check(sender === from, `${who} sees ${JSON.stringify(text)} from ${sender}, not ${from}`);
  return li;
}

/** Types into the message box like a person and presses Enter. */
export async function say(page, text) {
  const box = page.locator('#text');
  await box.click();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (i > 0) await page.keyboard.press('Shift+Enter');
    await page.keyboard.type(lines[i]);
  }
  await page.keyboard.press('Enter');
}

export async function badge(page, key) {
  const b = page.locator(`.conv-button[data-key="${key}"] .badge`);
  return (await b.count()) ? (await b.textContent()).trim() : '';
}

export async function title(page) {
  return (await page.locator('#conv-title').textContent()).trim();
}

/** What Chromium's WebSocket reports in `ws.extensions` once loopchat has accepted its
 * permessage-deflate offer: the server takes no context over either way. */
export const DEFLATE_EXTENSIONS = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';

/** Opens the page in a new context and takes `nick` through the nickname dialog. Checks
 * that the page's WebSocket negotiated permessage-deflate. */
export async function arrive(browser, nick, contextOptions, { beforeLoad, tryFirst } = {}) {
  const context = await browser.newContext(contextOptions);
  // Keeps every WebSocket the page opens, unchanged otherwise, so that the test can read
  // what was negotiated (chat.js keeps its socket to itself).
  await context.addInitScript(() => {
    const Native = window.WebSocket;
    window.__sockets = [];
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        window.__sockets.push(this);
      }
    };
  });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  watchErrors(page, watched.errors, nick);
  page.on('dialog', (d) => {
    watched.dialogs.push(`${nick}: ${d.type()} ${JSON.stringify(d.message())}`);
    d.dismiss().catch(() => {});
  });
  if (beforeLoad) await beforeLoad(page);

  const pageUrl = watched.pageUrl;
  const response = await page.goto(pageUrl);
  check(response && response.status() === 200, `GET ${pageUrl} answered ${response?.status()}`);
  const csp = response.headers()['content-security-policy'] ?? '';
  check(csp.includes("default-src 'self'"), `no Content-Security-Policy on the page (${csp})`);

  const dialog = page.locator('#nick-dialog');
  await dialog.waitFor({ state: 'visible' });
  const input = page.locator('#nick-input');
  if (tryFirst) {
    await input.fill(tryFirst);
    await input.press('Enter');
    const error = page.locator('#nick-error');
    await until(page, `no inline error after choosing the taken nickname ${tryFirst}`,
      () => /taken/i.test(document.querySelector('#nick-error')?.textContent ?? ''));
    check(await dialog.isVisible(), 'the nickname dialog closed although the nickname was taken');
    ok(`${nick}'s page: "${tryFirst}" is taken, shown inline: ${JSON.stringify(await error.textContent())}`);
  }
  await input.fill(nick);
  await input.press('Enter');
  await dialog.waitFor({ state: 'hidden' });
  await until(page, `${nick}'s page does not show the nickname ${nick}`,
    (n) => document.querySelector('#me-nick')?.textContent === n, nick);
  await until(page, `${nick}'s page is not online`,
    () => document.querySelector('#status')?.dataset.state === 'online');
  await until(page, `${nick}'s page is not in #lobby`,
    () => document.querySelector('#conv-title')?.textContent === '#lobby');
  const stored = await page.evaluate(() => localStorage.getItem('loopchat.nick'));
  check(stored === nick, `localStorage remembers ${JSON.stringify(stored)}, not ${nick}`);
  const status = (await page.locator('#status-text').textContent()).trim();
  const extensions = await page.evaluate(() => window.__sockets.at(-1)?.extensions);
  check(extensions === DEFLATE_EXTENSIONS, `${nick}'s WebSocket has extensions ${JSON.stringify(extensions)}`);
  // Over https the page must open wss:// (a browser refuses ws:// from an https page).
  const socketUrl = await page.evaluate(() => window.__sockets.at(-1)?.url);
  const wanted = new URL(pageUrl).protocol === 'https:' ? 'wss:' : 'ws:';
  check(new URL(socketUrl).protocol === wanted, `${nick}'s WebSocket is ${socketUrl}, not ${wanted}`);
  ok(`${nick} loaded ${pageUrl} (200, CSP), picked "${nick}" in the page's dialog; status "${status}", in #lobby, remembered; WebSocket ${socketUrl}, ws.extensions "${extensions}"`);
  return { context, page, nick };
}
