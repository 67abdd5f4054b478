// Chromium over ICE-TCP, driven by tests/browser.rs, which blocks UDP to
// the media port in its network namespace before it runs this:
//
//   SERVER  the uringcast under test (plain HTTP on 127.0.0.1)
//
// A page publishes the fake camera and microphone with `publish()` from
// /uringcast.js, another (another browser context) watches with `watch()`.
// Both must connect over TCP (the selected candidate pair's local and
// remote candidates say "tcp") and the viewer must decode >= 60 frames and
// receive audio within 10 s. Prints one line `RESULT {json}`; exits
// non-zero on any failure. Every wait is bounded.

import pw from 'playwright-core';
import { chromiumArgs } from './chromium.mjs';

const { chromium } = pw;
const SERVER = (process.env.SERVER || '').replace(/\/+$/, '');
if (!SERVER) {
  console.error('tcp.mjs: SERVER is not set (run it through tests/browser.rs)');
  process.exit(2);
}
const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = chromiumArgs();

const hardStop = setTimeout(() => {
  console.error('tcp.mjs: over 60 s; giving up');
  process.exit(3);
}, 60_000);
const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/** The selected pair's protocols and the inbound media numbers of `session.pc`. */
async function transport(page) {
  return page.evaluate(async () => {
    const s = /** @type {any} */ (window).session;
    if (!s) return null;
    const report = await s.pc.getStats();
    const out = { local: null, remote: null, state: s.pc.connectionState, frames: 0, audio: 0, sent: 0 };
    report.forEach((x) => {
      if (x.type === 'transport' && x.selectedCandidatePairId) {
        const pair = report.get(x.selectedCandidatePairId);
        out.local = report.get(pair?.localCandidateId)?.protocol ?? null;
        out.remote = report.get(pair?.remoteCandidateId)?.protocol ?? null;
      }
      if (x.type === 'inbound-rtp' && x.kind === 'video') out.frames = x.framesDecoded ?? 0;
      if (x.type === 'inbound-rtp' && x.kind === 'audio') out.audio = x.packetsReceived ?? 0;
      if (x.type === 'outbound-rtp' && x.kind === 'video') out.sent = x.framesEncoded ?? 0;
    });
    return out;
  });
}

const browser = await chromium.launch({ executablePath: EXECUTABLE, args: ARGS });
const failures = [];
const check = (/** @type {boolean} */ ok, /** @type {string} */ what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};
try {
  const pages = [];
  for (const role of ['publisher', 'viewer']) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('pageerror', (e) => console.log(`[${role}] page error: ${e.message}`));
    await page.goto(`${SERVER}/`);
    await page.evaluate(async (server) => {
      /** @type {any} */ (window).uc = await import(`${server}/uringcast.js`);
    }, SERVER);
    pages.push(page);
  }
  const [publisher, viewer] = pages;
  const answerCandidates = await publisher.evaluate(async (server) => {
    const w = /** @type {any} */ (window);
    const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240 } });
    w.session = await w.uc.publish(`${server}/whip/tcp`, media, { codec: 'VP8' });
    const sdp = w.session.pc.remoteDescription?.sdp ?? '';
    return sdp.split('\r\n').filter((l) => l.startsWith('a=candidate'));
  }, SERVER);
  console.log(`answer candidates: ${JSON.stringify(answerCandidates)}`);
  check(answerCandidates.some((l) => / tcp .* typ host tcptype passive/.test(l)), 'the answer offers a passive TCP candidate');
  await viewer.evaluate(async (server) => {
    const w = /** @type {any} */ (window);
    w.session = await w.uc.watch(`${server}/whep/tcp`, { retries: 5 });
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    video.srcObject = w.session.stream;
    document.body.append(video);
  }, SERVER);

  let seen = { publisher: null, viewer: null };
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(200)) {
    seen = { publisher: await transport(publisher), viewer: await transport(viewer) };
    if (seen.viewer && seen.viewer.frames >= 60 && seen.viewer.audio > 0) break;
  }
  console.log(`seen: ${JSON.stringify(seen)}`);
  for (const role of ['publisher', 'viewer']) {
    const t = seen[role];
    check(t?.local === 'tcp' && t?.remote === 'tcp', `${role}: the selected pair is TCP (${t?.local}/${t?.remote})`);
  }
  check((seen.viewer?.frames ?? 0) >= 60, `the viewer decoded ${seen.viewer?.frames} frames over TCP`);
  check((seen.viewer?.audio ?? 0) > 0, 'the viewer received audio over TCP');
  for (const page of pages) await page.evaluate(() => /** @type {any} */ (window).session?.stop());
  console.log(`RESULT ${JSON.stringify({ chromium: browser.version(), ...seen, failures })}`);
} finally {
  await browser.close();
  clearTimeout(hardStop);
}
process.exit(failures.length === 0 ? 0 : 1);
