// Real browsers against `loopchat serve` (chat mode): Debian's Chromium, driven by
// playwright-core, opens the chat page as three people in separate browser contexts
// (alice and bob on a desktop, carol on a phone) and uses it as they would: nicknames,
// messages both ways, an image, private messages with unread markers, rooms, a message
// that looks like HTML, the phone layout, and a reconnect.
//
//   node tests/browser/chat.mjs http://127.0.0.1:PORT OUTPUT_DIR
//
// Prints one line per check and exits 0 when all pass; on any failure prints
// `FAIL <check>: <why>` and exits 1 (2 for bad usage). Saves chat-desktop.png and
// chat-phone.png to OUTPUT_DIR. Whatever happens, it finishes within
// OVERALL_TIMEOUT_MS, closes the browser and removes its temporary profile.
// Run by tests/browser_chat.rs; install with `npm ci --prefix tests/browser` and
// `apt-get install -y chromium`.

import { join } from 'node:path';
import { state, ok, check, launchChromium, parseArgs, runMain, sleep } from './launch.mjs';
import { watched, makePng, until, message, seeMessage, say, badge, title, arrive } from './page.mjs';

const OVERALL_TIMEOUT_MS = 300_000;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const XSS = '<img src=x onerror=alert(1)>';

const { pageUrl, outDir } = parseArgs('tests/browser/chat.mjs');
const desktopShot = join(outDir, 'chat-desktop.png');
const phoneShot = join(outDir, 'chat-phone.png');

watched.pageUrl = pageUrl;
// Errors and dialogs from every page; both must stay empty.
const { errors: pageErrors, dialogs } = watched;

// ------------------------------------------------------------------------ the run

async function main() {
  const browser = await launchChromium(outDir);

  state.step = 'the script builds no HTML from data';
  const script = await (await fetch(new URL('/chat.js', pageUrl))).text();
  const forbidden = script.match(/\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval)\b/);
  check(!forbidden, `chat.js uses ${forbidden?.[0]}`);
  ok(`chat.js (${script.length} bytes) uses no innerHTML, outerHTML, insertAdjacentHTML, document.write or eval`);

  state.step = 'alice arrives';
  const alice = await arrive(browser, 'alice', { viewport: DESKTOP });
  state.step = 'bob arrives';
  const bob = await arrive(browser, 'bob', { viewport: DESKTOP }, { tryFirst: 'alice' });

  state.step = 'members';
  await until(alice.page, 'alice does not see bob among the members',
    () => Array.from(document.querySelectorAll('#member-list .member-name')).some((e) => e.textContent === 'bob'));
  await until(bob.page, 'bob does not see alice among the members',
    () => Array.from(document.querySelectorAll('#member-list .member-name')).some((e) => e.textContent === 'alice'));
  await until(alice.page, 'alice is not told that bob arrived',
    () => Array.from(document.querySelectorAll('#log .notice-text')).some((e) => /bob/.test(e.textContent)));
  ok('both see each other in #lobby\'s member list, and alice sees a notice about bob');

  state.step = 'alice and bob chat';
  const hello = 'Hi bob! Welcome to loopchat.';
  await say(alice.page, hello);
  const bobSeesHello = await seeMessage(bob.page, 'bob', 'alice', hello);
  const aliceOwn = await seeMessage(alice.page, 'alice', 'alice', hello);
  check(await aliceOwn.evaluate((li) => li.classList.contains('own')), 'alice\'s own message is not marked as hers');
  check(!(await bobSeesHello.evaluate((li) => li.classList.contains('own'))), 'bob sees alice\'s message as his own');
  const time = (await bobSeesHello.locator('.time').textContent()).trim();
  check(/^\d\d:\d\d$/.test(time), `the message's time reads ${JSON.stringify(time)}, not HH:MM`);
  check((await alice.page.locator('#text').inputValue()) === '', 'the message box was not cleared after sending');
  check(await alice.page.evaluate(() => document.activeElement?.id === 'text'), 'the message box lost focus after sending');
  const reply = 'Hey alice! Thanks.\nThis one has two lines (Shift+Enter).';
  await say(bob.page, reply);
  const aliceSeesReply = await seeMessage(alice.page, 'alice', 'bob', reply);
  await seeMessage(bob.page, 'bob', 'bob', reply);
  const colours = await alice.page.evaluate(() => {
    const bg = (li) => getComputedStyle(li.querySelector('.bubble')).backgroundColor;
    const own = document.querySelector('#log li.msg.own');
    const other = document.querySelector('#log li.msg:not(.own)');
    return { own: bg(own), other: bg(other) };
  });
  check(colours.own !== colours.other, `own and others' messages look alike (${colours.own})`);
  check((await aliceSeesReply.locator('.sender').textContent()) === 'bob', 'the sender\'s name is not shown');
  ok(`alice → bob and bob → alice (two lines) in #lobby; sender, time ${time}; own messages ${colours.own} vs ${colours.other}; box cleared and focused`);

  state.step = 'alice sends an image';
  const png = makePng();
  await alice.page.locator('#file-input').setInputFiles({ name: 'sunset.png', mimeType: 'image/png', buffer: png });
  const bobImage = bob.page.locator('#log li.msg.has-image[data-from="alice"] img.chat-image').last();
  await bobImage.waitFor({ state: 'visible' });
  await until(bob.page, 'bob\'s copy of the image did not load',
    () => {
      const img = Array.from(document.querySelectorAll('#log li.msg.has-image img')).pop();
      return img && img.complete && img.naturalWidth > 0;
    });
  const seen = await bobImage.evaluate((img) => ({
    width: img.naturalWidth,
    height: img.naturalHeight,
    src: img.src.slice(0, 22),
  }));
  check(seen.width === 192 && seen.height === 128, `bob's image is ${seen.width}×${seen.height}, not 192×128`);
  check(seen.src === 'data:image/png;base64,', `bob's image src starts ${JSON.stringify(seen.src)}`);
  const aliceImage = alice.page.locator('#log li.msg.own.has-image img.chat-image').last();
  await aliceImage.waitFor({ state: 'visible' });
  await until(alice.page, 'alice\'s own image did not load',
    () => {
      const img = Array.from(document.querySelectorAll('#log li.msg.own.has-image img')).pop();
      return img && img.complete && img.naturalWidth > 0;
    });
  ok(`alice sent a ${png.length}-byte PNG with the file picker; bob sees it rendered (${seen.width}×${seen.height}, from alice), alice too`);

  state.step = 'more chat';
  const nice = 'Lovely! Where was that taken?';
  await say(bob.page, nice);
  await seeMessage(alice.page, 'alice', 'bob', nice);
  const answer = 'From the hill behind the office, last night. See https://example.com/sunset';
  await say(alice.page, answer);
  const link = (await seeMessage(bob.page, 'bob', 'alice', answer)).locator('a');
  check((await link.getAttribute('href')) === 'https://example.com/sunset', 'the link was not made clickable');
  check((await link.getAttribute('rel'))?.includes('noopener'), 'the link lacks rel=noopener');
  ok('links in messages are clickable (https only, rel=noopener)');

  state.step = 'bob writes to alice privately';
  await bob.page.locator('#member-list button.member-button[data-nick="alice"]').click();
  await until(bob.page, 'clicking alice did not open @alice', () => document.querySelector('#conv-title')?.textContent === '@alice');
  const secret = 'psst — lunch at noon?';
  await say(bob.page, secret);
  await seeMessage(bob.page, 'bob', 'bob', secret);
  await until(alice.page, 'alice has no unread marker on @bob',
    () => document.querySelector('.conv-button[data-key="dm:bob"] .badge')?.textContent === '1');
  check((await title(alice.page)) === '#lobby', 'alice was moved away from #lobby');
  ok('bob clicked alice in the member list and wrote in @alice; alice sees "@bob" with 1 unread, still in #lobby');

  state.step = 'desktop screenshot';
  await alice.page.locator('#log li.msg.has-image img').last().scrollIntoViewIfNeeded();
  await alice.page.evaluate(() => document.activeElement?.blur());
  await alice.page.screenshot({ path: desktopShot });
  ok(`screenshot of alice's page: ${desktopShot}`);

  state.step = 'alice reads and answers privately';
  await alice.page.locator('.conv-button[data-key="dm:bob"]').click();
  check((await title(alice.page)) === '@bob', `alice's title is ${await title(alice.page)}, not @bob`);
  await seeMessage(alice.page, 'alice', 'bob', secret);
  check((await badge(alice.page, 'dm:bob')) === '', 'the unread marker stayed after opening @bob');
  await say(alice.page, '/msg bob Sure, see you there!');
  await seeMessage(bob.page, 'bob', 'alice', 'Sure, see you there!');
  await seeMessage(alice.page, 'alice', 'alice', 'Sure, see you there!');
  check((await title(alice.page)) === '@bob', 'alice left @bob after /msg');
  ok('alice opened @bob (marker cleared), answered with "/msg bob …", bob sees it in @alice');

  state.step = 'unread marker on a room';
  await bob.page.locator('.conv-button[data-key="room:lobby"]').click();
  const meanwhile = 'Meanwhile, in the lobby…';
  await say(bob.page, meanwhile);
  await until(alice.page, 'alice has no unread marker on #lobby',
    () => document.querySelector('.conv-button[data-key="room:lobby"] .badge')?.textContent === '1');
  await alice.page.locator('.conv-button[data-key="room:lobby"]').click();
  await seeMessage(alice.page, 'alice', 'bob', meanwhile);
  check((await badge(alice.page, 'room:lobby')) === '', 'the #lobby marker stayed after opening it');
  ok('a message in #lobby while alice was in @bob: #lobby showed 1 unread, cleared when opened');

  state.step = 'rooms and a message that looks like HTML';
  await alice.page.locator('#join-input').fill('design');
  await alice.page.locator('#join-input').press('Enter');
  await until(alice.page, 'alice did not switch to #design', () => document.querySelector('#conv-title')?.textContent === '#design');
  await say(bob.page, '/join #design');
  await until(bob.page, 'bob did not switch to #design', () => document.querySelector('#conv-title')?.textContent === '#design');
  await until(alice.page, 'alice was not told that bob joined #design',
    () => Array.from(document.querySelectorAll('#log .notice-text')).some((e) => e.textContent === 'bob joined'));
  const imagesBefore = await alice.page.locator('img').count();
  await say(bob.page, XSS);
  const xss = await seeMessage(alice.page, 'alice', 'bob', XSS);
  check((await xss.locator('.text').textContent()) === XSS, 'the text is not shown as typed');
  check((await xss.locator('.text *').count()) === 0, 'the text became elements');
  await sleep(300); // an onerror would have fired by now
  check((await alice.page.locator('img').count()) === imagesBefore, 'an <img> appeared in alice\'s page');
  check(dialogs.length === 0, `dialogs opened: ${dialogs.join(' | ')}`);
  ok(`alice joined #design with the form, bob with "/join #design"; ${JSON.stringify(XSS)} is shown as text: no element, no dialog`);

  state.step = 'bob pastes an image';
  await bob.page.locator('#text').focus();
  await bob.page.evaluate((base64) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
    document.activeElement.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }, png.toString('base64'));
  await until(alice.page, 'alice did not see the image bob pasted',
    () => {
      const img = document.querySelector('#log li.msg.has-image[data-from="bob"] img');
      return img && img.complete && img.naturalWidth > 0;
    });
  check((await bob.page.locator('#text').inputValue()) === '', 'pasting an image put text in the box');
  ok('bob pasted an image into the message box (a paste event carrying a PNG file); alice sees it in #design');

  state.step = 'image errors';
  const big = Buffer.concat([png.subarray(0, 8), Buffer.alloc(3 * 1024 * 1024)]);
  await alice.page.locator('#file-input').setInputFiles({ name: 'huge.png', mimeType: 'image/png', buffer: big });
  await until(alice.page, 'no friendly notice for a 3 MB image',
    () => Array.from(document.querySelectorAll('#log .notice.tone-error')).some((e) => /huge\.png.*limit/.test(e.textContent)));
  await alice.page.locator('#file-input').setInputFiles({ name: 'fake.png', mimeType: 'image/png', buffer: Buffer.from('not a picture at all') });
  await until(alice.page, 'the server\'s image_invalid error is not shown',
    () => Array.from(document.querySelectorAll('#log .notice.tone-error')).some((e) => /images must be/.test(e.textContent)));
  const errors = await alice.page.locator('#log .notice.tone-error .notice-text').allTextContents();
  check((await bob.page.locator('#log li.msg.has-image').count()) === 1, 'bob received a refused image in #design');
  ok(`a 3 MB image is refused before sending and a fake PNG by the server, both as notices: ${JSON.stringify(errors)}`);

  state.step = 'alice leaves #design';
  await alice.page.locator('#leave-button').click();
  await until(alice.page, '#design is still in alice\'s room list',
    () => !document.querySelector('.conv-button[data-key="room:design"]'));
  check((await title(alice.page)) === '#lobby', `after leaving, alice is in ${await title(alice.page)}`);
  await until(bob.page, 'bob was not told that alice left',
    () => Array.from(document.querySelectorAll('#log .notice-text')).some((e) => e.textContent === 'alice left'));
  ok('alice left #design with the Leave button: gone from her list, back in #lobby; bob saw "alice left"');

  // carol's WebSocket goes through Playwright, so that the test can cut it.
  state.step = 'carol arrives on a phone';
  const sockets = [];
  const carol = await arrive(browser, 'carol', {
    viewport: PHONE,
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  }, {
    // (A reconnect adds `?after=...` to the URL.)
    beforeLoad: (page) => page.routeWebSocket(/\/ws(\?|$)/, (ws) => {
      sockets.push({ url: ws.url(), page: ws, server: ws.connectToServer() });
    }),
  });
  const carolImage = carol.page.locator('#log li.msg.has-image img').last();
  await carolImage.waitFor({ state: 'visible' });
  await until(carol.page, 'the image in #lobby\'s history did not load for carol',
    () => {
      const img = Array.from(document.querySelectorAll('#log li.msg.has-image img')).pop();
      return img && img.complete && img.naturalWidth > 0;
    });
  await seeMessage(carol.page, 'carol', 'bob', meanwhile);
  ok('carol (390×844, touch) sees #lobby\'s history: the messages and alice\'s image, rendered');

  state.step = 'carol uses the sidebar';
  check(!(await carol.page.locator('#sidebar').isVisible()), 'the sidebar shows on a phone before it is asked for');
  await carol.page.locator('#menu-button').click();
  await carol.page.locator('#sidebar').waitFor({ state: 'visible' });
  await carol.page.locator('#join-input').fill('design');
  await carol.page.locator('#join-input').press('Enter');
  await until(carol.page, 'carol did not switch to #design', () => document.querySelector('#conv-title')?.textContent === '#design');
  await carol.page.locator('#sidebar').waitFor({ state: 'hidden' });
  const carolXss = await seeMessage(carol.page, 'carol', 'bob', XSS);
  check((await carolXss.locator('.text *').count()) === 0, 'the HTML-like text in history became elements');
  await carol.page.locator('#menu-button').click();
  await carol.page.locator('.conv-button[data-key="room:lobby"]').click();
  await until(carol.page, 'carol did not switch back to #lobby', () => document.querySelector('#conv-title')?.textContent === '#lobby');
  await carol.page.locator('#sidebar').waitFor({ state: 'hidden' });
  ok('on the phone the sidebar is a toggle: carol joined #design (its history shows the HTML-like text as text) and went back to #lobby');

  state.step = 'carol chats from the phone';
  const fromPhone = 'Hello from my phone! That sunset is gorgeous.';
  await say(carol.page, fromPhone);
  await seeMessage(alice.page, 'alice', 'carol', fromPhone);
  const welcome = 'Welcome carol!';
  await say(alice.page, welcome);
  await seeMessage(carol.page, 'carol', 'alice', welcome);
  ok('carol → everyone and alice → carol in #lobby');

  state.step = 'phone layout';
  await carol.page.evaluate(() => document.activeElement?.blur());
  const layout = await carol.page.evaluate(() => {
    const box = (sel) => {
      const r = document.querySelector(sel).getBoundingClientRect();
      return { left: r.left, right: r.right, top: r.top, bottom: r.bottom };
    };
    const msgs = Array.from(document.querySelectorAll('#log li.msg .bubble')).map((b) => b.getBoundingClientRect().right);
    return {
      innerWidth,
      innerHeight,
      docScroll: document.documentElement.scrollWidth,
      bodyScroll: document.body.scrollWidth,
      logScroll: [document.querySelector('#log-wrap').scrollWidth, document.querySelector('#log-wrap').clientWidth],
      text: box('#text'),
      send: box('#send-button'),
      widest: Math.max(...msgs),
    };
  });
  check(layout.innerWidth === PHONE.width, `the phone's viewport is ${layout.innerWidth} wide`);
  check(layout.docScroll <= layout.innerWidth && layout.bodyScroll <= layout.innerWidth,
    `the page scrolls sideways: ${layout.docScroll}/${layout.bodyScroll} > ${layout.innerWidth}`);
  check(layout.logScroll[0] <= layout.logScroll[1], `the messages scroll sideways: ${layout.logScroll}`);
  check(layout.text.left >= 0 && layout.send.right <= layout.innerWidth && layout.text.bottom <= layout.innerHeight,
    `the message box is off screen: ${JSON.stringify(layout.text)}, send ${JSON.stringify(layout.send)}`);
  check(layout.widest <= layout.innerWidth, `a message reaches x=${layout.widest}, past ${layout.innerWidth}`);
  check(await carol.page.locator('#text').isVisible(), 'the message box is not visible');
  check(await message(carol.page, welcome).last().isVisible(), 'the latest message is not visible');
  await carol.page.screenshot({ path: phoneShot });
  ok(`phone layout: no sideways scroll (${layout.docScroll} ≤ ${layout.innerWidth}), box and latest message on screen; screenshot ${phoneShot}`);

  state.step = 'carol reconnects';
  check(sockets.length === 1, `carol's page opened ${sockets.length} WebSockets, not 1`);
  // As when the server goes away. (The server end is a WebSocket in the page, which may
  // close only with 1000 or 3000-4999.) Closing it closes the page's end too.
  await sockets[0].server.close({ code: 1000, reason: 'going away' });
  await until(carol.page, 'carol\'s page does not say it is reconnecting',
    () => document.querySelector('#status')?.dataset.state === 'reconnecting' &&
      /^Reconnecting in \d+ s$/.test(document.querySelector('#status-text')?.textContent ?? ''));
  const reconnecting = (await carol.page.locator('#status-text').textContent()).trim();
  await until(carol.page, 'carol\'s page did not come back online',
    () => document.querySelector('#status')?.dataset.state === 'online');
  await until(carol.page, 'carol did not get her nickname back',
    () => document.querySelector('#me-nick')?.textContent === 'carol');
  check(sockets.length === 2, `carol's page opened ${sockets.length} WebSockets in all, not 2`);
  const after = new URL(sockets[1].url).searchParams.get('after') ?? '';
  check(/^(design:\d+,lobby:\d+|lobby:\d+,design:\d+)$/.test(after),
    `carol's page reconnected with after=${JSON.stringify(after)}, not the last id in #design and #lobby`);
  const rooms = await carol.page.locator('#room-list .conv-button').evaluateAll((bs) => bs.map((b) => b.dataset.key));
  check(JSON.stringify(rooms) === JSON.stringify(['room:design', 'room:lobby']), `carol's rooms are ${rooms}`);
  await carol.page.locator('#menu-button').click();
  await carol.page.locator('.conv-button[data-key="room:design"]').click();
  const back = 'Back in #design after a reconnect';
  await say(carol.page, back);
  await seeMessage(bob.page, 'bob', 'carol', back);
  await until(alice.page, 'alice did not see carol come back in #lobby',
    () => Array.from(document.querySelectorAll('#member-list .member-name')).some((e) => e.textContent === 'carol'));
  ok(`cut carol's connection: "${reconnecting}", then online as carol again (after=${after}), back in #design and #lobby (bob sees her message in #design)`);

  state.step = 'no page errors, no dialogs';
  check(pageErrors.length === 0, `the pages reported errors: ${pageErrors.join(' | ')}`);
  check(dialogs.length === 0, `dialogs opened: ${dialogs.join(' | ')}`);
  ok('no errors and no dialogs in any page');
}

await runMain(main, { pageUrl, overallTimeoutMs: OVERALL_TIMEOUT_MS });
