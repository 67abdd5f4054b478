// A small PNG reader (8-bit RGB/RGBA, non-interlaced: what Chromium's
// screenshots are) and the pixel statistics the test asserts on.

import { inflateSync } from 'node:zlib';

/**
 * @param {Buffer} png
 * @returns {{width: number, height: number, channels: number, pixels: Buffer}}
 */
export function decodePng(png) {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (!png.subarray(0, 8).equals(signature)) throw new Error('not a PNG');
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const data = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const body = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const depth = body[8];
      const colorType = body[9];
      const interlace = body[12];
      channels = { 2: 3, 6: 4 }[colorType] ?? 0;
      if (depth !== 8 || !channels || interlace !== 0) {
        throw new Error(`unsupported PNG: depth ${depth}, color type ${colorType}, interlace ${interlace}`);
      }
    } else if (type === 'IDAT') {
      data.push(body);
    } else if (type === 'IEND') {
      break;
    }
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * channels;
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = pixels.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : null;
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[x - channels] : 0;
      const b = prev ? prev[x] : 0;
      const c = prev && x >= channels ? prev[x - channels] : 0;
      let v = line[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`bad PNG filter ${filter}`);
      out[x] = v & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

/**
 * Mean and standard deviation of luma inside `box`, leaving out `holes`
 * (boxes in the same page coordinates, e.g. overlays drawn over a video).
 * @param {{width: number, height: number, channels: number, pixels: Buffer}} image
 * @param {{x: number, y: number, width: number, height: number}} box
 * @param {{x: number, y: number, width: number, height: number}[]} holes
 */
export function lumaStats(image, box, holes = []) {
  const inside = (/** @type {number} */ x, /** @type {number} */ y, /** @type {typeof box} */ r) =>
    x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
  const x0 = Math.max(0, Math.floor(box.x));
  const y0 = Math.max(0, Math.floor(box.y));
  const x1 = Math.min(image.width, Math.ceil(box.x + box.width));
  const y1 = Math.min(image.height, Math.ceil(box.y + box.height));
  let n = 0;
  let sum = 0;
  let squares = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      if (holes.some((h) => inside(x, y, h))) continue;
      const i = (y * image.width + x) * image.channels;
      const luma = 0.2126 * image.pixels[i] + 0.7152 * image.pixels[i + 1] + 0.0722 * image.pixels[i + 2];
      n += 1;
      sum += luma;
      squares += luma * luma;
    }
  }
  const mean = n ? sum / n : 0;
  const variance = n ? squares / n - mean * mean : 0;
  return { pixels: n, mean, stddev: Math.sqrt(Math.max(0, variance)) };
}
