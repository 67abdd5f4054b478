// uringcast.js: a small WHIP (RFC 9725) and WHEP client for browsers.
// Plain ES module, no dependencies; types in uringcast.d.ts beside it.
//
//   import { publish, watch } from '/uringcast.js';
//   const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
//   const session = await publish('/whip/myroom', stream, { codec: 'VP9' });
//   ...
//   const viewer = await watch('/whep/myroom');
//   video.srcObject = viewer.stream;
//   ...
//   await session.stop(); // DELETE on the session URL
//
// Non-trickle by default: the offer is sent once ICE gathering completes (or
// after `iceGatheringTimeout`), with every candidate in it. Candidates found
// after the offer went out are sent with PATCH (RFC 8840 sdpfrag, If-Match
// with the session's ETag) when the server supports it; a 404, 405 or 501 to
// a PATCH means it does not, and the client stops trying. A 409 or 503 with
// Retry-After (WHEP: nothing published yet) is retried after the time the
// server names, a bounded number of times. Every HTTP error becomes an
// `UringcastError` whose message is the server's RFC 9457 problem `detail`.

// @ts-check

// Conference rooms (two PeerConnections and an event stream per participant).
export { Room } from './uringcast-room.js';

/** The video codecs uringcast forwards, in the order a picker shows them. */
export const VIDEO_CODECS = Object.freeze(['VP8', 'VP9', 'H264', 'AV1']);

/**
 * An HTTP or signaling failure. `message` is the server's problem `detail`
 * when it sent one.
 */
export class UringcastError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, detail?: string | null, problem?: any, retryAfter?: number | null, url?: string | null, cause?: unknown}} [info]
   */
  constructor(message, info = {}) {
    super(message, info.cause === undefined ? undefined : { cause: info.cause });
    this.name = 'UringcastError';
    /** HTTP status, 0 when there was no HTTP answer. */
    this.status = info.status ?? 0;
    /** The problem's `detail` (or the body's text), if any. */
    this.detail = info.detail ?? null;
    /** The parsed `application/problem+json` body, if any. */
    this.problem = info.problem ?? null;
    /** Milliseconds from `Retry-After`, if the server sent it. */
    this.retryAfter = info.retryAfter ?? null;
    /** The URL the request went to. */
    this.url = info.url ?? null;
  }
}

/**
 * @typedef {object} RetryInfo
 * @property {number} attempt the retry about to be made (1, 2, ...)
 * @property {number} retries how many retries are allowed in all
 * @property {number} delay milliseconds until it is made
 * @property {UringcastError} error the answer that is retried (409 or 503)
 */

/**
 * @typedef {object} CommonOptions
 * @property {string} [token] Bearer token sent on POST, PATCH and DELETE
 * @property {boolean} [trickle] send the offer at once and every candidate with PATCH (default false: wait for gathering)
 * @property {number} [iceGatheringTimeout] longest wait for ICE gathering before the offer is sent, ms (default 2000)
 * @property {number} [requestTimeout] longest wait for an HTTP answer, ms (default 10000)
 * @property {number} [retries] retries of a 409/503 that carries Retry-After (default 5)
 * @property {number} [maxRetryDelay] longest wait between retries, ms (default 10000)
 * @property {(info: RetryInfo) => void} [onRetry] called before each wait for a retry
 * @property {AbortSignal} [signal] aborts the signaling (not a session already set up)
 * @property {RTCConfiguration} [rtcConfiguration] extra RTCPeerConnection settings (iceServers, ...)
 */

/**
 * @typedef {CommonOptions & {codec?: string, audioCodec?: string}} PublishOptions
 * `codec`: 'VP8', 'VP9', 'H264', 'AV1' (or a mime type); `audioCodec`: e.g. 'opus'.
 */

/**
 * @typedef {CommonOptions & {audio?: boolean, video?: boolean}} WatchOptions
 */

/**
 * @typedef {object} RoomOptions
 * @property {string} [token] bearer token (a JWT naming the room; its `sub` is the participant id)
 * @property {string} [id] the participant id to ask for when the server has no auth
 * @property {object} [info] what the others see of this participant (display name, ...)
 * @property {RTCConfiguration} [rtcConfiguration] extra RTCPeerConnection settings
 * `audio` / `video`: whether to receive that kind (default true).
 */

/**
 * @typedef {object} MediaStats
 * @property {string | null} codec codec name ('VP8', 'opus', ...)
 * @property {number} packets RTP packets sent or received
 * @property {number} bytes payload bytes sent or received
 * @property {number | null} bitrate bits/s since the previous `stats()` call (null on the first)
 * @property {number | null} packetsLost lost packets (received side: counted here; sent side: as the server reports)
 * @property {number | null} jitter seconds
 * @property {number | null} [width]
 * @property {number | null} [height]
 * @property {number | null} [fps]
 * @property {number | null} [frames] frames decoded (watch) or encoded (publish)
 * @property {number | null} [keyFrames]
 * @property {string | null} [implementation] encoder or decoder in use
 * @property {number | null} [level] audio level 0..1 (received audio)
 */

/**
 * @typedef {object} SessionStats
 * @property {number} timestamp performance.now() of the sample
 * @property {number | null} rtt round-trip time to the server, ms
 * @property {MediaStats | null} video
 * @property {MediaStats | null} audio
 * @property {RTCStatsReport} report the raw report
 */

/**
 * @typedef {'unused' | 'pending' | 'supported' | 'unsupported' | 'failed'} TrickleState
 */

/**
 * @typedef {object} Session
 * @property {RTCPeerConnection} pc
 * @property {string | null} location the session URL (DELETE target)
 * @property {string | null} etag the session's ETag
 * @property {() => Promise<boolean>} stop stops sending, DELETEs the session, then closes the peer connection; true when the server confirmed the DELETE
 * @property {() => Promise<SessionStats>} stats
 * @property {() => TrickleState} trickle whether candidates went out with PATCH
 */

/** @typedef {Session & {stream: MediaStream}} WatchSession */

const DEFAULTS = {
  iceGatheringTimeout: 2000,
  requestTimeout: 10000,
  retries: 5,
  maxRetryDelay: 10000,
};

/**
 * The video codecs of `VIDEO_CODECS` this browser can send.
 * @returns {string[]}
 */
export function videoCodecs() {
  const caps = globalThis.RTCRtpSender?.getCapabilities?.('video')?.codecs ?? [];
  return VIDEO_CODECS.filter((name) =>
    caps.some((c) => c.mimeType.toLowerCase() === `video/${name.toLowerCase()}`),
  );
}

/**
 * Publishes the first audio and the first video track of `mediaStream` with
 * WHIP. Resolves once the server answered (media flows when `pc` connects).
 * @param {string} url the WHIP endpoint, e.g. '/whip/myroom'
 * @param {MediaStream} mediaStream
 * @param {PublishOptions} [options]
 * @returns {Promise<Session>}
 */
export async function publish(url, mediaStream, options = {}) {
  const audio = mediaStream.getAudioTracks()[0];
  const video = mediaStream.getVideoTracks()[0];
  if (!audio && !video) {
    throw new UringcastError('the stream has no audio or video track to publish');
  }
  const pc = newPeerConnection(options);
  try {
    if (audio) {
      const t = pc.addTransceiver(audio, { direction: 'sendonly', streams: [mediaStream] });
      if (options.audioCodec) preferCodec(t, 'audio', options.audioCodec);
    }
    if (video) {
      const t = pc.addTransceiver(video, { direction: 'sendonly', streams: [mediaStream] });
      if (options.codec) preferCodec(t, 'video', options.codec);
    }
    return await negotiate(pc, url, 'send', options);
  } catch (e) {
    pc.close();
    throw e;
  }
}

/**
 * Watches a room with WHEP. If nothing is published yet (409 with
 * Retry-After), retries as the server says, at most `retries` times.
 * `stream` gets the tracks as soon as the answer is applied.
 * @param {string} url the WHEP endpoint, e.g. '/whep/myroom'
 * @param {WatchOptions} [options]
 * @returns {Promise<WatchSession>}
 */
export async function watch(url, options = {}) {
  const pc = newPeerConnection(options);
  const stream = new MediaStream();
  pc.addEventListener('track', (event) => {
    if (!stream.getTrackById(event.track.id)) stream.addTrack(event.track);
  });
  try {
    if (options.audio !== false) pc.addTransceiver('audio', { direction: 'recvonly' });
    if (options.video !== false) pc.addTransceiver('video', { direction: 'recvonly' });
    if (options.audio === false && options.video === false) {
      throw new UringcastError('nothing to watch: both audio and video are off');
    }
    const session = await negotiate(pc, url, 'recv', options);
    return { ...session, stream };
  } catch (e) {
    pc.close();
    throw e;
  }
}

/** @param {CommonOptions} options */
function newPeerConnection(options) {
  return new RTCPeerConnection({
    bundlePolicy: 'max-bundle',
    rtcpMuxPolicy: 'require',
    ...options.rtcConfiguration,
  });
}

/**
 * Puts `name` first (and alone among media codecs) in the transceiver's
 * codec list; retransmission and FEC entries are kept.
 * @param {RTCRtpTransceiver} transceiver
 * @param {'audio' | 'video'} kind
 * @param {string} name
 */
function preferCodec(transceiver, kind, name) {
  const mime = (name.includes('/') ? name : `${kind}/${name}`).toLowerCase();
  const helper = /\/(rtx|red|ulpfec|flexfec-03)$/i;
  /** @param {RTCRtpCapabilities | null} caps */
  const list = (caps) => {
    const codecs = caps?.codecs ?? [];
    const chosen = codecs.filter((c) => c.mimeType.toLowerCase() === mime);
    return chosen.length ? [...chosen, ...codecs.filter((c) => helper.test(c.mimeType))] : [];
  };
  const fromSender = list(RTCRtpSender.getCapabilities(kind));
  if (!fromSender.length) {
    throw new UringcastError(`this browser cannot send ${name}`);
  }
  try {
    transceiver.setCodecPreferences(fromSender);
  } catch {
    // Older browsers check the list against the receiver's capabilities.
    const fromReceiver = list(RTCRtpReceiver.getCapabilities(kind));
    if (!fromReceiver.length) throw new UringcastError(`this browser cannot negotiate ${name}`);
    transceiver.setCodecPreferences(fromReceiver);
  }
}

/**
 * Offer, POST (with retries), answer; then trickle what is left.
 * @param {RTCPeerConnection} pc
 * @param {string} url
 * @param {'send' | 'recv'} direction
 * @param {CommonOptions} options
 * @returns {Promise<Session>}
 */
async function negotiate(pc, url, direction, options) {
  const endpoint = new URL(url, globalThis.location?.href).href;
  const trickle = new Trickle(pc, options);
  await pc.setLocalDescription(await pc.createOffer());
  if (!options.trickle) {
    await gathered(pc, options.iceGatheringTimeout ?? DEFAULTS.iceGatheringTimeout, options.signal);
  }
  const offer = /** @type {RTCSessionDescription} */ (pc.localDescription).sdp;
  trickle.offered(offer, pc.iceGatheringState === 'complete');

  const response = await postOffer(endpoint, offer, options, direction === 'send' ? 'WHIP' : 'WHEP');
  const answer = await response.text();
  const locationHeader = response.headers.get('Location');
  const location = locationHeader ? new URL(locationHeader, response.url || endpoint).href : null;
  const etag = response.headers.get('ETag');
  if (!location) {
    console.warn(
      `uringcast: ${endpoint} answered without a readable Location (is it in Access-Control-Expose-Headers?); stop() cannot end the session on the server`,
    );
  }

  // The DELETE is answered before the peer connection closes: closing
  // first sends a DTLS close_notify, which can reach the server before the
  // DELETE does and end the session there (the DELETE then gets a 404).
  // Media stops at once all the same.
  let stopped = /** @type {Promise<boolean> | null} */ (null);
  const stop = () => {
    if (!stopped) {
      trickle.close();
      for (const sender of pc.getSenders()) sender.replaceTrack(null).catch(() => {});
      const ended = location ? deleteSession(location, options) : Promise.resolve(false);
      stopped = ended.finally(() => pc.close());
    }
    return stopped;
  };

  try {
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  } catch (e) {
    await stop();
    throw new UringcastError(`the server's answer was not accepted: ${errorText(e)}`, { cause: e });
  }
  trickle.start(location, etag);

  return {
    pc,
    location,
    etag,
    stop,
    stats: statsReader(pc, direction),
    trickle: () => trickle.state,
  };
}

/**
 * Resolves when ICE gathering completes, after `ms`, or on abort.
 * @param {RTCPeerConnection} pc
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
function gathered(pc, ms, signal) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const finish = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      signal?.removeEventListener('abort', aborted);
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') {
        finish();
        resolve();
      }
    };
    const aborted = () => {
      finish();
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      finish();
      resolve();
    }, ms);
    pc.addEventListener('icegatheringstatechange', check);
    if (signal?.aborted) aborted();
    else signal?.addEventListener('abort', aborted, { once: true });
  });
}

/**
 * POSTs the offer; retries 409/503 with Retry-After.
 * @param {string} endpoint
 * @param {string} offer
 * @param {CommonOptions} options
 * @param {string} what
 * @returns {Promise<Response>}
 */
async function postOffer(endpoint, offer, options, what) {
  const retries = Math.max(0, options.retries ?? DEFAULTS.retries);
  const maxDelay = options.maxRetryDelay ?? DEFAULTS.maxRetryDelay;
  for (let attempt = 0; ; attempt++) {
    const response = await request(
      endpoint,
      { method: 'POST', headers: headers(options, { 'Content-Type': 'application/sdp' }), body: offer },
      options,
    );
    if (response.ok) return response;
    if (response.status === 406) {
      await response.body?.cancel();
      throw new UringcastError(`${what}: the server sent a counter-offer (406), which this client does not take`, {
        status: 406,
        url: endpoint,
      });
    }
    const error = await httpError(response, endpoint);
    const retryable = (response.status === 409 || response.status === 503) && error.retryAfter !== null;
    if (!retryable || attempt >= retries) throw error;
    const delay = Math.min(Math.max(error.retryAfter ?? 0, 100), maxDelay);
    options.onRetry?.({ attempt: attempt + 1, retries, delay, error });
    await sleep(delay, options.signal);
  }
}

/**
 * DELETE on the session URL; true when the server confirmed (2xx).
 * @param {string} location
 * @param {CommonOptions} options
 */
async function deleteSession(location, options) {
  try {
    const response = await request(
      location,
      { method: 'DELETE', headers: headers(options, {}), keepalive: true },
      { ...options, signal: undefined },
    );
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * @param {CommonOptions} options
 * @param {Record<string, string>} extra
 * @returns {Record<string, string>}
 */
function headers(options, extra) {
  return options.token ? { ...extra, Authorization: `Bearer ${options.token}` } : extra;
}

/**
 * fetch with a time limit and the caller's abort signal; a network failure
 * becomes an UringcastError with status 0.
 * @param {string} url
 * @param {RequestInit} init
 * @param {CommonOptions} options
 * @returns {Promise<Response>}
 */
async function request(url, init, options) {
  const limit = options.requestTimeout ?? DEFAULTS.requestTimeout;
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new UringcastError(`no answer from ${url} within ${limit} ms`, { url })),
    limit,
  );
  const signal = options.signal;
  const aborted = () => controller.abort(abortError(signal));
  if (signal?.aborted) aborted();
  else signal?.addEventListener('abort', aborted, { once: true });
  try {
    return await fetch(url, { ...init, mode: 'cors', cache: 'no-store', signal: controller.signal });
  } catch (e) {
    if (controller.signal.aborted) throw controller.signal.reason;
    throw new UringcastError(`cannot reach ${url}: ${errorText(e)}`, { url, cause: e });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', aborted);
  }
}

/**
 * The error for a non-2xx answer: message = problem detail when present.
 * @param {Response} response
 * @param {string} url
 * @returns {Promise<UringcastError>}
 */
export async function problemError(response, url) {
  return httpError(response, url);
}

/**
 * @param {Response} response
 * @param {string} url
 * @returns {Promise<UringcastError>}
 */
async function httpError(response, url) {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // The body is optional.
  }
  let problem = null;
  if (/json/i.test(response.headers.get('Content-Type') ?? '')) {
    try {
      problem = JSON.parse(text);
    } catch {
      problem = null;
    }
  }
  const fromProblem = problem && typeof problem === 'object' ? (problem.detail ?? problem.title) : null;
  const detail = typeof fromProblem === 'string' && fromProblem ? fromProblem : text.trim().slice(0, 300) || null;
  const message = detail ?? `HTTP ${response.status} ${response.statusText}`.trim();
  return new UringcastError(message, {
    status: response.status,
    detail,
    problem,
    retryAfter: parseRetryAfter(response.headers.get('Retry-After')),
    url,
  });
}

/**
 * Retry-After as milliseconds (delta-seconds or an HTTP date).
 * @param {string | null} value
 * @returns {number | null}
 */
function parseRetryAfter(value) {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

/**
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const aborted = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', aborted);
      resolve();
    }, ms);
    if (signal?.aborted) aborted();
    else signal?.addEventListener('abort', aborted, { once: true });
  });
}

/** @param {AbortSignal | undefined} signal */
function abortError(signal) {
  const reason = signal?.reason;
  return reason instanceof Error ? reason : new UringcastError('aborted', { cause: reason });
}

/** @param {unknown} e */
function errorText(e) {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Candidates the offer did not carry, sent with PATCH (RFC 8840) once the
 * session exists; one request at a time, batched.
 */
class Trickle {
  /**
   * @param {RTCPeerConnection} pc
   * @param {CommonOptions} options
   */
  constructor(pc, options) {
    this.pc = pc;
    this.options = options;
    /** @type {TrickleState} */
    this.state = 'unused';
    /** @type {string[]} candidate attribute values not sent yet */
    this.queue = [];
    /** @type {Set<string>} */
    this.inOffer = new Set();
    this.offerSent = false;
    this.complete = false;
    this.endQueued = false;
    this.busy = false;
    this.closed = false;
    /** @type {string | null} */
    this.location = null;
    /** @type {string | null} */
    this.etag = null;
    /** @type {string} the offer's ufrag, pwd and first m-section, for the fragment */
    this.header = '';
    /** @type {UringcastError | null} */
    this.error = null;
    this.onCandidate = (/** @type {RTCPeerConnectionIceEvent} */ event) => {
      if (this.closed || this.complete) return;
      const candidate = event.candidate?.candidate;
      if (candidate) {
        if (!this.offerSent || !this.inOffer.has(candidate)) this.queue.push(candidate);
      } else if (event.candidate === null) {
        this.endQueued = this.offerSent;
      }
      this.flush();
    };
    pc.addEventListener('icecandidate', this.onCandidate);
  }

  /**
   * The offer is about to go out: what it carries needs no PATCH.
   * @param {string} sdp
   * @param {boolean} complete gathering had completed
   */
  offered(sdp, complete) {
    this.offerSent = true;
    for (const line of sdp.split(/\r?\n/)) {
      if (line.startsWith('a=candidate:')) this.inOffer.add(line.slice(2));
    }
    this.queue = this.queue.filter((c) => !this.inOffer.has(c));
    if (complete) {
      // Everything is in the offer: nothing will ever need a PATCH.
      this.complete = true;
      this.queue = [];
      this.pc.removeEventListener('icecandidate', this.onCandidate);
      return;
    }
    this.header = fragmentHeader(sdp);
    this.state = 'pending';
  }

  /**
   * @param {string | null} location
   * @param {string | null} etag
   */
  start(location, etag) {
    this.location = location;
    this.etag = etag;
    if (!location && this.state === 'pending') this.state = 'unsupported';
    this.flush();
  }

  close() {
    this.closed = true;
    this.queue = [];
    this.pc.removeEventListener('icecandidate', this.onCandidate);
  }

  flush() {
    if (this.closed || this.busy || !this.location) return;
    if (this.state !== 'pending' && this.state !== 'supported') return;
    if (!this.queue.length && !this.endQueued) return;
    this.busy = true;
    // Let candidates found in the same turn join this request.
    setTimeout(() => this.send(), 0);
  }

  async send() {
    const candidates = this.queue;
    const end = this.endQueued;
    this.queue = [];
    this.endQueued = false;
    const body =
      this.header +
      candidates.map((c) => `a=${c}\r\n`).join('') +
      (end ? 'a=end-of-candidates\r\n' : '');
    try {
      const response = await request(
        /** @type {string} */ (this.location),
        {
          method: 'PATCH',
          headers: headers(this.options, {
            'Content-Type': 'application/trickle-ice-sdpfrag',
            'If-Match': this.etag ?? '*',
          }),
          body,
        },
        { ...this.options, signal: undefined },
      );
      if (response.ok) {
        await response.body?.cancel();
        this.state = 'supported';
        this.etag = response.headers.get('ETag') ?? this.etag;
      } else if ([404, 405, 501].includes(response.status)) {
        await response.body?.cancel();
        this.state = 'unsupported';
      } else {
        this.error = await httpError(response, /** @type {string} */ (this.location));
        this.state = 'failed';
      }
    } catch (e) {
      this.error = e instanceof UringcastError ? e : new UringcastError(errorText(e), { cause: e });
      this.state = 'failed';
    }
    this.busy = false;
    if (this.state === 'supported') this.flush();
    else this.close();
  }
}

/**
 * The part of an sdpfrag that names the ICE session and the bundle's first
 * m-section (candidates of a max-bundle session all belong to it).
 * @param {string} sdp
 * @returns {string}
 */
function fragmentHeader(sdp) {
  const lines = sdp.split(/\r?\n/);
  const find = (/** @type {string} */ prefix) => lines.find((l) => l.startsWith(prefix));
  const group = find('a=group:BUNDLE');
  const mLine = find('m=');
  const mid = find('a=mid:');
  const out = [];
  if (group) out.push(group);
  if (mLine) out.push(mLine.replace(/^(m=\S+) \d+/, '$1 9'));
  if (mid) out.push(mid);
  for (const prefix of ['a=ice-ufrag:', 'a=ice-pwd:']) {
    const line = find(prefix);
    if (line) out.push(line);
  }
  return out.map((l) => `${l}\r\n`).join('');
}

/**
 * A stats() for one session: the numbers a person looks at, with bitrates
 * from the previous call.
 * @param {RTCPeerConnection} pc
 * @param {'send' | 'recv'} direction
 * @returns {() => Promise<SessionStats>}
 */
function statsReader(pc, direction) {
  /** @type {Map<string, {bytes: number, at: number}>} */
  const previous = new Map();
  const rtpType = direction === 'send' ? 'outbound-rtp' : 'inbound-rtp';
  return async () => {
    const report = await pc.getStats();
    /** @type {SessionStats} */
    const out = { timestamp: performance.now(), rtt: null, video: null, audio: null, report };
    /** @type {Map<string, any>} outbound id → remote-inbound-rtp */
    const remote = new Map();
    /** @type {any} */
    let pair = null;
    report.forEach((/** @type {any} */ s) => {
      if (s.type === 'remote-inbound-rtp' && s.localId) remote.set(s.localId, s);
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) ?? pair;
      if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
    report.forEach((/** @type {any} */ s) => {
      if (s.type !== rtpType || (s.kind !== 'audio' && s.kind !== 'video') || out[/** @type {'audio'|'video'} */ (s.kind)]) return;
      const sending = direction === 'send';
      const bytes = (sending ? s.bytesSent : s.bytesReceived) ?? 0;
      const last = previous.get(s.id);
      previous.set(s.id, { bytes, at: s.timestamp });
      const bitrate = last && s.timestamp > last.at ? ((bytes - last.bytes) * 8 * 1000) / (s.timestamp - last.at) : null;
      const back = remote.get(s.id);
      /** @type {MediaStats} */
      const media = {
        codec: report.get(s.codecId)?.mimeType?.split('/')[1] ?? null,
        packets: (sending ? s.packetsSent : s.packetsReceived) ?? 0,
        bytes,
        bitrate,
        packetsLost: (sending ? back?.packetsLost : s.packetsLost) ?? null,
        jitter: (sending ? back?.jitter : s.jitter) ?? null,
      };
      if (s.kind === 'video') {
        media.width = s.frameWidth ?? null;
        media.height = s.frameHeight ?? null;
        media.fps = s.framesPerSecond ?? null;
        media.frames = (sending ? s.framesEncoded : s.framesDecoded) ?? null;
        media.keyFrames = (sending ? s.keyFramesEncoded : s.keyFramesDecoded) ?? null;
        media.implementation = (sending ? s.encoderImplementation : s.decoderImplementation) ?? null;
        out.video = media;
      } else {
        media.level = sending ? null : (s.audioLevel ?? null);
        out.audio = media;
      }
      if (out.rtt === null && back?.roundTripTime !== undefined) out.rtt = back.roundTripTime * 1000;
    });
    if (pair?.currentRoundTripTime !== undefined) out.rtt = pair.currentRoundTripTime * 1000;
    return out;
  };
}
