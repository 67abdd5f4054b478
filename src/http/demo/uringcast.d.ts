// Types for uringcast.js, the WHIP/WHEP browser client served at /uringcast.js.

/** The video codecs uringcast forwards, in the order a picker shows them. */
export declare const VIDEO_CODECS: readonly ['VP8', 'VP9', 'H264', 'AV1'];

/** An HTTP or signaling failure; `message` is the server's problem `detail` when it sent one. */
export declare class UringcastError extends Error {
  constructor(
    message: string,
    info?: {
      status?: number;
      detail?: string | null;
      problem?: unknown;
      retryAfter?: number | null;
      url?: string | null;
      cause?: unknown;
    },
  );
  readonly name: 'UringcastError';
  /** HTTP status; 0 when there was no HTTP answer (network error, timeout, abort). */
  status: number;
  /** The problem's `detail` (or the body's text), if any. */
  detail: string | null;
  /** The parsed RFC 9457 `application/problem+json` body, if any. */
  problem: any;
  /** Milliseconds from `Retry-After`, if the server sent it. */
  retryAfter: number | null;
  /** The URL the request went to. */
  url: string | null;
}

export interface RetryInfo {
  /** The retry about to be made (1, 2, ...). */
  attempt: number;
  /** How many retries are allowed in all. */
  retries: number;
  /** Milliseconds until it is made. */
  delay: number;
  /** The answer that is retried (409 or 503 with Retry-After). */
  error: UringcastError;
}

export interface CommonOptions {
  /** Bearer token sent on POST, PATCH and DELETE. */
  token?: string;
  /** Send the offer at once and every candidate with PATCH (default false: wait for ICE gathering). */
  trickle?: boolean;
  /** Longest wait for ICE gathering before the offer is sent, ms (default 2000). */
  iceGatheringTimeout?: number;
  /** Longest wait for an HTTP answer, ms (default 10000). */
  requestTimeout?: number;
  /** Retries of a 409/503 that carries Retry-After (default 5). */
  retries?: number;
  /** Longest wait between retries, ms (default 10000). */
  maxRetryDelay?: number;
  /** Called before each wait for a retry. */
  onRetry?: (info: RetryInfo) => void;
  /** Aborts the signaling (not a session already set up: use stop()). */
  signal?: AbortSignal;
  /** Extra RTCPeerConnection settings (iceServers, ...). */
  rtcConfiguration?: RTCConfiguration;
}

export interface PublishOptions extends CommonOptions {
  /** Video codec: 'VP8', 'VP9', 'H264', 'AV1' or a mime type; set with setCodecPreferences. */
  codec?: string;
  /** Audio codec, e.g. 'opus'. */
  audioCodec?: string;
}

export interface WatchOptions extends CommonOptions {
  /** Receive audio (default true). */
  audio?: boolean;
  /** Receive video (default true). */
  video?: boolean;
}

export interface MediaStats {
  /** Codec name ('VP8', 'opus', ...). */
  codec: string | null;
  /** RTP packets sent or received. */
  packets: number;
  /** Payload bytes sent or received. */
  bytes: number;
  /** Bits/s since the previous stats() call; null on the first. */
  bitrate: number | null;
  /** Lost packets: counted here when receiving, as the server reports when sending. */
  packetsLost: number | null;
  /** Seconds. */
  jitter: number | null;
  width?: number | null;
  height?: number | null;
  fps?: number | null;
  /** Frames decoded (watch) or encoded (publish). */
  frames?: number | null;
  keyFrames?: number | null;
  /** Encoder or decoder in use. */
  implementation?: string | null;
  /** Received audio level, 0..1. */
  level?: number | null;
}

export interface SessionStats {
  /** performance.now() of the sample. */
  timestamp: number;
  /** Round-trip time to the server, ms. */
  rtt: number | null;
  video: MediaStats | null;
  audio: MediaStats | null;
  /** The raw report. */
  report: RTCStatsReport;
}

/** Whether candidates went out with PATCH: 'unused' when the offer carried them all. */
export type TrickleState = 'unused' | 'pending' | 'supported' | 'unsupported' | 'failed';

export interface Session {
  pc: RTCPeerConnection;
  /** The session URL (DELETE and PATCH target), absolute; null if the server did not expose it. */
  location: string | null;
  /** The session's ETag, if exposed. */
  etag: string | null;
  /** Stops sending, DELETEs the session, then closes the peer connection; resolves true when the server confirmed the DELETE. Idempotent. */
  stop(): Promise<boolean>;
  /** The numbers a person looks at; bitrates from the previous call. */
  stats(): Promise<SessionStats>;
  /** Where trickling stands. */
  trickle(): TrickleState;
}

export interface WatchSession extends Session {
  /** Gets the received tracks as soon as the answer is applied. */
  stream: MediaStream;
}

/** The entries of VIDEO_CODECS this browser can send. */
export declare function videoCodecs(): string[];

/** Publishes the first audio and first video track of `mediaStream` with WHIP. */
export declare function publish(
  url: string,
  mediaStream: MediaStream,
  options?: PublishOptions,
): Promise<Session>;

/** Watches a room with WHEP; a 409 with Retry-After (nothing published yet) is retried. */
export declare function watch(url: string, options?: WatchOptions): Promise<WatchSession>;

/** The error for a non-2xx answer: `message` is the problem's `detail`. */
export declare function problemError(response: Response, url: string): Promise<UringcastError>;

/** What a conference participant publishes. */
export type Source = 'microphone' | 'camera' | 'screen';

export interface RoomOptions {
  /** Bearer token: a JWT naming the room (its `sub` is the participant id, `name` its display name). */
  token?: string;
  /** The participant id to ask for when the server runs without auth. */
  id?: string;
  /** What the others see of this participant (display name, muted, ...). */
  info?: object;
  /** Extra RTCPeerConnection settings (iceServers, ...). */
  rtcConfiguration?: RTCConfiguration;
}

/** Another participant as the room shows it. */
export interface RoomParticipant {
  id: string;
  info: any;
  tracks: { id: number; source: Source; kind: 'audio' | 'video' }[];
}

/** The `detail` of a `track` or `trackEnded` event. */
export interface RoomTrack {
  participant: string | null;
  source: Source | null;
  kind: 'audio' | 'video' | null;
  trackId: number | null;
  mid: string;
  /** The remote track (`track` events only). */
  track?: MediaStreamTrack;
  /** false for `trackEnded`. */
  active: boolean;
}

/**
 * A participant in a conference room. Events are `CustomEvent`s whose
 * `detail` is the server's event data: `snapshot`, `participantJoined`,
 * `participantLeft`, `trackPublished`, `trackUnpublished`, `info`,
 * `broadcast` ({from, payload}), `message` ({from, payload}), `joinRequest`,
 * `joinResolved`, `rejected`, `waiting`; `track` and `trackEnded`
 * ({@link RoomTrack}); `error` ({error}) when a renegotiation failed.
 */
export declare class Room extends EventTarget {
  /**
   * Joins `room` on the server at `server` (an origin; '' for this page's).
   * In a room with approval it resolves once an owner admits this
   * participant, and rejects with the reason if one refuses.
   */
  static join(server: string, room: string, options?: RoomOptions): Promise<Room>;
  readonly name: string;
  /** This participant's public id. */
  readonly id: string;
  /** This participant's URL: its handle, keep it secret. */
  readonly url: string;
  /** Every other participant, by id. */
  participants: Map<string, RoomParticipant>;
  /** What this page publishes, by source. */
  published: Map<Source, MediaStreamTrack>;
  publishPc: RTCPeerConnection | null;
  subscribePc: RTCPeerConnection | null;
  /**
   * Publishes `track` as `source`, replacing what was published as it (a
   * replaced track is swapped without renegotiation; a new source
   * renegotiates the publish transport with PATCH).
   */
  publish(source: Source, track: MediaStreamTrack): Promise<void>;
  /** Stops publishing `source`. */
  unpublish(source: Source): Promise<void>;
  /** What to receive of one participant; the default is everything. */
  subscribe(participantId: string, sources: Partial<Record<Source, boolean>>): Promise<void>;
  /** Sets this participant's info; every other one gets an `info` event. */
  updateInfo(info: object): Promise<void>;
  /** To every other participant as a `broadcast` event (16 KiB at most). */
  broadcast(payload: unknown): Promise<void>;
  /** To one participant only, as a `message` event (16 KiB at most). */
  send(participantId: string, payload: unknown): Promise<void>;
  /** An owner admits a joiner. */
  approve(participantId: string): Promise<void>;
  /** An owner refuses a joiner. */
  reject(participantId: string, reason?: string): Promise<void>;
  /** Leaves: both transports close, the others see it leave. */
  leave(): Promise<void>;
}
