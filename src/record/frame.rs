//! Frames out of in-order RTP packets: which codecs are recorded, where a
//! frame starts and ends, and its bytes without the RTP payload format.
//! VP8 and H264 go through str0m's depacketizers (its `unversioned` API,
//! pinned; H264 as length-prefixed NAL units, a fresh depacketizer per
//! frame since its FU-A buffer survives a loss); VP9's descriptor is
//! stripped by [`super::vp9`]; an Opus packet is a frame as it is. A frame is one RTP timestamp, from a packet that starts
//! it through the marker bit, with no sequence gap: anything else is lost
//! (counted), and video then waits for a keyframe.

use std::sync::Arc;

use str0m::format::{Codec, CodecExtra};
use str0m::unversioned::{Depacketizer, H264Depacketizer, Vp8Depacketizer};

use super::vp9;
use crate::sfu::Forwarded;

/// A codec the recorder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recordable {
    Opus,
    Vp8,
    Vp9,
    H264,
}

impl Recordable {
    /// The recorder's kind of `codec`, or why it is not recorded.
    pub fn of(codec: Codec) -> Result<Self, &'static str> {
        match codec {
            Codec::Opus => Ok(Self::Opus),
            Codec::Vp8 => Ok(Self::Vp8),
            Codec::Vp9 => Ok(Self::Vp9),
            Codec::H264 => Ok(Self::H264),
            Codec::Av1 => Err("AV1 is not recorded yet (its depacketizer is not public in str0m)"),
            _ => Err("only Opus, VP8, VP9 and H264 are recorded"),
        }
    }

    /// The codec's name as ffprobe gives it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Opus => "opus",
            Self::Vp8 => "vp8",
            Self::Vp9 => "vp9",
            Self::H264 => "h264",
        }
    }

    /// The file's extension: WebM, or MP4 for H264 (WebM has no H264).
    pub fn extension(self) -> &'static str {
        match self {
            Self::H264 => "mp4",
            _ => "webm",
        }
    }
}

/// One frame, depacketized.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub source: u64,
    pub ts: u32,
    pub keyframe: bool,
    /// A keyframe's picture size, when the bitstream says it.
    pub size: Option<(u32, u32)>,
    pub data: Vec<u8>,
    /// When its first packet arrived.
    pub received: std::time::Instant,
}

/// What came of a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Assembled {
    /// Nothing yet (a frame under way).
    Nothing,
    Frame(Frame),
    /// A frame was given up (a gap, a missing start or end, bad bytes).
    Lost,
}

/// Collects one track's packets into frames.
#[derive(Debug)]
pub struct Assembler {
    codec: Recordable,
    parts: Vec<Arc<Forwarded>>,
    /// The packets since the last gap start mid-frame: skip to the next start.
    broken: bool,
}

impl Assembler {
    pub fn new(codec: Recordable) -> Self {
        Self {
            codec,
            parts: Vec::new(),
            broken: false,
        }
    }

    /// Packets were lost just before the next one.
    pub fn gap(&mut self) -> Assembled {
        self.broken = true;
        if self.parts.is_empty() {
            return Assembled::Nothing;
        }
        self.parts.clear();
        Assembled::Lost
    }

    /// The next packet in sequence order.
    pub fn push(&mut self, packet: Arc<Forwarded>) -> Assembled {
        if self.codec == Recordable::Opus {
            return Assembled::Frame(Frame {
                source: packet.source,
                ts: packet.ts,
                keyframe: true,
                size: None,
                data: packet.payload.to_vec(),
                received: packet.received,
            });
        }
        let mut lost = false;
        if let Some(first) = self.parts.first()
            && (first.ts != packet.ts || first.source != packet.source)
        {
            // The last frame never saw its marker.
            self.parts.clear();
            lost = true;
        }
        if self.parts.is_empty() && !self.is_head(&packet.payload) {
            self.broken = true;
            return if lost {
                Assembled::Lost
            } else {
                Assembled::Nothing
            };
        }
        self.broken = false;
        let tail = packet.marker;
        self.parts.push(packet);
        if !tail {
            return if lost {
                Assembled::Lost
            } else {
                Assembled::Nothing
            };
        }
        let parts = std::mem::take(&mut self.parts);
        match self.depacketize(&parts) {
            Some(frame) if !lost => Assembled::Frame(frame),
            // Two outcomes at once are rare (a lost tail, then a one-packet
            // frame); the lost one is counted, the frame dropped with it.
            _ => Assembled::Lost,
        }
    }

    fn is_head(&self, payload: &[u8]) -> bool {
        match self.codec {
            // S=1 and PID=0 (RFC 7741): str0m's `is_partition_head` takes
            // the start of any partition.
            Recordable::Vp8 => payload.first().is_some_and(|b| b & 0x17 == 0x10),
            Recordable::Vp9 => vp9::Descriptor::parse(payload).is_some_and(|d| d.begins),
            // Anything but the middle or end of a fragmented NAL unit.
            Recordable::H264 => H264Depacketizer::default().is_partition_head(payload),
            Recordable::Opus => true,
        }
    }

    fn depacketize(&self, parts: &[Arc<Forwarded>]) -> Option<Frame> {
        let first = parts.first()?;
        let mut data = Vec::with_capacity(parts.iter().map(|p| p.payload.len()).sum());
        let (keyframe, size) = match self.codec {
            Recordable::Vp8 => {
                let mut depacketizer = Vp8Depacketizer::default();
                let mut extra = CodecExtra::None;
                for part in parts {
                    depacketizer
                        .depacketize(&part.payload, &mut data, &mut extra)
                        .ok()?;
                }
                let keyframe = str0m::format::detect_vp8_keyframe(&first.payload);
                (keyframe, keyframe.then(|| vp8_size(&data)).flatten())
            }
            Recordable::Vp9 => {
                let head = vp9::Descriptor::parse(&first.payload)?;
                for part in parts {
                    let d = vp9::Descriptor::parse(&part.payload)?;
                    data.extend_from_slice(part.payload.get(d.header_len..)?);
                }
                (head.keyframe, head.size)
            }
            Recordable::H264 => {
                let mut depacketizer = H264Depacketizer::default();
                depacketizer.is_avc = true;
                let mut extra = CodecExtra::None;
                for part in parts {
                    depacketizer
                        .depacketize(&part.payload, &mut data, &mut extra)
                        .ok()?;
                }
                (super::mp4::is_idr(&data), None)
            }
            Recordable::Opus => (true, None),
        };
        Some(Frame {
            source: first.source,
            ts: first.ts,
            keyframe,
            size,
            data,
            received: first.received,
        })
    }
}

/// A VP8 keyframe's width and height (RFC 6386 §9.1: the start code
/// `9d 01 2a` at byte 3, then two 14-bit sizes).
pub fn vp8_size(frame: &[u8]) -> Option<(u32, u32)> {
    if frame.get(3..6)? != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let le = |i: usize| Some(u16::from_le_bytes([*frame.get(i)?, *frame.get(i + 1)?]) & 0x3fff);
    let (w, h) = (le(6)?, le(8)?);
    (w > 0 && h > 0).then_some((u32::from(w), u32::from(h)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::{packet_with, vp8_keyframe};
    use std::time::Instant;

    fn vp8(seq: u64, ts: u32, first: bool, marker: bool, body: &[u8]) -> Arc<Forwarded> {
        // X=0, S=1 on the first packet, PID=0.
        let mut payload = vec![if first { 0x10 } else { 0x00 }];
        payload.extend_from_slice(body);
        packet_with(1, seq, ts, marker, payload, Instant::now())
    }

    #[test]
    fn a_vp8_frame_is_its_packets_without_descriptors() {
        let key = vp8_keyframe(320, 240);
        let mut a = Assembler::new(Recordable::Vp8);
        assert_eq!(
            a.push(vp8(1, 90, true, false, &key[..6])),
            Assembled::Nothing
        );
        let Assembled::Frame(frame) = a.push(vp8(2, 90, false, true, &key[6..])) else {
            panic!("a frame");
        };
        assert_eq!(frame.data, key);
        assert!(frame.keyframe);
        assert_eq!(frame.size, Some((320, 240)));
        assert_eq!(frame.ts, 90);
    }

    #[test]
    fn a_gap_loses_the_frame_and_the_next_starts_clean() {
        let mut a = Assembler::new(Recordable::Vp8);
        a.push(vp8(1, 90, true, false, &[0x11, 0, 0]));
        assert_eq!(a.gap(), Assembled::Lost);
        // The rest of that frame is not a start: skipped.
        assert_eq!(a.push(vp8(3, 90, false, true, &[1])), Assembled::Nothing);
        let Assembled::Frame(f) = a.push(vp8(4, 180, true, true, &[0x11, 0, 0, 7])) else {
            panic!("a frame");
        };
        assert!(!f.keyframe);
        assert_eq!(f.data, [0x11, 0, 0, 7]);
    }

    #[test]
    fn a_frame_without_its_marker_is_lost() {
        let mut a = Assembler::new(Recordable::Vp8);
        a.push(vp8(1, 90, true, false, &[0x11, 0, 0]));
        assert_eq!(
            a.push(vp8(2, 180, true, false, &[0x11, 0, 0])),
            Assembled::Lost
        );
        assert!(matches!(
            a.push(vp8(3, 180, false, true, &[5])),
            Assembled::Frame(_)
        ));
    }

    #[test]
    fn an_opus_packet_is_a_frame() {
        let mut a = Assembler::new(Recordable::Opus);
        let p = packet_with(1, 5, 960, false, vec![0xfc, 1, 2], Instant::now());
        let Assembled::Frame(f) = a.push(p) else {
            panic!("a frame");
        };
        assert_eq!(
            (f.data.as_slice(), f.keyframe, f.ts),
            (&[0xfc, 1, 2][..], true, 960)
        );
    }

    #[test]
    fn codecs_without_a_writer_are_refused_with_a_reason() {
        assert_eq!(Recordable::of(Codec::Vp8), Ok(Recordable::Vp8));
        assert_eq!(Recordable::of(Codec::H264), Ok(Recordable::H264));
        assert!(Recordable::of(Codec::H265).is_err());
        assert!(Recordable::of(Codec::Av1).is_err());
    }
}
