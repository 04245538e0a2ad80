// What the browser scripts share: how Debian's Chromium is launched (the exact flags, a
// fresh profile, bounded timeouts), the `ok N - ...` / `FAIL step: why` reporting, and
// the run's lifetime: an overall timeout, signals, and cleanup that always closes the
// browser and removes its profile.
//
//   import { state, ok, check, launchChromium, parseArgs, runMain } from './launch.mjs';
//   const { pageUrl, outDir } = parseArgs('tests/browser/x.mjs');
//   await runMain(async () => { state.step = '...'; ... }, { pageUrl });

import { chromium } from 'playwright-core';
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const CHROMIUM = '/usr/bin/chromium';
// The browser's whole command line is these flags, the fresh profile and the pipe
// Playwright drives it through: `ignoreDefaultArgs: true` drops Playwright's own.
// (Debian's /usr/bin/chromium wrapper adds its /etc/chromium.d defaults in front.)
export const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
// Generous: a step waits for a condition, and a passing step never waits this long; the
// tests must pass on a loaded 2-core machine.
export const STEP_TIMEOUT_MS = 60_000;

// What cleanup needs, filled in as the run goes.
export const state = { profile: null, browser: null, step: 'start', passed: 0 };

export function ok(what) {
  state.passed += 1;
  console.log(`ok ${state.passed} - ${what}`);
}

export function check(condition, why) {
  if (!condition) throw new Error(why);
}

export function sleep(ms) {
  return new Promise((res) => setTimeout(res, ms).unref());
}

/** `node SCRIPT http://HOST:PORT OUTPUT_DIR` (or https://): the base URL, the page's
 * URL and the output folder; exits 2 on bad usage. */
export function parseArgs(script) {
  const [baseArg, outArg] = process.argv.slice(2);
  if (!baseArg || !outArg || process.argv.length > 4) {
    console.error(`usage: node ${script} http://HOST:PORT OUTPUT_DIR`);
    process.exit(2);
  }
  let base;
  try {
    base = new URL(baseArg);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('not http: or https:');
  } catch (e) {
    console.error(`FAIL arguments: ${JSON.stringify(baseArg)} is not an http:// or https:// URL (${e.message})`);
    process.exit(2);
  }
  return { base, pageUrl: new URL('/', base).href, outDir: resolve(outArg) };
}

/** Launches Chromium with FLAGS and a fresh profile (removed by cleanup), after making
 * `outDir`; reports it as a check. */
export async function launchChromium(outDir) {
  state.step = 'launch Chromium';
  await mkdir(outDir, { recursive: true });
  state.profile = await mkdtemp(join(tmpdir(), 'loopchat-chromium-'));
  const args = [...FLAGS, `--user-data-dir=${state.profile}`, '--remote-debugging-pipe'];
  // A server with a certificate made by the test (LOOPCHAT_TEST_TLS_CERT, its PEM):
  // Chromium trusts that certificate's key and no other, as it would a certificate
  // from a CA it trusts. (Node's own fetch trusts the test CA through
  // NODE_EXTRA_CA_CERTS, set by the test.)
  if (process.env.LOOPCHAT_TEST_TLS_CERT) {
    const pem = await readFile(process.env.LOOPCHAT_TEST_TLS_CERT, 'utf8');
    const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
    const hash = createHash('sha256').update(spki).digest('base64');
    args.push(`--ignore-certificate-errors-spki-list=${hash}`);
  }
  state.browser = await chromium.launch({
    executablePath: CHROMIUM,
    ignoreDefaultArgs: true,
    args,
    timeout: STEP_TIMEOUT_MS,
    // Signals are handled below, so the profile is removed too.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  ok(`launched Chromium ${state.browser.version()} (${CHROMIUM} ${args.join(' ')})`);
  return state.browser;
}

/** Collects the page's uncaught errors and console errors into `errors`. */
export function watchErrors(page, errors, label = '') {
  const prefix = label ? `${label}: ` : '';
  page.on('pageerror', (e) => errors.push(`${prefix}${e.message}`));
  page.on('console', (m) => {
    // The browser asks for /favicon.ico on its own; the server may rightly answer 404.
    if (m.type() === 'error' && !m.location().url?.endsWith('/favicon.ico')) {
      errors.push(`${prefix}console: ${m.text()} (${m.location().url})`);
    }
  });
}

// Closes the browser (bounded) and removes the profile; never throws.
async function cleanup() {
  const browser = state.browser;
  state.browser = null;
  if (browser) {
    const closed = browser.close().then(() => true, () => false);
    const inTime = await Promise.race([closed, sleep(10_000).then(() => false)]);
    if (!inTime) console.error('warning: Chromium did not close in 10 s; it is killed on exit');
  }
  if (state.profile) {
    await rm(state.profile, { recursive: true, force: true, maxRetries: 5 }).catch((e) =>
      console.error(`warning: could not remove ${state.profile}: ${e.message}`),
    );
    state.profile = null;
  }
}

let finishing = false;
async function finish(code) {
  if (finishing) return;
  finishing = true;
  await cleanup();
  // Playwright's exit hook kills any browser process still alive.
  process.exit(code);
}

/** Runs `main` within `overallTimeoutMs`; prints PASS and exits 0, or prints
 * `FAIL <step>: <why>` and exits 1. Cleans up whatever happens, signals included. */
export async function runMain(main, { pageUrl, overallTimeoutMs = 60_000 }) {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      console.error(`FAIL ${state.step}: interrupted by ${signal}`);
      finish(1);
    });
  }

  let timer;
  const overall = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`overall timeout: not done within ${overallTimeoutMs / 1000} s`)),
      overallTimeoutMs,
    );
  });
  const run = main();
  run.catch(() => {}); // reported through the race below

  try {
    await Promise.race([run, overall]);
    console.log(`PASS: all ${state.passed} browser checks passed against ${pageUrl}`);
    clearTimeout(timer);
    await finish(0);
  } catch (e) {
    clearTimeout(timer);
    if (!finishing) {
      // (When a signal is already finishing the run, this is just the aborted step.)
      const why = String(e?.message ?? e).replace(/\x1b\[[0-9;]*m/g, ''); // Playwright's colours
      console.error(`FAIL ${state.step}: ${why}`);
      await finish(1);
    }
  }
}
