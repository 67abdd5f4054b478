// Chromium end to end, driven by tests/browser.rs (which starts the servers
// inside a network namespace with only loopback):
//
//   SERVER  the uringcast under test (WHIP/WHEP, /uringcast.js)
//   PAGES   a second uringcast on another port: a different origin that
//           serves the demo pages, pointed at SERVER with ?server=
//   OUT     where screenshots go
//   EXTRA_ARGS  more Chromium flags, space-separated (optional)
//
// 1. uringcast.js imported cross-origin: problem details become errors,
//    409 without Retry-After is not retried, a viewer that comes first
//    retries its 409 until a (trickling) publisher arrives, stop() DELETEs.
// 2. Per video codec the README offers (VP8, H264, VP9 and AV1, each
//    required: one this Chromium cannot send fails the run, never a skip):
//    the publish page (fake camera and microphone) and, in
//    another browser context, the watch page, both cross-origin. Within 6 s
//    of the watch starting: >= 60 frames decoded, audio received, the codec
//    negotiated is the one chosen; a screenshot whose video area is not black.
// 3. Same-origin: the pages as the server itself serves them.
//
// Prints one line `RESULT {json}`; exits non-zero on any failure. Every wait
// is bounded.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pw from 'playwright-core';
import { chromiumArgs } from './chromium.mjs';
import { decodePng, lumaStats } from './png.mjs';

const { chromium } = pw;
const SERVER = required('SERVER');
const PAGES = required('PAGES');
const OUT = required('OUT');
const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';
// The README promises all four; CODECS narrows a manual run (tests/browser.rs
// never sets it, and checks that all four ran).
const WANTED = (process.env.CODECS || 'VP8,H264,VP9,AV1').split(',');
const WATCH_WINDOW_MS = 6000;
const MIN_FRAMES = 60;

const ARGS = chromiumArgs();

/** @param {string} name */
function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`e2e.mjs: ${name} is not set (run it through tests/browser.rs)`);
    process.exit(2);
  }
  return value.replace(/\/+$/, '');
}

// A hard stop, whatever hangs.
const hardStop = setTimeout(() => {
  console.error('e2e.mjs: the whole run took over 100 s; giving up');
  process.exit(3);
}, 100_000);

const started = Date.now();
const log = (/** @type {string} */ msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
/** @type {string[]} */
const pageErrors = [];
const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/** @param {boolean} ok @param {string} what */
function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

/** A page in a fresh context (its own cookies, devices, everything). */
async function newPage(browser, name, viewport = { width: 1280, height: 720 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[49]/.test(m.text())) console.log(`  [${name} console] ${m.text()}`);
  });
  return { context, page };
}

async function serverStats() {
  const response = await fetch(`${SERVER}/v1/stats`, { signal: AbortSignal.timeout(5000) });
  return response.json();
}

/** The inbound (or outbound) RTP numbers of a page's `uringcastDemo.session`, straight from getStats(). */
async function rtpNumbers(page) {
  return page.evaluate(async () => {
    const s = /** @type {any} */ (window).uringcastDemo?.session;
    if (!s) return null;
    const report = await s.pc.getStats();
    const out = { frames: 0, framesSent: 0, audioPackets: 0, audioSent: 0, videoPackets: 0, codec: null, sendCodec: null,
      width: 0, height: 0, encoder: null, keyFrames: 0, nacks: 0, plis: 0 };
    report.forEach((x) => {
      if (x.type === 'inbound-rtp' && x.kind === 'video') {
        out.frames = x.framesDecoded ?? 0;
        out.videoPackets = x.packetsReceived ?? 0;
        out.width = x.frameWidth ?? 0;
        out.height = x.frameHeight ?? 0;
        out.keyFrames = x.keyFramesDecoded ?? 0;
        out.nacks = x.nackCount ?? 0;
        out.plis = x.pliCount ?? 0;
        out.codec = report.get(x.codecId)?.mimeType ?? null;
      }
      if (x.type === 'inbound-rtp' && x.kind === 'audio') out.audioPackets = x.packetsReceived ?? 0;
      if (x.type === 'outbound-rtp' && x.kind === 'video') {
        out.framesSent = x.framesEncoded ?? 0;
        out.encoder = x.encoderImplementation ?? null;
        out.sendCodec = report.get(x.codecId)?.mimeType ?? null;
      }
      if (x.type === 'outbound-rtp' && x.kind === 'audio') out.audioSent = x.packetsSent ?? 0;
    });
    return out;
  });
}

/** Waits (bounded) for a condition on the page's exposed demo state. */
async function waitDemo(page, predicate, arg, timeout, what) {
  try {
    await page.waitForFunction(predicate, arg, { timeout, polling: 50 });
  } catch (e) {
    const state = await page.evaluate(() => {
      const d = /** @type {any} */ (window).uringcastDemo ?? {};
      return { state: d.state, error: d.error, status: document.getElementById('status')?.textContent };
    });
    throw new Error(`${what}: not within ${timeout} ms (${JSON.stringify(state)})`);
  }
}

/** Screenshot of the page; mean and deviation of the video area's luma, overlays left out. */
async function screenshotVideo(page, file) {
  const png = await page.screenshot({ path: file });
  const box = await page.locator('video').boundingBox();
  check(box !== null, 'the video element is on screen');
  const holes = [];
  for (const selector of ['#overlay', '#badge', '#unmute', '#placeholder']) {
    const el = page.locator(selector);
    if (await el.isVisible()) {
      const b = await el.boundingBox();
      if (b) holes.push(b);
    }
  }
  return lumaStats(decodePng(png), /** @type {any} */ (box), holes);
}

// ---- 1. the client library, imported from another origin ------------------

async function clientApi(browser) {
  const viewer = await newPage(browser, 'api-viewer');
  const publisher = await newPage(browser, 'api-publisher');
  for (const { page } of [viewer, publisher]) {
    await page.goto(`${PAGES}/watch`); // a page of the other origin, idle
    await page.evaluate(async (server) => {
      /** @type {any} */ (window).uc = await import(`${server}/uringcast.js`);
    }, SERVER);
  }

  const errors = await viewer.page.evaluate(async (server) => {
    const { uc } = /** @type {any} */ (window);
    const caught = async (/** @type {() => Promise<unknown>} */ f) => {
      try {
        await f();
        return null;
      } catch (e) {
        return { name: e.name, status: e.status, message: e.message, retryAfter: e.retryAfter, isError: e instanceof Error };
      }
    };
    return {
      badRoom: await caught(() => uc.watch(`${server}/whep/no%20spaces`)),
      empty: await caught(() => uc.watch(`${server}/whep/api-empty`, { retries: 0 })),
      nowhere: await caught(() => uc.watch('http://127.0.0.1:8/whep/x', { retries: 0, requestTimeout: 3000 })),
    };
  }, SERVER);
  log(`errors: ${JSON.stringify(errors)}`);
  check(errors.badRoom?.isError && errors.badRoom.status === 400 && /room names/.test(errors.badRoom.message),
    'a 400 becomes an Error whose message is the problem detail');
  check(errors.empty?.status === 409 && /nothing is published/.test(errors.empty.message) && errors.empty.retryAfter > 0,
    'a 409 with retries: 0 is an Error with the detail and retryAfter');
  check(errors.nowhere?.status === 0 && /cannot reach/.test(errors.nowhere.message), 'a network failure is an Error with status 0');

  // The viewer comes first: 409 + Retry-After, retried until the publisher is there.
  const t0 = Date.now();
  await viewer.page.evaluate((server) => {
    const w = /** @type {any} */ (window);
    w.retries = [];
    w.watching = w.uc
      .watch(`${server}/whep/api`, { retries: 5, onRetry: (/** @type {any} */ r) => w.retries.push(r.delay) })
      .then((/** @type {any} */ s) => {
        w.uringcastDemo = { session: s };
        return { ok: true, location: s.location };
      })
      .catch((/** @type {any} */ e) => ({ ok: false, message: e.message }));
  }, SERVER);
  await sleep(500);
  const published = await publisher.page.evaluate(async (server) => {
    const w = /** @type {any} */ (window);
    const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240 } });
    const s = await w.uc.publish(`${server}/whip/api`, media, { trickle: true, codec: 'VP8' });
    w.uringcastDemo = { session: s };
    let second = null;
    try {
      await w.uc.publish(`${server}/whip/api`, media, { retries: 3 });
    } catch (e) {
      second = { status: e.status, message: e.message };
    }
    return { location: s.location, etag: s.etag, second };
  }, SERVER);
  const watched = await viewer.page.evaluate(() => /** @type {any} */ (window).watching);
  const retries = await viewer.page.evaluate(() => /** @type {any} */ (window).retries);
  log(`409 retry: watch resolved after ${Date.now() - t0} ms, retries ${JSON.stringify(retries)}, ${JSON.stringify(watched)}`);
  check(watched.ok, `the viewer that came first got in: ${watched.message}`);
  check(retries.length >= 1 && retries[0] >= 1000, 'the viewer waited as Retry-After said');
  check(published.second?.status === 409 && /already has a publisher/.test(published.second.message),
    'a 409 without Retry-After (room taken) fails at once with the detail');
  check(/\/session\//.test(published.location) && published.location.startsWith(SERVER), 'Location is absolute');

  let media = null;
  for (const deadline = Date.now() + 8000; Date.now() < deadline; await sleep(100)) {
    media = await rtpNumbers(viewer.page);
    if (media && media.frames >= 10 && media.audioPackets > 0) break;
  }
  log(`api media: ${JSON.stringify(media)}`);
  check(media !== null && media.frames >= 10 && media.audioPackets > 0, 'media flows to the viewer that retried');

  const ended = await publisher.page.evaluate(async () => {
    const s = /** @type {any} */ (window).uringcastDemo.session;
    const trickle = s.trickle();
    const first = await s.stop();
    const again = await s.stop(); // idempotent: the same promise
    const deleteAgain = await fetch(s.location, { method: 'DELETE' });
    return { trickle, first, again, secondDelete: deleteAgain.status };
  });
  const viewerEnded = await viewer.page.evaluate(() => /** @type {any} */ (window).uringcastDemo.session.stop());
  log(`api stop: ${JSON.stringify(ended)}, viewer ${viewerEnded}`);
  check(ended.first === true && ended.again === true && ended.secondDelete === 404, 'stop() DELETEs once; a second DELETE is 404');
  check(viewerEnded === true, 'the viewer stop() DELETEs');
  check(['unused', 'unsupported', 'supported'].includes(ended.trickle), `trickle ended well (${ended.trickle})`);
  await viewer.context.close();
  await publisher.context.close();
  return {
    retry_wait_ms: retries[0],
    watch_resolved_ms: Date.now() - t0,
    trickle: ended.trickle,
    errors: { bad_room: errors.badRoom.message, empty: errors.empty.message },
  };
}

// ---- 2. one codec through the demo pages ----------------------------------

async function codecRun(browser, codec, { pagesBase, server, shot }) {
  const room = `e2e-${codec.toLowerCase()}-${Date.now() % 100000}`;
  const query = (/** @type {Record<string, string>} */ extra) =>
    new URLSearchParams({ ...(server ? { server } : {}), room, ...extra }).toString();

  const pub = await newPage(browser, `publish-${codec}`);
  await pub.page.goto(`${pagesBase}/publish?${query({ codec, res: '360' })}`);
  await waitDemo(pub.page, () => /** @type {any} */ (window).uringcastDemo?.ready, null, 10_000, 'the camera opens');
  const tracks = await pub.page.evaluate(() => /** @type {any} */ (window).uringcastDemo.stream.getTracks().map((t) => t.kind).sort());
  check(tracks.join() === 'audio,video', `the publish page has a camera and a microphone (${tracks})`);
  const chosen = await pub.page.locator('#codec').inputValue();
  check(chosen === codec, `the codec picker selected ${codec} (${chosen})`);
  const publishAt = Date.now();
  await pub.page.click('#start');
  await waitDemo(pub.page, () => /** @type {any} */ (window).uringcastDemo?.state === 'live', null, 10_000, `${codec}: publishing goes live`);
  const liveMs = Date.now() - publishAt;

  const view = await newPage(browser, `watch-${codec}`, { width: 1280, height: 860 });
  await view.page.goto(`${pagesBase}/watch?${query({})}`); // starts watching at once
  await waitDemo(view.page, () => /** @type {any} */ (window).uringcastDemo?.startedAt > 0, null, 5000, 'the watch page starts');

  let media = null;
  let elapsed = 0;
  /** @type {number | null} */
  let reached = null;
  while (elapsed < WATCH_WINDOW_MS) {
    await sleep(100);
    const sample = await view.page.evaluate(() => performance.now() - /** @type {any} */ (window).uringcastDemo.startedAt);
    const numbers = await rtpNumbers(view.page);
    elapsed = sample;
    if (elapsed > WATCH_WINDOW_MS + 150) break; // a sample taken late does not count
    if (numbers) media = numbers;
    if (reached === null && media && media.frames >= MIN_FRAMES && media.audioPackets > 0) reached = elapsed;
  }
  const firstFrameMs = await view.page.evaluate(() => /** @type {any} */ (window).uringcastDemo.firstFrameMs);
  const pubMedia = await rtpNumbers(pub.page);
  const stats = await serverStats();
  log(`${codec}: ${JSON.stringify({ media, pubMedia, firstFrameMs, reached, liveMs })}`);

  check(media !== null, `${codec}: the viewer has a session`);
  check(media.codec?.toLowerCase() === `video/${codec.toLowerCase()}`, `${codec}: the viewer decodes ${codec} (got ${media.codec})`);
  check(pubMedia?.sendCodec?.toLowerCase() === `video/${codec.toLowerCase()}`, `${codec}: the publisher sends ${codec} (got ${pubMedia?.sendCodec})`);
  check(media.frames >= MIN_FRAMES, `${codec}: >= ${MIN_FRAMES} frames decoded within ${WATCH_WINDOW_MS} ms (got ${media.frames}; server drops ${JSON.stringify(drops(stats))})`);
  check(media.audioPackets > 0, `${codec}: audio packets received`);
  check(firstFrameMs !== null, `${codec}: the watch page saw a first frame`);

  // The overlay refreshes once a second: wait for one with numbers in it.
  await waitDemo(view.page, () => /fps/.test(document.getElementById('overlay')?.textContent ?? '') && /first frame/.test(document.getElementById('overlay')?.textContent ?? ''), null, 3000, `${codec}: the stats overlay shows`);
  const overlay = await view.page.locator('#overlay').textContent();
  const file = join(OUT, shot);
  const luma = await screenshotVideo(view.page, file);
  log(`${codec}: screenshot ${file}, video luma mean ${luma.mean.toFixed(1)} stddev ${luma.stddev.toFixed(1)}; overlay ${JSON.stringify(overlay)}`);
  check(luma.pixels > 10_000 && luma.stddev > 8 && luma.mean > 20, `${codec}: the video in the screenshot is not black (${JSON.stringify(luma)})`);

  // Stop both through the pages' buttons: DELETE on each session.
  await view.page.click('#go');
  await waitDemo(view.page, () => /** @type {any} */ (window).uringcastDemo?.state === 'idle', null, 5000, `${codec}: watching stops`);
  await pub.page.click('#start');
  await waitDemo(pub.page, () => /** @type {any} */ (window).uringcastDemo?.state === 'idle', null, 5000, `${codec}: publishing stops`);
  await view.context.close();
  await pub.context.close();

  return {
    codec,
    frames_decoded_6s: media.frames,
    frames_sent: pubMedia.framesSent,
    ms_to_60_frames: reached === null ? null : Math.round(reached),
    first_frame_ms: Math.round(firstFrameMs),
    publish_live_ms: liveMs,
    audio_packets: media.audioPackets,
    resolution: `${media.width}x${media.height}`,
    encoder: pubMedia.encoder,
    keyframes: media.keyFrames,
    plis: media.plis,
    nacks: media.nacks,
    luma_mean: Math.round(luma.mean),
    luma_stddev: Math.round(luma.stddev * 10) / 10,
    overlay,
    screenshot: file,
  };
}

/** The drop counters of every shard, summed (only those that are not zero). */
function drops(stats) {
  const out = {};
  for (const shard of stats.shards ?? []) {
    for (const [k, v] of Object.entries(shard)) {
      if (k.startsWith('drop_') && typeof v === 'number' && v > 0) out[k] = (out[k] ?? 0) + v;
    }
  }
  return out;
}

// ---- main -------------------------------------------------------------------

async function main() {
  mkdirSync(OUT, { recursive: true });
  const browser = await chromium.launch({ executablePath: EXECUTABLE, args: ARGS, timeout: 30_000 });
  const result = { chromium: browser.version(), codecs: [], offered: [] };
  try {
    const probe = await newPage(browser, 'probe');
    await probe.page.goto(`${PAGES}/publish?server=${encodeURIComponent(SERVER)}`);
    result.offered = await probe.page.evaluate(() => RTCRtpSender.getCapabilities('video').codecs.map((c) => c.mimeType.split('/')[1]));
    await probe.context.close();
    log(`Chromium ${result.chromium} can send: ${[...new Set(result.offered)].join(' ')}`);

    result.api = await clientApi(browser);

    for (const codec of WANTED) {
      check(result.offered.includes(codec), `Chromium ${result.chromium} can send ${codec} (it offers ${result.offered})`);
      result.codecs.push(
        await codecRun(browser, codec, { pagesBase: PAGES, server: SERVER, shot: `watch-${codec.toLowerCase()}.png` }),
      );
    }

    // 3. The pages as the server itself serves them (same origin), with the
    // landing page listing the live room.
    const same = await codecRun(browser, 'VP8', { pagesBase: SERVER, server: null, shot: 'watch-same-origin.png' });
    result.same_origin = { frames_decoded_6s: same.frames_decoded_6s, first_frame_ms: same.first_frame_ms, screenshot: same.screenshot };
    result.pages = await pageShots(browser);

    check(pageErrors.length === 0, `no uncaught errors in the pages: ${pageErrors.join(' | ')}`);
    // Every session was ended with DELETE (10 s: the machine may be busy;
    // a session left behind would only go at the 15 s ICE timeout).
    let stats = null;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(100)) {
      stats = await serverStats();
      if (stats.sessions === 0) break;
    }
    result.server = { sessions: stats.sessions, drops: drops(stats) };
    check(stats.sessions === 0, `every session ended (sessions: ${stats.sessions}, rooms: ${JSON.stringify(stats.rooms)})`);
  } finally {
    await browser.close().catch(() => {});
  }
  writeFileSync(join(OUT, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`RESULT ${JSON.stringify(result)}`);
}

/** Screenshots of the landing and publish pages, for a person to look at. */
async function pageShots(browser) {
  const room = 'lobby';
  const pub = await newPage(browser, 'shot-publish', { width: 1280, height: 860 });
  await pub.page.goto(`${SERVER}/publish?room=${room}&codec=VP8&res=360`);
  await waitDemo(pub.page, () => /** @type {any} */ (window).uringcastDemo?.ready, null, 10_000, 'the camera opens');
  await pub.page.click('#start');
  await waitDemo(pub.page, () => /** @type {any} */ (window).uringcastDemo?.state === 'live', null, 10_000, 'lobby goes live');
  await waitDemo(pub.page, () => /kb\/s video/.test(document.getElementById('overlay')?.textContent ?? ''), null, 4000, 'publish overlay');
  const level = await pub.page.evaluate(() => /** @type {any} */ (window).uringcastDemo.level);
  await pub.page.screenshot({ path: join(OUT, 'publish.png') });

  const home = await newPage(browser, 'shot-home', { width: 1280, height: 860 });
  await home.page.goto(`${SERVER}/`);
  await home.page.locator('#rooms li a', { hasText: room }).waitFor({ timeout: 5000 });
  await home.page.screenshot({ path: join(OUT, 'home.png') });

  await pub.page.click('#start');
  await waitDemo(pub.page, () => /** @type {any} */ (window).uringcastDemo?.state === 'idle', null, 5000, 'lobby stops');
  await pub.context.close();
  await home.context.close();
  return { publish: join(OUT, 'publish.png'), home: join(OUT, 'home.png'), publish_level: level };
}

main()
  .then(() => {
    clearTimeout(hardStop);
    log('done');
  })
  .catch((e) => {
    console.error(`e2e.mjs: ${e.stack || e}`);
    if (pageErrors.length) console.error(`page errors: ${pageErrors.join(' | ')}`);
    process.exit(1);
  });
