//! Synthetic media payloads that carry their own identity: every payload ends
//! with a trailer (publisher tag, kind, sequence, send time, length, checksum)
//! so a viewer can tell loss, duplicates, reordering, corruption and one-way
//! latency without any side channel. Video payloads start with a valid VP8
//! payload descriptor (RFC 7741) with a picture id and the keyframe bit.

use std::time::{SystemTime, UNIX_EPOCH};

/// Marks a uringcast trailer.
pub const MAGIC: [u8; 4] = *b"UCST";
/// Bytes the trailer takes at the end of every payload.
pub const TRAILER_LEN: usize = 4 + 4 + 1 + 4 + 8 + 2 + 4;

/// Kind byte in the trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Audio = 1,
    Video = 2,
}

/// What a trailer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    pub tag: u32,
    pub kind: Kind,
    pub seq: u32,
    pub sent_us: u64,
}

/// Microseconds since the Unix epoch (one clock for every process on a host).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A VP8 packet's payload: descriptor, (on a frame's first packet) the VP8
/// payload header, deterministic filler, trailer; `size` bytes in all.
pub fn vp8_payload(
    picture_id: u16,
    first_in_frame: bool,
    keyframe: bool,
    trailer: Trailer,
    size: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.max(32));
    // X=1, S=start of partition 0, PID=0.
    out.push(if first_in_frame { 0x90 } else { 0x80 });
    // I=1: a picture id follows, 15 bits (M=1).
    out.push(0x80);
    out.push(0x80 | ((picture_id >> 8) as u8 & 0x7f));
    out.push(picture_id as u8);
    if first_in_frame {
        if keyframe {
            // P=0 (key frame), show_frame=1; start code; 320x240.
            out.extend_from_slice(&[0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]);
        } else {
            out.extend_from_slice(&[0x11, 0x00, 0x00]);
        }
    }
    finish(out, trailer, size)
}

/// An audio payload of `size` bytes: a valid Opus TOC byte (RFC 6716
/// §3.1: CELT fullband, 20 ms, stereo, one frame), so that Opus parsers
/// (ffmpeg's, reading a recording) take each packet as one 20 ms frame,
/// then filler. The server does not look inside.
pub fn audio_payload(trailer: Trailer, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    out.push(OPUS_TOC);
    finish(out, trailer, size)
}

/// The TOC byte every audio payload starts with.
pub const OPUS_TOC: u8 = 0xfc;

/// The largest payload: its length must fit the trailer's 16-bit field.
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

fn finish(mut out: Vec<u8>, trailer: Trailer, size: usize) -> Vec<u8> {
    let size = size.min(MAX_PAYLOAD);
    let body_len = size.max(out.len() + TRAILER_LEN) - TRAILER_LEN;
    let mut i = out.len();
    while out.len() < body_len {
        out.push((trailer.seq as usize).wrapping_add(i) as u8);
        i += 1;
    }
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&trailer.tag.to_be_bytes());
    out.push(trailer.kind as u8);
    out.extend_from_slice(&trailer.seq.to_be_bytes());
    out.extend_from_slice(&trailer.sent_us.to_be_bytes());
    out.extend_from_slice(&(out.len() as u16 + 2).to_be_bytes());
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_be_bytes());
    out
}

/// Why a payload did not check out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    NoTrailer,
    BadLength,
    BadChecksum,
    BadKind,
}

/// Reads and verifies a payload's trailer: the checksum covers every byte
/// before it, so a payload that passes arrived byte-identical.
pub fn check(payload: &[u8]) -> Result<Trailer, PayloadError> {
    let start = payload
        .len()
        .checked_sub(TRAILER_LEN)
        .ok_or(PayloadError::NoTrailer)?;
    let t = payload.get(start..).ok_or(PayloadError::NoTrailer)?;
    if t.get(..4) != Some(&MAGIC[..]) {
        return Err(PayloadError::NoTrailer);
    }
    let field = |range: std::ops::Range<usize>| t.get(range).ok_or(PayloadError::NoTrailer);
    let len = u16::from_be_bytes(
        field(21..23)?
            .try_into()
            .map_err(|_| PayloadError::NoTrailer)?,
    );
    if usize::from(len) != payload.len() - 4 {
        return Err(PayloadError::BadLength);
    }
    let sum = u32::from_be_bytes(
        field(23..27)?
            .try_into()
            .map_err(|_| PayloadError::NoTrailer)?,
    );
    if fnv1a(&payload[..payload.len() - 4]) != sum {
        return Err(PayloadError::BadChecksum);
    }
    let kind = match t.get(8) {
        Some(1) => Kind::Audio,
        Some(2) => Kind::Video,
        _ => return Err(PayloadError::BadKind),
    };
    let u32_at = |r| {
        field(r)
            .and_then(|b| b.try_into().map_err(|_| PayloadError::NoTrailer))
            .map(u32::from_be_bytes)
    };
    Ok(Trailer {
        tag: u32_at(4..8)?,
        kind,
        seq: u32_at(9..13)?,
        sent_us: u64::from_be_bytes(
            field(13..21)?
                .try_into()
                .map_err(|_| PayloadError::NoTrailer)?,
        ),
    })
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer(seq: u32) -> Trailer {
        Trailer {
            tag: 7,
            kind: Kind::Video,
            seq,
            sent_us: 123_456,
        }
    }

    #[test]
    fn payloads_round_trip_and_have_the_asked_size() {
        let p = vp8_payload(300, true, true, trailer(5), 1100);
        assert_eq!(p.len(), 1100);
        assert_eq!(p[0], 0x90);
        assert_eq!(&p[7..10], &[0x9d, 0x01, 0x2a]);
        assert_eq!(check(&p), Ok(trailer(5)));
        let a = audio_payload(
            Trailer {
                kind: Kind::Audio,
                ..trailer(9)
            },
            100,
        );
        assert_eq!((a.len(), a[0]), (100, OPUS_TOC));
        assert_eq!(check(&a).map(|t| t.kind), Ok(Kind::Audio));
    }

    #[test]
    fn oversized_requests_are_clamped_to_what_the_trailer_can_describe() {
        let p = audio_payload(trailer(1), 70_000);
        assert_eq!(p.len(), MAX_PAYLOAD);
        assert!(check(&p).is_ok());
    }

    #[test]
    fn any_flipped_byte_or_truncation_is_caught() {
        let p = vp8_payload(1, false, false, trailer(77), 400);
        for i in 0..p.len() {
            let mut bad = p.clone();
            bad[i] ^= 0x01;
            assert!(check(&bad).is_err(), "flip at {i} went unnoticed");
        }
        for end in 0..p.len() {
            assert!(check(&p[..end]).is_err());
        }
    }
}
