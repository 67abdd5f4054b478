// What every browser script here starts Chromium with: the flags of
// DESIGN.md ("Testing on one machine") — headless, no sandbox (root), no
// background networking (the machine has no network), fake camera and
// microphone, loopback allowed for WebRTC — plus EXTRA_ARGS from the
// environment (space-separated) and the script's own `extra`.

/** @param {string[]} [extra] */
export function chromiumArgs(extra = []) {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    '--allow-loopback-in-peer-connection',
    ...extra,
    ...(process.env.EXTRA_ARGS || '').split(' ').filter(Boolean),
  ];
}
