// Two browser pages chat with a terminal client and a netcat-style user in #lobby. The
// Rust test (tests/browser_chat.rs) has already connected `tess` (the terminal client,
// `loopchat client`) and `ned` (a raw TCP connection to the line port), and answers for
// them: when they see ann's greeting, tess and ned each say a line. This script is the
// two browser users, ann and ben:
//
//   1. both see tess and ned online;
//   2. ann greets everyone; ben sees it;
//   3. both pages see tess's and ned's answers;
//   4. ben sends an image (ann sees it rendered) and a last message, which the Rust test
//      waits for on the terminal and on the line port.
//
//   node tests/browser/together.mjs http://127.0.0.1:PORT OUTPUT_DIR
//
// Prints one line per check, exits 0 when all pass, 1 on a failure (2 for bad usage).
// Saves together.png to OUTPUT_DIR.

import { join } from 'node:path';
import { state, ok, check, launchChromium, parseArgs, runMain } from './launch.mjs';
import { watched, makePng, until, seeMessage, say, arrive } from './page.mjs';

const { pageUrl, outDir } = parseArgs('tests/browser/together.mjs');
watched.pageUrl = pageUrl;

/** What the Rust test makes tess and ned say; keep in step with tests/browser_chat.rs. */
const GREETING = 'Hello tess and ned, this is ann in a browser.';
const FROM_TESS = 'hi ann, tess here on the terminal client';
const FROM_NED = 'ned on netcat says hi';
const LAST = 'Got both of your messages, tess and ned.';

async function seesMember(page, who, nick) {
  await until(page, `${who} does not see ${nick} among the members`,
    (n) => Array.from(document.querySelectorAll('#member-list .member-name')).some((e) => e.textContent === n),
    nick);
}

async function main() {
  const browser = await launchChromium(outDir);
  const desktop = { viewport: { width: 1280, height: 800 } };

  state.step = 'ann and ben arrive';
  const ann = await arrive(browser, 'ann', desktop);
  const ben = await arrive(browser, 'ben', desktop);
  for (const [who, page] of [['ann', ann.page], ['ben', ben.page]]) {
    for (const nick of ['tess', 'ned', who === 'ann' ? 'ben' : 'ann']) await seesMember(page, who, nick);
  }
  ok('ann and ben both see tess (terminal client) and ned (line port) in #lobby');

  state.step = 'ann greets everyone';
  await say(ann.page, GREETING);
  await seeMessage(ben.page, 'ben', 'ann', GREETING);
  ok('ann → #lobby, ben sees it');

  state.step = 'tess and ned answer';
  for (const [who, page] of [['ann', ann.page], ['ben', ben.page]]) {
    await seeMessage(page, who, 'tess', FROM_TESS);
    await seeMessage(page, who, 'ned', FROM_NED);
  }
  ok('ann and ben both see the answers from tess (terminal) and ned (netcat)');

  state.step = 'ben sends an image and a last word';
  await ben.page.locator('#file-input').setInputFiles({ name: 'hills.png', mimeType: 'image/png', buffer: makePng() });
  await until(ann.page, 'ann did not see the image ben sent',
    () => {
      const img = document.querySelector('#log li.msg.has-image[data-from="ben"] img');
      return img && img.complete && img.naturalWidth > 0;
    });
  await say(ben.page, LAST);
  await seeMessage(ann.page, 'ann', 'ben', LAST);
  ok('ben sent an image (ann sees it rendered) and a last message');

  state.step = 'screenshot';
  const shot = join(outDir, 'together.png');
  await ann.page.evaluate(() => document.activeElement?.blur());
  await ann.page.screenshot({ path: shot });
  ok(`screenshot of ann's page: ${shot}`);

  state.step = 'no page errors, no dialogs';
  check(watched.errors.length === 0, `the pages reported errors: ${watched.errors.join(' | ')}`);
  check(watched.dialogs.length === 0, `dialogs opened: ${watched.dialogs.join(' | ')}`);
  ok('no errors and no dialogs in either page');
}

await runMain(main, { pageUrl, overallTimeoutMs: 300_000 });
