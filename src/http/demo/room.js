// The conference demo page: join a room (?name=), publish camera,
// microphone and screen, see everyone else in a grid with level meters,
// a participant list with their info, a chat over `broadcast`, and
// approve/reject prompts for owners. State for tests is on
// `window.uringcastRoom`.
// @ts-check

import { Room } from '/uringcast.js';
import { ROOM_PATTERN, params, server, setStatus, showError, wireNav } from '/demo/ui.js';

/** @param {string} id */
const $ = (id) => /** @type {any} */ (document.getElementById(id));

/** @type {Room | null} */
let room = null;
/** participant id → {tile, video, audio, meter, screen} */
const tiles = new Map();
/** Audio analysis for level meters. @type {AudioContext | null} */
let audio = null;
/** @type {{ stop: () => void } | null} */
let localMeter = null;

const demo = {
  /** @type {Room | null} */ room: null,
  chat: /** @type {any[]} */ ([]),
  events: /** @type {any[]} */ ([]),
  /** Publishes a drawn canvas as the screen (tests; no picker needed). */
  shareCanvas: () => shareCanvas(),
  /** Frames decoded per remote participant and source, from getStats(). */
  frames: () => frames(),
};
/** @type {any} */ (window).uringcastRoom = demo;

wireNav();
$('name').pattern = ROOM_PATTERN;
$('name').value = params.get('name') ?? '';
$('user').value = params.get('user') ?? '';

$('form').addEventListener('submit', async (/** @type {Event} */ e) => {
  e.preventDefault();
  if (room) return leave();
  await join();
  if (params.get('autostart') !== null) await Promise.all([toggle('microphone'), toggle('camera')]);
});
if (params.get('autostart') !== null && $('name').value) $('form').requestSubmit();

async function join() {
  $('error').hidden = true;
  setStatus($('status'), 'connecting', 'Joining…');
  try {
    const options = { info: { name: $('user').value || 'guest' }, token: params.get('token') ?? undefined };
    const joining = Room.join(server, $('name').value, options);
    room = await joining;
    demo.room = room;
    wire(room);
    $('controls').hidden = false;
    $('go').textContent = 'Leave';
    setStatus($('status'), 'live', `In ${room.name} as ${room.id}`);
    renderPeople();
    await pickers();
  } catch (error) {
    room = null;
    setStatus($('status'), 'error', 'Not in a room');
    showError($('error'), error);
    demo.events.push({ name: 'joinFailed', detail: String(/** @type {any} */ (error)?.message ?? error) });
  }
}

async function leave() {
  const r = room;
  room = null;
  demo.room = null;
  for (const t of tiles.values()) t.tile.remove();
  tiles.clear();
  localMeter?.stop();
  await r?.leave();
  $('controls').hidden = true;
  $('go').textContent = 'Join';
  setStatus($('status'), 'idle', 'Not in a room');
}

/** @param {Room} r */
function wire(r) {
  const log = (/** @type {string} */ name) => r.addEventListener(name, (/** @type {any} */ e) => {
    demo.events.push({ name, detail: e.detail });
    renderPeople();
  });
  for (const name of ['participantJoined', 'participantLeft', 'info', 'trackPublished', 'trackUnpublished', 'snapshot', 'message', 'joinResolved']) log(name);
  r.addEventListener('participantLeft', (/** @type {any} */ e) => {
    tiles.get(e.detail.id)?.tile.remove();
    tiles.delete(e.detail.id);
  });
  r.addEventListener('broadcast', (/** @type {any} */ e) => {
    demo.chat.push(e.detail);
    const li = document.createElement('li');
    li.textContent = `${name(e.detail.from)}: ${e.detail.payload?.text ?? JSON.stringify(e.detail.payload)}`;
    $('chat').append(li);
  });
  r.addEventListener('joinRequest', (/** @type {any} */ e) => request(e.detail.participant));
  r.addEventListener('track', (/** @type {any} */ e) => attach(e.detail));
  r.addEventListener('trackEnded', (/** @type {any} */ e) => detach(e.detail));
  r.addEventListener('error', (/** @type {any} */ e) => showError($('error'), e.detail.error));
}

/** @param {string} id */
function name(id) {
  return room?.participants.get(id)?.info?.name ?? id;
}

/** @param {any} t */
function tileOf(t) {
  let entry = tiles.get(t.participant);
  if (!entry) {
    const tile = document.createElement('figure');
    tile.className = 'tile';
    tile.dataset.participant = t.participant;
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true;
    const screen = document.createElement('video');
    screen.autoplay = true;
    screen.playsInline = true;
    screen.muted = true;
    screen.className = 'screen';
    screen.hidden = true;
    const meter = document.createElement('meter');
    meter.min = 0;
    meter.max = 1;
    const caption = document.createElement('figcaption');
    caption.textContent = name(t.participant);
    const sound = document.createElement('audio');
    sound.autoplay = true;
    tile.append(video, screen, meter, caption, sound);
    $('grid').append(tile);
    entry = { tile, video, screen, meter, caption, audio: sound, stopMeter: () => {} };
    tiles.set(t.participant, entry);
  }
  return entry;
}

/** @param {any} t */
function attach(t) {
  if (!t.participant) return;
  const entry = tileOf(t);
  const stream = new MediaStream([t.track]);
  if (t.source === 'screen') {
    entry.screen.srcObject = stream;
    entry.screen.hidden = false;
  } else if (t.kind === 'video') {
    entry.video.srcObject = stream;
  } else {
    entry.audio.srcObject = stream;
    entry.stopMeter();
    entry.stopMeter = meter(stream, entry.meter).stop;
  }
}

/** @param {any} t */
function detach(t) {
  const entry = tiles.get(t.participant);
  if (!entry) return;
  if (t.source === 'screen') {
    entry.screen.srcObject = null;
    entry.screen.hidden = true;
  } else if (t.kind === 'video') {
    entry.video.srcObject = null;
  }
}

/** A level meter fed by `stream`'s audio. @param {MediaStream} stream @param {HTMLMeterElement} el */
function meter(stream, el) {
  try {
    audio ??= new AudioContext();
    const source = audio.createMediaStreamSource(stream);
    const analyser = audio.createAnalyser();
    analyser.fftSize = 256;
    source.connect(analyser);
    const data = new Uint8Array(analyser.fftSize);
    const timer = setInterval(() => {
      analyser.getByteTimeDomainData(data);
      let peak = 0;
      for (const v of data) peak = Math.max(peak, Math.abs(v - 128) / 128);
      el.value = peak;
    }, 100);
    return { stop: () => { clearInterval(timer); source.disconnect(); } };
  } catch {
    return { stop: () => {} };
  }
}

function renderPeople() {
  const list = $('people');
  list.replaceChildren();
  if (!room) return;
  const me = document.createElement('li');
  me.textContent = `${$('user').value || 'guest'} (you)`;
  list.append(me);
  for (const p of room.participants.values()) {
    const li = document.createElement('li');
    const sources = (p.tracks ?? []).map((/** @type {any} */ t) => t.source).join(', ');
    const muted = p.info?.muted ? ' · muted' : '';
    li.textContent = `${p.info?.name ?? p.id}${muted}${sources ? ` · ${sources}` : ''}`;
    li.dataset.participant = p.id;
    list.append(li);
    const tile = tiles.get(p.id);
    if (tile) tile.caption.textContent = p.info?.name ?? p.id;
  }
}

/** An owner's prompt for a joiner. @param {any} p */
function request(p) {
  const box = document.createElement('div');
  box.className = 'notice';
  box.textContent = `${p.info?.name ?? p.id} asks to join `;
  const yes = document.createElement('button');
  yes.className = 'btn small primary';
  yes.textContent = 'Admit';
  yes.onclick = () => room?.approve(p.id).finally(() => box.remove());
  const no = document.createElement('button');
  no.className = 'btn small';
  no.textContent = 'Refuse';
  no.onclick = () => room?.reject(p.id, 'refused by the host').finally(() => box.remove());
  box.append(yes, no);
  $('requests').append(box);
}

/** @type {Record<string, MediaStreamTrack | null>} */
const local = { microphone: null, camera: null, screen: null };

/** @param {'microphone' | 'camera' | 'screen'} source */
async function toggle(source) {
  if (!room) return;
  const button = $(source === 'microphone' ? 'mic' : source);
  if (local[source]) {
    local[source]?.stop();
    local[source] = null;
    await room.unpublish(source);
    if (source === 'microphone') {
      localMeter?.stop();
      await room.updateInfo({ name: $('user').value || 'guest', muted: true });
    }
  } else {
    let track;
    if (source === 'screen') {
      const display = await navigator.mediaDevices.getDisplayMedia({ video: true });
      track = display.getVideoTracks()[0];
    } else {
      const kind = source === 'microphone' ? 'audio' : 'video';
      const picked = $(source === 'microphone' ? 'mics' : 'cameras').value;
      const constraint = picked ? { deviceId: { exact: picked } } : true;
      const stream = await navigator.mediaDevices.getUserMedia({ [kind]: constraint });
      track = kind === 'audio' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
    }
    local[source] = track;
    await room.publish(source, track);
    if (source === 'microphone') {
      localMeter = meter(new MediaStream([track]), $('level'));
      await room.updateInfo({ name: $('user').value || 'guest', muted: false });
    }
  }
  const on = { microphone: 'Mic', camera: 'Camera', screen: 'Screen' }[source];
  button.textContent = local[source] ? `${on} off` : source === 'screen' ? 'Share screen' : `${on} on`;
}

$('mic').onclick = () => toggle('microphone').catch((e) => showError($('error'), e));
$('camera').onclick = () => toggle('camera').catch((e) => showError($('error'), e));
$('screen').onclick = () => toggle('screen').catch((e) => showError($('error'), e));
$('say').addEventListener('submit', async (/** @type {Event} */ e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!room || !text) return;
  $('text').value = '';
  await room.broadcast({ text }).catch((err) => showError($('error'), err));
  const li = document.createElement('li');
  li.textContent = `you: ${text}`;
  $('chat').append(li);
});

async function pickers() {
  const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
  for (const [kind, id] of [['audioinput', 'mics'], ['videoinput', 'cameras']]) {
    const select = $(id);
    select.replaceChildren();
    for (const d of devices.filter((d) => d.kind === kind)) {
      const option = document.createElement('option');
      option.value = d.deviceId;
      option.textContent = d.label || d.deviceId.slice(0, 8) || kind;
      select.append(option);
    }
  }
}

/** A moving canvas published as the screen. */
async function shareCanvas() {
  if (!room) return;
  const canvas = document.createElement('canvas');
  canvas.width = 640;
  canvas.height = 360;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  let n = 0;
  setInterval(() => {
    n += 1;
    ctx.fillStyle = `hsl(${(n * 7) % 360} 70% 45%)`;
    ctx.fillRect(0, 0, 640, 360);
    ctx.fillStyle = '#fff';
    ctx.font = '48px sans-serif';
    ctx.fillText(`screen ${n}`, 40 + (n % 200), 180);
  }, 33);
  const track = canvas.captureStream(30).getVideoTracks()[0];
  local.screen = track;
  await room.publish('screen', track);
}

/** Frames decoded per (participant, source) on the subscribe transport. */
async function frames() {
  const pc = room?.subscribePc;
  if (!pc) return {};
  /** @type {Record<string, number>} */
  const out = {};
  const stats = await pc.getStats();
  stats.forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    const owner = room?.mids.get(s.mid);
    if (!owner) return;
    const key = `${owner.participant}/${owner.source}`;
    out[key] = (s.kind === 'video' ? s.framesDecoded : s.packetsReceived) ?? 0;
  });
  return out;
}
