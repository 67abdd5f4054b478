//! One H264 track's MP4 file (`shiguredo_mp4`'s sans-IO muxer): frames
//! (length-prefixed NAL units, as str0m's depacketizer gives them with
//! `is_avc`) are appended to the file as they come; the muxer keeps the
//! sample table and writes `moov` at the end. A sample's duration is the
//! time to the next one, so each frame is held until the next arrives;
//! the last one gets the one before's. The sample entry (`avc1`) comes
//! from the SPS and PPS of the first keyframe, and again when they change.
//! Opened as `.mp4.part`, renamed once finished, like the WebM files.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use shiguredo_mp4::TrackKind;
use shiguredo_mp4::bitstream::h264::{H264SampleEntryConfig, LengthSize, build_avc1_box};
use shiguredo_mp4::boxes::SampleEntry;
use shiguredo_mp4::mux::{Mp4FileMuxer, Sample};

use super::webm::{FileError, Finished};

/// The track's timescale: the RTP video clock.
const TIMESCALE: u32 = 90_000;

/// A frame written but not yet given to the muxer (its duration unknown).
#[derive(Debug)]
struct Held {
    offset: u64,
    size: usize,
    keyframe: bool,
    t_ns: u64,
    entry: Option<SampleEntry>,
}

/// An open `.mp4.part` file.
pub struct Mp4File {
    out: BufWriter<File>,
    muxer: Mp4FileMuxer,
    position: u64,
    /// The SPS and PPS of the current sample entry.
    params: Option<(Vec<u8>, Vec<u8>)>,
    held: Option<Held>,
    last_duration: u32,
    part: PathBuf,
    path: PathBuf,
    frames: u64,
    bytes: u64,
}

impl std::fmt::Debug for Mp4File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mp4File").field("part", &self.part).finish()
    }
}

impl Mp4File {
    /// Creates `path` + `.part`.
    pub fn create(path: &Path) -> Result<Self, FileError> {
        let part = path.with_extension("mp4.part");
        let io = |source| FileError::Io {
            path: part.clone(),
            source,
        };
        if let Some(dir) = part.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let muxer = Mp4FileMuxer::new().map_err(|_| FileError::Mux {
            path: part.clone(),
            what: "start an MP4 file",
        })?;
        let mut out = BufWriter::with_capacity(256 * 1024, File::create(&part).map_err(io)?);
        let head = muxer.initial_boxes_bytes();
        out.write_all(head).map_err(io)?;
        Ok(Self {
            position: head.len() as u64,
            out,
            muxer,
            params: None,
            held: None,
            last_duration: TIMESCALE / 30,
            part,
            path: path.to_owned(),
            frames: 0,
            bytes: 0,
        })
    }

    /// Appends one access unit at `t_ns` (increasing). The first must be a
    /// keyframe carrying SPS and PPS.
    pub fn write(&mut self, data: &[u8], t_ns: u64, keyframe: bool) -> Result<(), FileError> {
        let entry = match parameter_sets(data) {
            Some(params) if self.params.as_ref() != Some(&params) => {
                let avc1 = build_avc1_box(
                    std::slice::from_ref(&params.0),
                    std::slice::from_ref(&params.1),
                    &H264SampleEntryConfig {
                        length_size: LengthSize::FourBytes,
                    },
                )
                .map_err(|_| self.mux("read the SPS"))?;
                self.params = Some(params);
                Some(SampleEntry::Avc1(avc1))
            }
            _ if self.params.is_none() => return Err(self.mux("start without SPS and PPS")),
            _ => None,
        };
        self.out.write_all(data).map_err(|e| self.io(e))?;
        let held = Held {
            offset: self.position,
            size: data.len(),
            keyframe,
            t_ns,
            entry,
        };
        self.position += data.len() as u64;
        if let Some(previous) = self.held.replace(held) {
            let ticks = (t_ns.saturating_sub(previous.t_ns)) * u64::from(TIMESCALE) / 1_000_000_000;
            self.last_duration = u32::try_from(ticks).unwrap_or(u32::MAX).max(1);
            self.append(previous, self.last_duration)?;
        }
        self.frames += 1;
        self.bytes += data.len() as u64;
        Ok(())
    }

    fn append(&mut self, held: Held, duration: u32) -> Result<(), FileError> {
        let sample = Sample {
            track_kind: TrackKind::Video,
            sample_entry: held.entry,
            keyframe: held.keyframe,
            timescale: NonZeroU32::new(TIMESCALE).unwrap_or(NonZeroU32::MIN),
            duration,
            composition_time_offset: None,
            data_offset: held.offset,
            data_size: held.size,
        };
        self.muxer
            .append_sample(&sample)
            .map_err(|_| self.mux("add a sample"))
    }

    /// Writes `moov`, syncs, renames to the final name.
    pub fn finish(mut self) -> Result<Finished, FileError> {
        let last_ns = self.held.as_ref().map_or(0, |h| h.t_ns);
        if let Some(last) = self.held.take() {
            self.append(last, self.last_duration)?;
        }
        let boxes = self
            .muxer
            .finalize()
            .map_err(|_| FileError::Mux {
                path: self.part.clone(),
                what: "finalize the MP4 file",
            })?
            .clone();
        for (offset, bytes) in boxes.offset_and_bytes_pairs() {
            self.out
                .seek(SeekFrom::Start(offset))
                .and_then(|_| self.out.write_all(bytes))
                .map_err(|e| self.io(e))?;
        }
        let file = self.out.into_inner().map_err(|e| FileError::Io {
            path: self.part.clone(),
            source: e.into_error(),
        })?;
        let io = |source| FileError::Io {
            path: self.part.clone(),
            source,
        };
        file.sync_data().map_err(io)?;
        drop(file);
        std::fs::rename(&self.part, &self.path).map_err(io)?;
        Ok(Finished {
            path: self.path,
            frames: self.frames,
            bytes: self.bytes,
            last_ns,
        })
    }

    /// Gives up on the file: it is removed.
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.part);
    }

    fn io(&self, source: std::io::Error) -> FileError {
        FileError::Io {
            path: self.part.clone(),
            source,
        }
    }

    fn mux(&self, what: &'static str) -> FileError {
        FileError::Mux {
            path: self.part.clone(),
            what,
        }
    }
}

/// The NAL units of a length-prefixed (4-byte) access unit.
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len) as usize;
        let nal = tail.get(..len)?;
        rest = &tail[len..];
        Some(nal)
    })
}

/// Whether the access unit holds an IDR slice (NAL type 5).
pub fn is_idr(data: &[u8]) -> bool {
    nal_units(data).any(|nal| nal.first().is_some_and(|b| b & 0x1f == 5))
}

/// The access unit's first SPS (7) and PPS (8), if it has both.
pub fn parameter_sets(data: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let of = |kind: u8| {
        nal_units(data)
            .find(|nal| nal.first().is_some_and(|b| b & 0x1f == kind))
            .map(<[u8]>::to_vec)
    };
    Some((of(7)?, of(8)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avc(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for nal in nals {
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            out.extend_from_slice(nal);
        }
        out
    }

    #[test]
    fn an_access_unit_is_read_nal_by_nal() {
        let au = avc(&[&[0x67, 1, 2], &[0x68, 3], &[0x65, 9, 9, 9]]);
        assert_eq!(nal_units(&au).count(), 3);
        assert!(is_idr(&au));
        assert_eq!(parameter_sets(&au), Some((vec![0x67, 1, 2], vec![0x68, 3])));
        let inter = avc(&[&[0x41, 7]]);
        assert!(!is_idr(&inter));
        assert_eq!(parameter_sets(&inter), None);
        // A length past the end stops the walk.
        assert_eq!(nal_units(&[0, 0, 0, 9, 0x65]).count(), 0);
    }
}
