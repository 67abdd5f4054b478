// Shared by the demo pages: query parameters, links, formatting, status.
// @ts-check

export const params = new URLSearchParams(location.search);

/** Where WHIP/WHEP requests go: `?server=` (another uringcast) or this page's origin. */
export const server = (params.get('server') || location.origin).replace(/\/+$/, '');

/** Room names the server takes (see the HTTP API). */
export const ROOM_PATTERN = '[A-Za-z0-9._\\-]{1,64}';
const roomRe = new RegExp(`^${ROOM_PATTERN}$`);

/** @param {string} room */
export const validRoom = (room) => roomRe.test(room);

/** The room from `?room=`, else `fallback`. */
export function initialRoom(fallback = 'demo') {
  const room = params.get('room');
  return room && validRoom(room) ? room : fallback;
}

/**
 * @param {'whip' | 'whep'} kind
 * @param {string} room
 */
export const endpoint = (kind, room) => `${server}/${kind}/${encodeURIComponent(room)}`;

/**
 * A link to one of the demo pages that keeps `?server=`.
 * @param {string} path
 * @param {Record<string, string>} [extra]
 */
export function pageLink(path, extra = {}) {
  const query = new URLSearchParams(extra);
  if (params.get('server')) query.set('server', server);
  const q = query.toString();
  return `${path}${q ? `?${q}` : ''}`;
}

/**
 * Puts `room` into the address bar (so the page can be shared or reloaded).
 * @param {Record<string, string>} values
 */
export function syncUrl(values) {
  const query = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(values)) query.set(k, v);
  history.replaceState(null, '', `${location.pathname}?${query}`);
}

/** Marks the current page in the header and makes its links keep `?server=`. */
export function wireNav() {
  for (const a of document.querySelectorAll('header nav a[data-page]')) {
    const link = /** @type {HTMLAnchorElement} */ (a);
    const path = link.getAttribute('href') ?? '/';
    if (path.startsWith('/') && !path.startsWith('/v1/')) link.href = pageLink(path);
    if (link.pathname === location.pathname) link.setAttribute('aria-current', 'page');
  }
  const stats = /** @type {HTMLAnchorElement | null} */ (document.querySelector('header nav a[href="/v1/stats"]'));
  if (stats) stats.href = `${server}/v1/stats`;
}

/**
 * @param {HTMLElement} el
 * @param {'idle' | 'connecting' | 'waiting' | 'live' | 'error'} state
 * @param {string} text
 */
export function setStatus(el, state, text) {
  el.dataset.state = state;
  el.textContent = text;
}

/**
 * @param {HTMLElement} el
 * @param {unknown} error
 */
export function showError(el, error) {
  if (error === null || error === undefined) {
    el.hidden = true;
    el.textContent = '';
    return;
  }
  const e = /** @type {any} */ (error);
  const status = typeof e.status === 'number' && e.status > 0 ? ` (HTTP ${e.status})` : '';
  el.textContent = `${e.message ?? String(error)}${status}`;
  el.hidden = false;
}

/** @param {number | null | undefined} bps */
export function formatBitrate(bps) {
  if (bps === null || bps === undefined || !Number.isFinite(bps)) return '–';
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} Mb/s`;
  return `${Math.round(bps / 1e3)} kb/s`;
}

/** @param {number | null | undefined} ms */
export function formatMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

/** @param {number | null | undefined} n */
export const formatNumber = (n) => (n === null || n === undefined || !Number.isFinite(n) ? '–' : String(Math.round(n)));

/**
 * The overlay text for one side's stats.
 * @param {import('/uringcast.js').SessionStats} s
 * @param {string[]} [extra]
 */
export function overlayText(s, extra = []) {
  const v = s.video;
  const a = s.audio;
  const lines = [];
  if (v) {
    const size = v.width && v.height ? `${v.width}×${v.height}` : '–×–';
    lines.push(`${v.codec ?? 'video'} ${size} · ${formatNumber(v.fps)} fps`);
  }
  const rates = [];
  if (v) rates.push(`${formatBitrate(v.bitrate)} video`);
  if (a) rates.push(`${formatBitrate(a.bitrate)} ${a.codec ?? 'audio'}`);
  if (rates.length) lines.push(rates.join(' · '));
  const lost = (v?.packetsLost ?? 0) + (a?.packetsLost ?? 0);
  lines.push(`lost ${lost} · RTT ${formatMs(s.rtt)}`);
  return [...lines, ...extra].join('\n');
}

/**
 * State the tests (and a curious person in the console) can read.
 * @param {Record<string, unknown>} values
 */
export function expose(values) {
  const w = /** @type {any} */ (window);
  w.uringcastDemo = Object.assign(w.uringcastDemo ?? {}, values);
}
