// The publish page: pick devices, see and hear them, publish with WHIP.
// @ts-check

import { publish, videoCodecs } from '/uringcast.js';
import {
  ROOM_PATTERN,
  endpoint,
  expose,
  initialRoom,
  overlayText,
  pageLink,
  params,
  setStatus,
  showError,
  syncUrl,
  validRoom,
  wireNav,
} from '/demo/ui.js';

/** @template {HTMLElement} T @param {string} id @returns {T} */
const $ = (id) => /** @type {T} */ (document.getElementById(id));

const form = /** @type {HTMLFormElement} */ ($('form'));
const room = /** @type {HTMLInputElement} */ ($('room'));
const camera = /** @type {HTMLSelectElement} */ ($('camera'));
const microphone = /** @type {HTMLSelectElement} */ ($('microphone'));
const codec = /** @type {HTMLSelectElement} */ ($('codec'));
const resolution = /** @type {HTMLSelectElement} */ ($('resolution'));
const start = /** @type {HTMLButtonElement} */ ($('start'));
const preview = /** @type {HTMLVideoElement} */ ($('preview'));
const placeholder = $('placeholder');
const overlay = $('overlay');
const badge = $('badge');
const level = $('level');
const status = $('status');
const error = $('error');
const share = $('share');
const watchLink = /** @type {HTMLAnchorElement} */ ($('watch-link'));

const SIZES = /** @type {Record<string, [number, number]>} */ ({
  240: [426, 240],
  360: [640, 360],
  720: [1280, 720],
  1080: [1920, 1080],
});

/** What goes out: the chosen camera and microphone tracks. */
const stream = new MediaStream();
/** @type {import('/uringcast.js').Session | null} */
let session = null;
/** @type {'idle' | 'connecting' | 'live' | 'error'} */
let state = 'idle';
/** @type {ReturnType<typeof setInterval> | undefined} */
let statsTimer;

wireNav();
room.pattern = ROOM_PATTERN;
room.value = initialRoom();
for (const name of videoCodecs()) codec.add(new Option(name, name));
const wanted = params.get('codec')?.toUpperCase();
if (wanted && [...codec.options].some((o) => o.value === wanted)) codec.value = wanted;
const res = params.get('res');
if (res && SIZES[res]) resolution.value = res;
expose({ state, stream, codecs: videoCodecs(), session: null, error: null });

/** @param {'idle' | 'connecting' | 'live' | 'error'} next @param {string} text */
function setState(next, text) {
  state = next;
  setStatus(status, next, text);
  const busy = next === 'connecting' || next === 'live';
  for (const el of [room, codec]) el.disabled = busy;
  start.textContent = busy ? 'Stop publishing' : 'Start publishing';
  start.classList.toggle('primary', !busy);
  start.classList.toggle('danger', busy);
  badge.textContent = next === 'live' ? 'LIVE' : next === 'connecting' ? 'CONNECTING' : 'PREVIEW';
  badge.classList.toggle('live', next === 'live');
  share.hidden = !busy;
  overlay.hidden = !busy;
  expose({ state });
}

// ---- devices -------------------------------------------------------------

/** @param {string} deviceId */
function videoConstraints(deviceId) {
  const [width, height] = SIZES[resolution.value] ?? SIZES[720];
  return {
    ...(deviceId ? { deviceId: { exact: deviceId } } : {}),
    width: { ideal: width },
    height: { ideal: height },
    frameRate: { ideal: 30 },
  };
}

/** @param {string} deviceId */
function audioConstraints(deviceId) {
  return {
    ...(deviceId ? { deviceId: { exact: deviceId } } : {}),
    echoCancellation: true,
    noiseSuppression: true,
    autoGainControl: true,
  };
}

/**
 * Swaps the track of one kind (null: none), in the preview and, when
 * publishing, on the sender.
 * @param {'audio' | 'video'} kind
 * @param {MediaStreamTrack | null} track
 */
async function setTrack(kind, track) {
  for (const old of kind === 'audio' ? stream.getAudioTracks() : stream.getVideoTracks()) {
    stream.removeTrack(old);
    old.stop();
  }
  if (track) stream.addTrack(track);
  const sender = session?.pc.getSenders().find((s) => (s.track?.kind ?? kindOf(s)) === kind);
  if (sender) await sender.replaceTrack(track);
  if (kind === 'audio') meter.attach(track);
  else {
    preview.srcObject = stream.getVideoTracks().length ? stream : null;
    placeholder.textContent = 'Camera off';
    placeholder.hidden = !!track;
  }
}

/** A sender whose track was removed still knows its kind through its transceiver. */
function kindOf(/** @type {RTCRtpSender} */ sender) {
  const t = session?.pc.getTransceivers().find((x) => x.sender === sender);
  return t?.receiver.track.kind;
}

/**
 * Opens the device chosen in `select` (or none).
 * @param {'audio' | 'video'} kind
 */
async function openDevice(kind) {
  const select = kind === 'audio' ? microphone : camera;
  if (select.value === 'off') return setTrack(kind, null);
  const constraints =
    kind === 'audio' ? { audio: audioConstraints(select.value) } : { video: videoConstraints(select.value) };
  const media = await navigator.mediaDevices.getUserMedia(constraints);
  const track = kind === 'audio' ? media.getAudioTracks()[0] : media.getVideoTracks()[0];
  await setTrack(kind, track ?? null);
}

/** Fills the pickers, keeping the current choice. */
async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const fill = (/** @type {HTMLSelectElement} */ select, /** @type {MediaDeviceKind} */ kind, /** @type {string} */ none, /** @type {MediaStreamTrack | undefined} */ current) => {
    const keep = current?.getSettings().deviceId ?? select.value;
    select.replaceChildren();
    let n = 0;
    for (const d of devices.filter((x) => x.kind === kind)) {
      n += 1;
      select.add(new Option(d.label || `${kind === 'videoinput' ? 'Camera' : 'Microphone'} ${n}`, d.deviceId));
    }
    select.add(new Option(none, 'off'));
    select.value = current ? keep : 'off';
    if (!select.value) select.selectedIndex = 0;
  };
  fill(camera, 'videoinput', 'No camera', stream.getVideoTracks()[0]);
  fill(microphone, 'audioinput', 'No microphone', stream.getAudioTracks()[0]);
}

/** First start: ask for both, then fall back to one. */
async function openDefaults() {
  const attempts = [
    { audio: audioConstraints(''), video: videoConstraints('') },
    { video: videoConstraints('') },
    { audio: audioConstraints('') },
  ];
  let lastError = null;
  for (const constraints of attempts) {
    try {
      const media = await navigator.mediaDevices.getUserMedia(constraints);
      await setTrack('video', media.getVideoTracks()[0] ?? null);
      await setTrack('audio', media.getAudioTracks()[0] ?? null);
      await listDevices();
      return;
    } catch (e) {
      lastError = e;
    }
  }
  placeholder.textContent = 'No camera or microphone';
  await listDevices().catch(() => {});
  showError(error, new Error(`Cannot open a camera or microphone: ${lastError instanceof Error ? lastError.message : lastError}`));
}

/** @param {'audio' | 'video'} kind */
async function changeDevice(kind) {
  showError(error, null);
  try {
    await openDevice(kind);
  } catch (e) {
    showError(error, e);
  }
  await listDevices().catch(() => {});
}

camera.addEventListener('change', () => changeDevice('video'));
resolution.addEventListener('change', () => camera.value !== 'off' && changeDevice('video'));
microphone.addEventListener('change', () => changeDevice('audio'));
navigator.mediaDevices?.addEventListener('devicechange', () => listDevices().catch(() => {}));

// ---- level meter ---------------------------------------------------------

const meter = {
  /** @type {AudioContext | null} */
  context: null,
  /** @type {AnalyserNode | null} */
  analyser: null,
  /** @type {MediaStreamAudioSourceNode | null} */
  source: null,
  peak: 0,
  samples: new Float32Array(1024),

  /** @param {MediaStreamTrack | null} track */
  attach(track) {
    this.source?.disconnect();
    this.source = null;
    if (!track) return;
    this.context ??= new AudioContext();
    if (!this.analyser) {
      this.analyser = this.context.createAnalyser();
      this.analyser.fftSize = this.samples.length;
    }
    this.source = this.context.createMediaStreamSource(new MediaStream([track]));
    this.source.connect(this.analyser);
  },

  draw() {
    let pct = 0;
    if (this.source && this.analyser && this.context?.state === 'running') {
      this.analyser.getFloatTimeDomainData(this.samples);
      let sum = 0;
      for (const x of this.samples) sum += x * x;
      const rms = Math.sqrt(sum / this.samples.length);
      const db = 20 * Math.log10(rms || 1e-8);
      pct = Math.min(100, Math.max(0, ((db + 60) / 60) * 100));
    }
    this.peak = Math.max(pct, this.peak - 2);
    level.style.width = `${100 - this.peak}%`;
    expose({ level: this.peak });
    requestAnimationFrame(() => this.draw());
  },
};
meter.draw();
// Audio contexts start suspended until the person interacts with the page.
for (const type of ['pointerdown', 'keydown']) {
  addEventListener(type, () => meter.context?.resume(), { passive: true });
}

// ---- publishing ------------------------------------------------------------

async function startPublishing() {
  showError(error, null);
  if (!validRoom(room.value)) {
    showError(error, new Error('Room names are 1 to 64 characters of A-Z a-z 0-9 - _ .'));
    return;
  }
  if (!stream.getTracks().length) {
    showError(error, new Error('Choose a camera or a microphone first.'));
    return;
  }
  meter.context?.resume();
  syncUrl({ room: room.value, codec: codec.value });
  const link = new URL(pageLink('/watch', { room: room.value }), location.href).href;
  watchLink.href = link;
  watchLink.textContent = link;
  setState('connecting', `Connecting to room “${room.value}”…`);
  try {
    const token = params.get('token') ?? undefined;
    const s = await publish(endpoint('whip', room.value), stream, { codec: codec.value || undefined, token });
    session = s;
    expose({ session: s });
    const follow = () => {
      if (session !== s) return;
      const c = s.pc.connectionState;
      if (c === 'connected') setState('live', `Live in room “${room.value}”`);
      else if (c === 'disconnected') setState('connecting', 'Connection interrupted, reconnecting…');
      else if (c === 'failed') {
        stopPublishing();
        setState('error', 'The connection failed');
      }
    };
    s.pc.addEventListener('connectionstatechange', follow);
    follow();
    statsTimer = setInterval(showStats, 1000);
  } catch (e) {
    setState('error', 'Could not publish');
    showError(error, e);
    expose({ error: String(e) });
  }
}

async function showStats() {
  if (!session) return;
  const s = await session.stats();
  overlay.textContent = overlayText(s);
  expose({ stats: s });
}

async function stopPublishing() {
  const s = session;
  session = null;
  clearInterval(statsTimer);
  expose({ session: null });
  setState('idle', 'Not publishing');
  await s?.stop();
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (state === 'connecting' || state === 'live') stopPublishing();
  else startPublishing();
});

$('copy').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(watchLink.href);
    $('copy').textContent = 'Copied';
    setTimeout(() => ($('copy').textContent = 'Copy'), 1500);
  } catch {
    getSelection()?.selectAllChildren(watchLink);
  }
});

addEventListener('pagehide', () => session?.stop());

if (!navigator.mediaDevices?.getUserMedia || !globalThis.RTCPeerConnection) {
  placeholder.textContent = 'This browser cannot capture or send media';
  start.disabled = true;
} else {
  openDefaults().finally(() => expose({ ready: true }));
}
