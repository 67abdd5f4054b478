// The landing page: pick a room, see what is live, copy a snippet.
// @ts-check

import { ROOM_PATTERN, formatBitrate, initialRoom, pageLink, server, validRoom, wireNav } from '/demo/ui.js';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

wireNav();
const room = /** @type {HTMLInputElement} */ ($('room'));
room.pattern = ROOM_PATTERN;
room.value = initialRoom();

$('join').addEventListener('submit', (event) => {
  event.preventDefault();
  const submitter = /** @type {HTMLButtonElement | null} */ (/** @type {SubmitEvent} */ (event).submitter);
  const to = submitter?.value === 'watch' ? '/watch' : '/publish';
  if (validRoom(room.value)) location.href = pageLink(to, { room: room.value });
});

for (const a of document.querySelectorAll('main a[data-page]')) {
  const link = /** @type {HTMLAnchorElement} */ (a);
  link.href = pageLink(link.getAttribute('href') ?? '/');
}
/** @type {HTMLAnchorElement} */ ($('js')).href = `${server}/uringcast.js`;
/** @type {HTMLAnchorElement} */ ($('dts')).href = `${server}/uringcast.d.ts`;

$('snippet').textContent = `import { publish, watch } from '${server}/uringcast.js';

// Publish the camera and microphone
const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
const live = await publish('${server}/whip/myroom', media, { codec: 'VP8' });

// Watch it somewhere else
const viewer = await watch('${server}/whep/myroom');
video.srcObject = viewer.stream;

// Later: ends the session on the server (DELETE)
await live.stop();`;

const list = $('rooms');
const empty = $('no-rooms');

async function refresh() {
  try {
    const response = await fetch(`${server}/v1/stats`, { cache: 'no-store' });
    const stats = await response.json();
    /** @type {{name: string, sessions: number, has_publisher: boolean, bitrate_in_bps: number}[]} */
    const rooms = (stats.rooms ?? []).filter((/** @type {any} */ r) => r.has_publisher);
    list.replaceChildren(
      ...rooms.map((r) => {
        const li = document.createElement('li');
        const name = document.createElement('a');
        name.href = pageLink('/watch', { room: r.name });
        name.textContent = r.name;
        const meta = document.createElement('span');
        meta.className = 'meta';
        const viewers = Math.max(0, r.sessions - 1);
        meta.textContent = `${viewers} watching · ${formatBitrate(r.bitrate_in_bps)}`;
        li.append(name, meta);
        return li;
      }),
    );
    empty.hidden = rooms.length > 0;
  } catch {
    empty.hidden = false;
  }
}

refresh();
setInterval(refresh, 3000);
