//! The VP9 RTP payload descriptor (RFC 9628 §4.2), read to strip it: its
//! length, whether the packet begins a frame, whether that frame is a
//! keyframe of the base spatial layer, and the picture size the
//! scalability structure announces. str0m's VP9 depacketizer is not
//! public, so this small reader stands in for it.

/// What the recorder needs of one packet's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// Bytes before the VP9 bitstream.
    pub header_len: usize,
    /// B: the packet begins a (layer) frame.
    pub begins: bool,
    /// B, not P (no inter-picture prediction), spatial layer 0.
    pub keyframe: bool,
    /// The largest spatial layer's size from the scalability structure.
    pub size: Option<(u32, u32)>,
}

impl Descriptor {
    /// `None` when the descriptor is cut short.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let mut at = Reader {
            data: payload,
            at: 0,
        };
        let b0 = at.byte()?;
        let bit = |mask: u8| b0 & mask != 0;
        let (picture_id, predicted, layers, flexible) =
            (bit(0x80), bit(0x40), bit(0x20), bit(0x10));
        let (begins, scalability) = (bit(0x08), bit(0x02));
        if picture_id && at.byte()? & 0x80 != 0 {
            at.byte()?; // the 15-bit form's second byte
        }
        let mut spatial_id = 0;
        if layers {
            spatial_id = (at.byte()? >> 1) & 0x07;
            if !flexible {
                at.byte()?; // TL0PICIDX
            }
        }
        if flexible && predicted {
            // Up to three P_DIFFs, each saying whether another follows.
            for _ in 0..3 {
                if at.byte()? & 0x01 == 0 {
                    break;
                }
            }
        }
        let mut size = None;
        if scalability {
            let ss = at.byte()?;
            let spatial_layers = usize::from(ss >> 5) + 1;
            if ss & 0x10 != 0 {
                for _ in 0..spatial_layers {
                    size = Some((u32::from(at.u16()?), u32::from(at.u16()?)));
                }
            }
            if ss & 0x08 != 0 {
                for _ in 0..at.byte()? {
                    let references = (at.byte()? >> 2) & 0x03;
                    for _ in 0..references {
                        at.byte()?;
                    }
                }
            }
        }
        Some(Self {
            header_len: at.at,
            begins,
            keyframe: begins && !predicted && spatial_id == 0,
            size: size.filter(|(w, h)| *w > 0 && *h > 0),
        })
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyframe_with_a_scalability_structure() {
        // I (15-bit id), B, E, V; SS: one layer, Y, G with one entry of
        // one reference.
        let payload = [
            0x8e, 0x80, 0x01, 0x18, 0x05, 0x00, 0x02, 0xd0, 0x01, 0x04, 0x11, 0x9a,
        ];
        let d = Descriptor::parse(&payload).expect("a descriptor");
        assert_eq!(d.header_len, 11);
        assert!(d.begins && d.keyframe);
        assert_eq!(d.size, Some((1280, 720)));
    }

    #[test]
    fn an_inter_frame_in_flexible_mode_with_layers() {
        // I (7-bit), P, L, F, B; layer byte SID=1; two P_DIFFs.
        let payload = [0xf8, 0x05, 0x02, 0x03, 0x04, 0xaa];
        let d = Descriptor::parse(&payload).expect("a descriptor");
        assert_eq!((d.header_len, d.begins, d.keyframe), (5, true, false));
        assert_eq!(d.size, None);
    }

    #[test]
    fn a_cut_descriptor_is_refused() {
        assert_eq!(Descriptor::parse(&[0x8a]), None);
        assert_eq!(Descriptor::parse(&[]), None);
        // V=1 and Y=1 but the sizes are missing.
        assert_eq!(Descriptor::parse(&[0x0a, 0x10, 0x05]), None);
    }
}
