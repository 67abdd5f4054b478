// The watch page: WHEP into a <video>, with a small stats overlay.
// @ts-check

import { watch } from '/uringcast.js';
import {
  ROOM_PATTERN,
  endpoint,
  expose,
  formatMs,
  overlayText,
  params,
  setStatus,
  showError,
  syncUrl,
  validRoom,
  wireNav,
} from '/demo/ui.js';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const form = /** @type {HTMLFormElement} */ ($('form'));
const room = /** @type {HTMLInputElement} */ ($('room'));
const go = /** @type {HTMLButtonElement} */ ($('go'));
const video = /** @type {HTMLVideoElement} */ ($('video'));
const placeholder = $('placeholder');
const overlay = $('overlay');
const badge = $('badge');
const unmute = /** @type {HTMLButtonElement} */ ($('unmute'));
const status = $('status');
const error = $('error');

/** @type {import('/uringcast.js').WatchSession | null} */
let session = null;
/** @type {AbortController | null} */
let signaling = null;
/** @type {ReturnType<typeof setInterval> | undefined} */
let statsTimer;
let startedAt = 0;
/** @type {number | null} */
let firstFrameMs = null;
let lastFrames = 0;
let lastFrameAt = 0;
/** @typedef {'idle' | 'connecting' | 'waiting' | 'live' | 'error'} State */
/** @type {State} */
let state = 'idle';

wireNav();
room.pattern = ROOM_PATTERN;
room.value = params.get('room') ?? '';

/** @param {State} next @param {string} text */
function setState(next, text) {
  state = next;
  setStatus(status, next, text);
  const active = next === 'connecting' || next === 'waiting' || next === 'live';
  go.textContent = active ? 'Stop' : 'Watch';
  go.classList.toggle('primary', !active);
  room.disabled = active;
  badge.hidden = next !== 'live';
  badge.classList.add('live');
  expose({ state });
}

/** @param {boolean} gesture started by a click (sound may play) */
async function startWatching(gesture) {
  showError(error, null);
  const name = room.value.trim();
  if (!validRoom(name)) {
    showError(error, new Error('Room names are 1 to 64 characters of A-Z a-z 0-9 - _ .'));
    return;
  }
  syncUrl({ room: name });
  const controller = new AbortController();
  signaling = controller;
  startedAt = performance.now();
  firstFrameMs = null;
  lastFrames = 0;
  lastFrameAt = startedAt;
  expose({ startedAt, firstFrameMs, session: null, error: null });
  placeholder.hidden = false;
  placeholder.textContent = 'Connecting…';
  setState('connecting', `Connecting to room “${name}”…`);
  try {
    const s = await watch(endpoint('whep', name), {
      token: params.get('token') ?? undefined,
      signal: controller.signal,
      retries: 150,
      maxRetryDelay: 5000,
      onRetry: () => {
        placeholder.textContent = 'Nothing is published here yet';
        setState('waiting', `Waiting for someone to publish in “${name}”…`);
      },
    });
    if (signaling !== controller) {
      s.stop();
      return;
    }
    session = s;
    expose({ session: s });
    placeholder.textContent = 'Waiting for video…';
    video.srcObject = s.stream;
    video.muted = !gesture;
    await video.play().catch(() => {
      video.muted = true;
      return video.play().catch(() => {});
    });
    unmute.hidden = !video.muted;
    onFirstFrame(s);
    const follow = () => {
      if (session !== s) return;
      const c = s.pc.connectionState;
      if (c === 'connected') setState('live', `Watching “${name}”`);
      else if (c === 'disconnected') setState('connecting', 'Connection interrupted, reconnecting…');
      else if (c === 'failed') {
        stopWatching();
        setState('error', 'The connection failed');
      }
    };
    s.pc.addEventListener('connectionstatechange', follow);
    follow();
    statsTimer = setInterval(showStats, 1000);
  } catch (e) {
    if (controller.signal.aborted) return;
    signaling = null;
    setState('error', 'Could not watch');
    showError(error, e);
    placeholder.textContent = 'Not watching';
    expose({ error: String(e) });
  }
}

/** Records when the first video frame is shown. */
function onFirstFrame(/** @type {import('/uringcast.js').WatchSession} */ s) {
  const seen = () => {
    if (session !== s || firstFrameMs !== null) return;
    firstFrameMs = performance.now() - startedAt;
    placeholder.hidden = true;
    expose({ firstFrameMs });
  };
  if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(seen);
  else /** @type {HTMLVideoElement} */ (video).addEventListener('playing', seen, { once: true });
}

async function showStats() {
  const s = session;
  if (!s) return;
  const stats = await s.stats();
  if (session !== s) return;
  const frames = stats.video?.frames ?? 0;
  const now = performance.now();
  if (frames > lastFrames) {
    lastFrames = frames;
    lastFrameAt = now;
    if (state === 'waiting') setState('live', `Watching “${room.value}”`);
  } else if (stats.video && state === 'live' && firstFrameMs !== null && now - lastFrameAt > 3000) {
    setState('waiting', 'No video from the publisher right now…');
  }
  overlay.hidden = false;
  overlay.textContent = overlayText(stats, firstFrameMs === null ? [] : [`first frame ${formatMs(firstFrameMs)}`]);
  expose({ stats });
}

async function stopWatching() {
  signaling?.abort();
  signaling = null;
  const s = session;
  session = null;
  clearInterval(statsTimer);
  video.srcObject = null;
  overlay.hidden = true;
  unmute.hidden = true;
  placeholder.hidden = false;
  placeholder.textContent = 'Not watching';
  expose({ session: null });
  setState('idle', 'Not watching');
  await s?.stop();
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (state === 'connecting' || state === 'waiting' || state === 'live') stopWatching();
  else startWatching(true);
});

unmute.addEventListener('click', () => {
  video.muted = false;
  video.play().catch(() => {});
  unmute.hidden = true;
});

addEventListener('pagehide', () => session?.stop());

if (!globalThis.RTCPeerConnection) {
  placeholder.textContent = 'This browser cannot receive WebRTC media';
  go.disabled = true;
} else if (room.value && validRoom(room.value)) {
  startWatching(false);
}
