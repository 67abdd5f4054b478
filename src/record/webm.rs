//! One track's WebM file, written through libwebm's muxer (the `webm`
//! crate) in file mode (Cues, Duration): opened as `<name>.webm.part`,
//! renamed to `<name>.webm` once finalized and synced, so whatever reads
//! the directory sees only complete files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use webm::mux::{AudioCodecId, Segment, SegmentBuilder, SegmentMode, VideoCodecId, Writer};

use super::frame::Recordable;

/// Bytes buffered before a write reaches the file.
const BUFFER: usize = 256 * 1024;

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the WebM muxer refused to {what}")]
    Mux { path: PathBuf, what: &'static str },
}

/// A finished file.
#[derive(Debug, Clone)]
pub struct Finished {
    pub path: PathBuf,
    pub frames: u64,
    pub bytes: u64,
    /// The last frame's time (ns).
    pub last_ns: u64,
}

/// An open `.part` file.
pub struct WebmFile {
    segment: Segment<BufWriter<File>>,
    track: u64,
    part: PathBuf,
    path: PathBuf,
    frames: u64,
    bytes: u64,
    last_ns: u64,
}

impl std::fmt::Debug for WebmFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebmFile")
            .field("part", &self.part)
            .finish()
    }
}

impl WebmFile {
    /// Creates `path` + `.part` for one track of `codec`; video needs its
    /// picture `size`.
    pub fn create(path: &Path, codec: Recordable, size: (u32, u32)) -> Result<Self, FileError> {
        let part = path.with_extension("webm.part");
        let io = |source| FileError::Io {
            path: part.clone(),
            source,
        };
        if let Some(dir) = part.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = File::create(&part).map_err(io)?;
        let writer = Writer::new(BufWriter::with_capacity(BUFFER, file));
        let mux = |what| FileError::Mux {
            path: part.clone(),
            what,
        };
        let builder = SegmentBuilder::new(writer)
            .and_then(|b| b.set_mode(SegmentMode::File))
            .and_then(|b| b.set_writing_app(concat!("uringcast ", env!("CARGO_PKG_VERSION"))))
            .map_err(|_| mux("start a segment"))?;
        let (builder, track) = match codec {
            Recordable::Opus => {
                let (b, t) = builder
                    .add_audio_track(48_000, 2, AudioCodecId::Opus, None)
                    .map_err(|_| mux("add an Opus track"))?;
                let b = b
                    .set_codec_private(t, &opus_head(2))
                    .map_err(|_| mux("set OpusHead"))?;
                (b, u64::from(t))
            }
            // H264 goes to MP4 (`super::mp4`), never here.
            Recordable::Vp8 | Recordable::Vp9 | Recordable::H264 => {
                let id = match codec {
                    Recordable::Vp9 => VideoCodecId::VP9,
                    _ => VideoCodecId::VP8,
                };
                let (b, t) = builder
                    .add_video_track(size.0, size.1, id, None)
                    .map_err(|_| mux("add a video track"))?;
                (b, u64::from(t))
            }
        };
        Ok(Self {
            segment: builder.build(),
            track,
            part,
            path: path.to_owned(),
            frames: 0,
            bytes: 0,
            last_ns: 0,
        })
    }

    /// Appends one frame at `t_ns` (increasing).
    pub fn write(&mut self, data: &[u8], t_ns: u64, keyframe: bool) -> Result<(), FileError> {
        self.segment
            .add_frame(self.track, data, t_ns, keyframe)
            .map_err(|_| FileError::Mux {
                path: self.part.clone(),
                what: "write a frame (is the disk full?)",
            })?;
        self.frames += 1;
        self.bytes += data.len() as u64;
        self.last_ns = t_ns;
        Ok(())
    }

    /// Writes the Cues and the Duration, syncs, renames to the final name.
    pub fn finish(self) -> Result<Finished, FileError> {
        let Self {
            segment,
            part,
            path,
            frames,
            bytes,
            last_ns,
            ..
        } = self;
        let io = |source| FileError::Io {
            path: part.clone(),
            source,
        };
        let writer = segment.finalize(None).map_err(|_| FileError::Mux {
            path: part.clone(),
            what: "finalize the segment",
        })?;
        let file = writer
            .into_inner()
            .into_inner()
            .map_err(|e| io(e.into_error()))?;
        file.sync_data().map_err(io)?;
        drop(file);
        std::fs::rename(&part, &path).map_err(io)?;
        if let Some(dir) = path.parent()
            && let Ok(dir) = File::open(dir)
        {
            // The rename itself reaches the disk (best effort).
            let _ = dir.sync_all();
        }
        Ok(Finished {
            path,
            frames,
            bytes,
            last_ns,
        })
    }

    /// Gives up on the file: it is removed.
    pub fn discard(self) {
        let part = self.part.clone();
        let mut inner = self
            .segment
            .finalize(None)
            .unwrap_or_else(|w| w)
            .into_inner();
        let _ = inner.flush();
        drop(inner);
        let _ = std::fs::remove_file(part);
    }
}

/// The Opus identification header (RFC 7845 §5.1) Matroska's CodecPrivate
/// carries: version 1, `channels`, no pre-skip, 48 kHz, no gain, family 0.
pub fn opus_head(channels: u8) -> [u8; 19] {
    let mut head = [0u8; 19];
    head[..8].copy_from_slice(b"OpusHead");
    head[8] = 1;
    head[9] = channels;
    head[12..16].copy_from_slice(&48_000u32.to_le_bytes());
    head
}
