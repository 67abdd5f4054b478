// uringcast-room.js: conference rooms for browsers, re-exported by
// uringcast.js as `Room`. Plain ES module, no dependencies; types in
// uringcast.d.ts.
//
//   import { Room } from '/uringcast.js';
//   const room = await Room.join('https://sfu.example', 'standup', { token, info: { name: 'Ana' } });
//   room.addEventListener('track', (e) => attach(e.detail.participant, e.detail.source, e.detail.track));
//   await room.publish('camera', cameraTrack);
//   await room.publish('microphone', micTrack);
//   await room.subscribe('bo', { camera: false });
//   await room.broadcast({ text: 'hi' });
//   await room.leave();
//
// Two PeerConnections, as the server expects: the publish one is offered
// by this page (POSTed once, renegotiated with PATCH when a track is added
// or dropped; a replaced track is swapped without either), the subscribe
// one by the server (its first offer in the
// reply to POST …/subscribe, later ones as `offer` events, each answered
// with POST …/answer, in order). Events come from an EventSource on the
// participant's stream, which resumes by itself with Last-Event-ID.

// @ts-check

import { UringcastError, problemError } from './uringcast.js';

/** @typedef {'microphone' | 'camera' | 'screen'} Source */
const SOURCES = /** @type {const} */ (['microphone', 'camera', 'screen']);

const REQUEST_TIMEOUT = 10_000;

/**
 * A participant in a conference room. Dispatches `CustomEvent`s whose
 * `detail` is the server's event data: `snapshot`, `participantJoined`,
 * `participantLeft`, `trackPublished`, `trackUnpublished`, `info`,
 * `broadcast`, `message`, `joinRequest`, `joinResolved`, `rejected`;
 * `track` ({participant, source, kind, track, active}) when a remote
 * track starts, `trackEnded` when it stops; `error` ({error}) when a
 * renegotiation failed.
 */
export class Room extends EventTarget {
  /**
   * Joins `room` on the server at `server` (an origin, or '' for this
   * page's). Resolves once joined; in a room with approval, once an owner
   * admitted this participant (rejects with the reason otherwise).
   * @param {string} server
   * @param {string} room
   * @param {import('./uringcast.js').RoomOptions} [options]
   * @returns {Promise<Room>}
   */
  static async join(server, room, options = {}) {
    const base = new URL(server || '/', globalThis.location?.href).origin;
    const body = { info: options.info ?? {}, ...(options.id ? { id: options.id } : {}) };
    const response = await call(`${base}/v1/rooms/${encodeURIComponent(room)}/participants`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json' },
    }, options.token);
    const joined = await response.json();
    const self = new Room(base, room, joined, options);
    if (joined.waiting) {
      self.dispatch('waiting', joined.snapshot);
      await self.admitted;
    }
    await self.startSubscribing();
    return self;
  }

  /**
   * @param {string} base
   * @param {string} name
   * @param {any} joined
   * @param {import('./uringcast.js').RoomOptions} options
   */
  constructor(base, name, joined, options) {
    super();
    /** The room's name. */
    this.name = name;
    /** This participant's public id. */
    this.id = /** @type {string} */ (joined.id);
    /** This participant's URL (its handle: keep it secret). */
    this.url = `${base}${joined.url}`;
    this.options = options;
    /** Every other participant, by id: {id, info, tracks}. */
    this.participants = new Map();
    /** @type {Map<Source, MediaStreamTrack>} what this page publishes */
    this.published = new Map();
    /** @type {RTCPeerConnection | null} */
    this.publishPc = null;
    /** @type {RTCPeerConnection | null} */
    this.subscribePc = null;
    /** mid → {participant, source, kind} of the subscribe transport */
    this.mids = new Map();
    this.closed = false;
    /** Offers are answered one at a time, in order. */
    this.answering = Promise.resolve();
    /** Publish changes are made one at a time, in order. */
    this.publishing = Promise.resolve();
    /** @type {(v?: unknown) => void} */
    let admit = () => {};
    /** @type {(e: unknown) => void} */
    let refuse = () => {};
    /** Resolves when this participant is a member (at once unless waiting). */
    this.admitted = new Promise((resolve, reject) => {
      admit = resolve;
      refuse = reject;
    });
    if (!joined.waiting) admit();
    this.snapshot(joined.snapshot);
    const token = options.token ? `?token=${encodeURIComponent(options.token)}` : '';
    this.events = new EventSource(`${this.url}/events${token}`);
    const on = (/** @type {string} */ name, /** @type {(data: any) => void} */ handle) =>
      this.events.addEventListener(name, (/** @type {MessageEvent} */ e) => {
        let data = null;
        try {
          data = JSON.parse(e.data);
        } catch {
          return;
        }
        handle(data);
        this.dispatch(name, data);
      });
    on('snapshot', (data) => {
      if (data.admission === undefined) admit();
      this.snapshot(data);
    });
    on('participantJoined', (data) => this.participants.set(data.participant.id, data.participant));
    on('participantLeft', (data) => this.participants.delete(data.id));
    on('trackPublished', (data) => {
      const p = this.participants.get(data.participant);
      if (p) p.tracks = [...p.tracks.filter((t) => t.id !== data.track.id), data.track];
    });
    on('trackUnpublished', (data) => {
      const p = this.participants.get(data.participant);
      if (p) p.tracks = p.tracks.filter((t) => t.id !== data.track.id);
    });
    on('info', (data) => {
      const p = this.participants.get(data.participant);
      if (p) p.info = data.info;
    });
    on('rejected', (data) => {
      refuse(new UringcastError(`the join was rejected: ${data.reason}`, { status: 403, detail: data.reason }));
      this.events.close();
    });
    on('offer', (data) => {
      this.answering = this.answering.then(() => this.answer(data)).catch((error) => this.dispatch('error', { error }));
    });
    on('broadcast', () => {});
    on('message', () => {});
    on('joinRequest', () => {});
    on('joinResolved', () => {});
  }

  /** @param {string} name @param {unknown} detail */
  dispatch(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  /** @param {any} snapshot */
  snapshot(snapshot) {
    if (!snapshot || snapshot.admission !== undefined) return;
    this.participants = new Map((snapshot.participants ?? []).map((/** @type {any} */ p) => [p.id, p]));
  }

  /** Opens the subscribe transport and answers its first offer. */
  async startSubscribing() {
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', ...this.options.rtcConfiguration });
    this.subscribePc = pc;
    pc.addEventListener('track', (event) => {
      const mid = event.transceiver.mid ?? '';
      const owner = this.mids.get(mid);
      if (!owner) return;
      const detail = { ...owner, track: event.track, active: true, mid };
      event.track.addEventListener('ended', () => this.dispatch('trackEnded', { ...detail, active: false }));
      this.dispatch('track', detail);
    });
    const response = await call(`${this.url}/subscribe`, {
      method: 'POST',
      body: '{}',
      headers: { 'Content-Type': 'application/json' },
    }, this.options.token);
    const offer = await response.json();
    // In the same queue as the offers of the event stream: the next one
    // can arrive there before this answer's POST has returned.
    const first = this.answering.then(() => this.answer(offer));
    this.answering = first.catch((error) => this.dispatch('error', { error }));
    await first;
  }

  /**
   * Applies one server offer and answers it.
   * @param {{revision: number, sdp: string, tracks: any[]}} offer
   */
  async answer(offer) {
    const pc = this.subscribePc;
    if (!pc || this.closed) return;
    const before = new Set(this.mids.keys());
    const now = new Map();
    for (const t of offer.tracks ?? []) {
      const owner = { participant: t.participant ?? null, source: t.track?.source ?? null, kind: t.track?.kind ?? null, trackId: t.track?.id ?? null };
      now.set(t.mid, owner);
      this.mids.set(t.mid, owner);
    }
    await pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    await call(`${this.url}/answer`, {
      method: 'POST',
      body: JSON.stringify({ revision: offer.revision, sdp: pc.localDescription?.sdp }),
      headers: { 'Content-Type': 'application/json' },
    }, this.options.token);
    for (const mid of before) {
      if (!now.has(mid)) {
        const owner = this.mids.get(mid);
        this.mids.delete(mid);
        this.dispatch('trackEnded', { ...owner, mid, active: false });
      }
    }
  }

  /**
   * Publishes `track` as `source` (replacing what was published as it).
   * @param {Source} source
   * @param {MediaStreamTrack} track
   */
  async publish(source, track) {
    if (!SOURCES.includes(source)) throw new UringcastError(`unknown source ${source}`);
    await this.admitted;
    this.published.set(source, track);
    await this.inTurn();
  }

  /** Stops publishing `source`. @param {Source} source */
  async unpublish(source) {
    if (!this.published.delete(source)) return;
    await this.inTurn();
  }

  /**
   * Brings the publish transport in step, after any change still under
   * way: two publish() calls at once (microphone and camera) must not make
   * two transports, or renegotiate one twice at the same time.
   */
  async inTurn() {
    const run = this.publishing.then(() => this.renegotiatePublish());
    this.publishing = run.catch(() => {});
    await run;
  }

  /**
   * Brings the publish transport in step with `published`: a replaced
   * track is swapped in place (no renegotiation); an added or dropped one
   * renegotiates the transport (PATCH with a new offer); the first track,
   * or a transport that failed, makes a new one (POST).
   */
  async renegotiatePublish() {
    const pc = this.publishPc;
    if (this.published.size === 0) {
      this.publishPc = null;
      pc?.close();
      return;
    }
    if (!pc || pc.connectionState === 'failed' || pc.connectionState === 'closed') {
      await this.newPublishTransport();
      pc?.close();
      return;
    }
    let changed = false;
    const stream = new MediaStream([...this.published.values()]);
    for (const source of SOURCES) {
      const track = this.published.get(source);
      const t = pc.getTransceivers().find((x) => sourceOf(x) === source && !x.stopped && x.currentDirection !== 'stopped');
      if (track && t) {
        if (t.sender.track !== track) await t.sender.replaceTrack(track);
      } else if (track) {
        const added = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
        /** @type {any} */ (added).uringcastSource = source;
        changed = true;
      } else if (t) {
        t.stop();
        changed = true;
      }
    }
    if (!changed) return;
    await pc.setLocalDescription(await pc.createOffer());
    const response = await call(`${this.url}/publish?${sourceQuery(pc)}`, {
      method: 'PATCH',
      body: pc.localDescription?.sdp,
      headers: { 'Content-Type': 'application/sdp' },
    }, this.options.token);
    await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
  }

  /** A publish transport for the current tracks (POST; it replaces any other). */
  async newPublishTransport() {
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', ...this.options.rtcConfiguration });
    const stream = new MediaStream([...this.published.values()]);
    for (const source of SOURCES) {
      const track = this.published.get(source);
      if (!track) continue;
      const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      /** @type {any} */ (t).uringcastSource = source;
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 1500);
    const response = await call(`${this.url}/publish?${sourceQuery(pc)}`, {
      method: 'POST',
      body: pc.localDescription?.sdp,
      headers: { 'Content-Type': 'application/sdp' },
    }, this.options.token);
    await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
    this.publishPc = pc;
  }

  /**
   * What to receive of participant `participantId` (the rest unchanged).
   * @param {string} participantId
   * @param {Partial<Record<Source, boolean>>} sources
   */
  async subscribe(participantId, sources) {
    await this.post('subscription', { [participantId]: sources });
  }

  /** Sets this participant's info; the others get an `info` event. @param {object} info */
  async updateInfo(info) {
    await this.post('info', info);
  }

  /** To every other participant as a `broadcast` event. @param {unknown} payload */
  async broadcast(payload) {
    await this.post('broadcast', payload);
  }

  /** To participant `participantId` only, as a `message` event. @param {string} participantId @param {unknown} payload */
  async send(participantId, payload) {
    await this.post(`message/${encodeURIComponent(participantId)}`, payload);
  }

  /** An owner admits joiner `participantId`. @param {string} participantId */
  async approve(participantId) {
    await this.post(`approve/${encodeURIComponent(participantId)}`, {});
  }

  /** An owner refuses joiner `participantId`. @param {string} participantId @param {string} [reason] */
  async reject(participantId, reason) {
    await this.post(`reject/${encodeURIComponent(participantId)}`, reason ? { reason } : {});
  }

  /** Leaves the room: both transports close, the others see it leave. */
  async leave() {
    if (this.closed) return;
    this.closed = true;
    this.events.close();
    this.publishPc?.close();
    this.subscribePc?.close();
    try {
      await call(this.url, { method: 'DELETE' }, this.options.token);
    } catch (e) {
      // Gone already (a 404) is what leaving wants.
      if (!(e instanceof UringcastError && e.status === 404)) throw e;
    }
  }

  /** @param {string} path @param {unknown} body */
  async post(path, body) {
    await call(`${this.url}/${path}`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json' },
    }, this.options.token);
  }
}

/**
 * fetch with a time limit and the token; a non-2xx answer becomes an
 * UringcastError carrying the problem's detail.
 * @param {string} url
 * @param {RequestInit} init
 * @param {string | undefined} token
 */
async function call(url, init, token) {
  const headers = { ...(/** @type {Record<string, string>} */ (init.headers ?? {})), ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  let response;
  try {
    response = await fetch(url, { ...init, headers, mode: 'cors', cache: 'no-store', signal: AbortSignal.timeout(REQUEST_TIMEOUT) });
  } catch (e) {
    throw new UringcastError(`cannot reach ${url}: ${e instanceof Error ? e.message : String(e)}`, { url, cause: e });
  }
  if (!response.ok) throw await problemError(response, url);
  return response;
}

/** The source a transceiver was added for. @param {RTCRtpTransceiver} t */
function sourceOf(t) {
  return /** @type {any} */ (t).uringcastSource ?? null;
}

/** `camera=MID&…` for the transceivers still sending. @param {RTCPeerConnection} pc */
function sourceQuery(pc) {
  return pc.getTransceivers()
    .filter((t) => sourceOf(t) && !t.stopped && t.mid !== null)
    .map((t) => `${sourceOf(t)}=${encodeURIComponent(t.mid ?? '')}`)
    .join('&');
}

/** ICE gathering complete, or `ms` passed. @param {RTCPeerConnection} pc @param {number} ms */
function gathered(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== 'complete') return;
      pc.removeEventListener('icegatheringstatechange', done);
      clearTimeout(timer);
      resolve(undefined);
    };
    const timer = setTimeout(() => {
      pc.removeEventListener('icegatheringstatechange', done);
      resolve(undefined);
    }, ms);
    pc.addEventListener('icegatheringstatechange', done);
  });
}
