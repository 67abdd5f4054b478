// Chromium in a conference room, driven by tests/browser.rs (servers in a
// network namespace with only loopback):
//
//   SERVER     the uringcast under test, started with --auth-key KEY and
//              --admin-token ADMIN; it serves the /room demo page itself
//   KEY        the --auth-key (base64) this script signs participant JWTs with
//   ADMIN      the --admin-token
//   OUT        where screenshots go
//
// 1. Pages A, B and C join room "meet" (fake camera and microphone) and
//    each decodes the other two cameras (frames counted; a screenshot of a
//    remote tile is not flat); audio packets arrive.
// 2. A shares a screen (a canvas captureStream, added to its publish
//    transport with PATCH): B and C decode it; A stops it, B sees it go,
//    A's camera keeps playing.
// 3. D joins late and decodes A, B and C; C leaves and the others see it.
// 4. A's chat line (broadcast) and B's info (muted) reach the others.
// 5. An admin creates room "vip" with approval; an owner is in; a guest's
//    join is refused by the owner: the guest's page reports the reason.
//
// Prints `RESULT {json}`; exits non-zero on any failure. Every wait is bounded.

import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pw from 'playwright-core';
import { chromiumArgs } from './chromium.mjs';
import { decodePng, lumaStats } from './png.mjs';

const { chromium } = pw;
const SERVER = required('SERVER');
const KEY = Buffer.from(required('KEY'), 'base64');
const ADMIN = required('ADMIN');
const OUT = required('OUT');
const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';
const MIN_FRAMES = 30;

const ARGS = chromiumArgs(['--autoplay-policy=no-user-gesture-required']);

/** @param {string} name */
function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`room.mjs: ${name} is not set (run it through tests/browser.rs)`);
    process.exit(2);
  }
  return value.replace(/\/+$/, '');
}

const hardStop = setTimeout(() => {
  console.error('room.mjs: the whole run took over 100 s; giving up');
  process.exit(3);
}, 100_000);

const started = Date.now();
const log = (/** @type {string} */ msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
/** @type {string[]} */
const pageErrors = [];

/** @param {boolean} ok @param {string} what */
function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

/** An HS256 JWT for `claims` (plus exp), signed with KEY. @param {object} claims */
function jwt(claims) {
  const b64 = (/** @type {object} */ v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ ...claims, exp: Math.floor(Date.now() / 1000) + 600 })}`;
  return `${body}.${createHmac('sha256', KEY).update(body).digest('base64url')}`;
}

/** A page in a fresh context, on the room page. */
async function openRoom(browser, name, room, claims, autostart = true) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[349]/.test(m.text())) console.log(`  [${name} console] ${m.text()}`);
  });
  const token = jwt({ room, role: '*', sub: name, name: `User ${name}`, ...claims });
  const query = new URLSearchParams({ name: room, user: `User ${name}`, token });
  if (autostart) query.set('autostart', '');
  await page.goto(`${SERVER}/room?${query}`);
  return { name, context, page };
}

/** Frames (video) or packets (audio) per "participant/source" on a page. */
const frames = (/** @type {any} */ p) => p.page.evaluate(() => /** @type {any} */ (window).uringcastRoom.frames());

/** Waits until `page`'s counters for every key reach `min`. */
async function waitFrames(p, keys, min, timeout) {
  const end = Date.now() + timeout;
  let last = {};
  while (Date.now() < end) {
    last = await frames(p);
    if (keys.every((k) => (last[k] ?? 0) >= min)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${p.name}: ${keys.join(', ')} did not reach ${min} within ${timeout} ms: ${JSON.stringify(last)}`);
}

/** Waits until `page` logged an event matching `test` (a function source). */
async function waitEvent(p, name, test, timeout) {
  try {
    await p.page.waitForFunction(
      ([name, test]) => /** @type {any} */ (window).uringcastRoom.events.some((e) => e.name === name && new Function('e', `return (${test})(e)`)(e)),
      [name, test.toString()],
      { timeout, polling: 100 },
    );
  } catch {
    const events = await p.page.evaluate(() => /** @type {any} */ (window).uringcastRoom.events.map((e) => e.name));
    throw new Error(`${p.name}: no ${name} event within ${timeout} ms (saw ${events.join(', ')})`);
  }
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  const browser = await chromium.launch({ executablePath: EXECUTABLE, args: ARGS });
  const result = { chromium: browser.version() };
  try {
    // 1. Three participants, each decoding the other two.
    const pages = [];
    for (const name of ['A', 'B', 'C']) pages.push(await openRoom(browser, name, 'meet', {}));
    const [pa, pb, pc] = pages;
    const t0 = Date.now();
    const others = (/** @type {string} */ me) => ['A', 'B', 'C'].filter((n) => n !== me);
    for (const p of pages) {
      const got = await waitFrames(p, others(p.name).map((n) => `${n}/camera`), MIN_FRAMES, 20_000);
      const audio = await waitFrames(p, others(p.name).map((n) => `${n}/microphone`), 20, 10_000);
      log(`${p.name} decodes ${JSON.stringify(got)}; audio ${JSON.stringify(audio)}`);
    }
    result.three_ms = Date.now() - t0;
    const file = join(OUT, 'room-A.png');
    const png = await pa.page.screenshot({ path: file });
    const tile = await pa.page.locator('figure.tile[data-participant="B"] video').first().boundingBox();
    check(tile !== null, 'B has a tile on A');
    const luma = lumaStats(decodePng(png), /** @type {any} */ (tile), []);
    log(`A's tile of B: luma mean ${luma.mean.toFixed(1)} stddev ${luma.stddev.toFixed(1)}`);
    check(luma.pixels > 5_000 && luma.stddev > 8 && luma.mean > 20, `B's video on A is not flat (${JSON.stringify(luma)})`);
    result.screenshot = file;

    // 2. A shares a screen.
    await pa.page.evaluate(() => /** @type {any} */ (window).uringcastRoom.shareCanvas());
    for (const p of [pb, pc]) {
      const got = await waitFrames(p, ['A/screen'], 20, 15_000);
      log(`${p.name} decodes A's screen: ${got['A/screen']} frames`);
    }

    // A stops sharing (a renegotiation that drops a track): the others see
    // it go, and A's camera keeps playing through both renegotiations.
    await pa.page.evaluate(() => /** @type {any} */ (window).uringcastRoom.room.unpublish('screen'));
    await waitEvent(pb, 'trackUnpublished', (e) => e.detail.participant === 'A' && e.detail.track.source === 'screen', 5_000);
    const cameraBefore = (await frames(pb))['A/camera'] ?? 0;
    await new Promise((r) => setTimeout(r, 1500));
    const cameraAfter = (await frames(pb))['A/camera'] ?? 0;
    log(`A's camera on B: ${cameraBefore} → ${cameraAfter} frames after the screen stopped`);
    check(cameraAfter >= cameraBefore + 10, `A's camera goes on (${cameraBefore} → ${cameraAfter})`);
    const transports = await pa.page.evaluate(() => /** @type {any} */ (window).uringcastRoom.room.publishPc.connectionState);
    check(transports === 'connected', `one publish transport, renegotiated, still connected (${transports})`);

    // 3. D joins late; C leaves.
    const pd = await openRoom(browser, 'D', 'meet', {});
    for (const p of [pa, pb, pc]) await waitEvent(p, 'participantJoined', (e) => e.detail.participant.id === 'D', 5_000);
    const gotD = await waitFrames(pd, ['A/camera', 'B/camera', 'C/camera'], MIN_FRAMES, 20_000);
    log(`the late joiner D decodes ${JSON.stringify(gotD)}`);
    await pc.page.evaluate(() => /** @type {any} */ (window).uringcastRoom.room.leave());
    for (const p of [pa, pb, pd]) await waitEvent(p, 'participantLeft', (e) => e.detail.id === 'C', 3_000);
    log('everyone saw C leave');

    // 4. Chat and info.
    await pa.page.fill('#text', 'hello room');
    await pa.page.click('#say button');
    await pb.page.waitForFunction(() => /** @type {any} */ (window).uringcastRoom.chat.some((m) => m.from === 'A' && m.payload.text === 'hello room'), null, { timeout: 5_000 });
    await pb.page.evaluate(() => /** @type {any} */ (window).uringcastRoom.room.updateInfo({ name: 'User B', muted: true }));
    await waitEvent(pd, 'info', (e) => e.detail.participant === 'B' && e.detail.info.muted === true, 5_000);
    log('chat and info reached the others');

    // 5. Approval: the owner refuses a guest.
    const created = await fetch(`${SERVER}/v1/rooms`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'vip', approval: true }),
    });
    check(created.status === 201, `the admin API created the room (${created.status})`);
    const owner = await openRoom(browser, 'Host', 'vip', { owner: true }, false);
    await owner.page.click('#go');
    await owner.page.waitForFunction(() => /** @type {any} */ (window).uringcastRoom.room !== null, null, { timeout: 5_000 });
    const guest = await openRoom(browser, 'Guest', 'vip', {}, false);
    await guest.page.click('#go');
    await owner.page.waitForSelector('#requests .notice', { timeout: 5_000 });
    await owner.page.click('#requests .notice button:not(.primary)');
    await guest.page.waitForFunction(
      () => /** @type {any} */ (window).uringcastRoom.events.some((e) => e.name === 'joinFailed' && /rejected/.test(e.detail)),
      null,
      { timeout: 5_000 },
    );
    const shown = await guest.page.textContent('#error');
    check(/refused by the host/.test(shown ?? ''), `the guest's page says why (${shown})`);
    log(`the guest was refused: ${shown}`);
    result.approval = 'rejected';
    for (const p of [pa, pb, pd, owner, guest]) await p.context.close();
    result.page_errors = pageErrors;
    check(pageErrors.length === 0, `no page errors: ${pageErrors.join('; ')}`);
  } finally {
    await browser.close();
  }
  console.log(`RESULT ${JSON.stringify(result)}`);
}

main()
  .then(() => {
    clearTimeout(hardStop);
    process.exit(0);
  })
  .catch((e) => {
    console.error(`room.mjs: ${e.stack || e}`);
    process.exit(1);
  });
