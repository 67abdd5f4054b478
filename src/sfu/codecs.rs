//! Which codecs the server negotiates (`--audio-codecs`, `--video-codecs`):
//! every `Rtc` the core builds — an answer to a WHIP, WHEP or publish offer,
//! a conference subscribe offer — carries only these, so an offer without
//! one of them is refused (422) and a browser never picks another.

use str0m::RtcConfig;
use str0m::format::Codec;

/// The codecs every session may negotiate, in order of preference within
/// each kind. Built from the configuration; never empty in either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecList {
    audio: Vec<Codec>,
    video: Vec<Codec>,
}

/// Why a codec list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecListError {
    #[error("no {0} codec allowed: name at least one")]
    Empty(&'static str),
    #[error("{0} is not an {1} codec this server forwards")]
    WrongKind(String, &'static str),
}

impl CodecList {
    /// Audio codecs uringcast forwards.
    pub const AUDIO: [Codec; 4] = [Codec::Opus, Codec::PCMU, Codec::PCMA, Codec::G722];
    /// Video codecs uringcast forwards.
    pub const VIDEO: [Codec; 5] = [Codec::Vp8, Codec::Vp9, Codec::H264, Codec::H265, Codec::Av1];

    /// An allow-list: `audio` and `video` must each name at least one codec
    /// of their kind (duplicates are dropped, the first place kept).
    pub fn new(audio: &[Codec], video: &[Codec]) -> Result<Self, CodecListError> {
        Ok(Self {
            audio: Self::checked(audio, &Self::AUDIO, "audio")?,
            video: Self::checked(video, &Self::VIDEO, "video")?,
        })
    }

    fn checked(
        list: &[Codec],
        allowed: &[Codec],
        kind: &'static str,
    ) -> Result<Vec<Codec>, CodecListError> {
        let mut out: Vec<Codec> = Vec::new();
        for codec in list {
            if !allowed.contains(codec) {
                return Err(CodecListError::WrongKind(codec.to_string(), kind));
            }
            if !out.contains(codec) {
                out.push(*codec);
            }
        }
        if out.is_empty() {
            return Err(CodecListError::Empty(kind));
        }
        Ok(out)
    }

    /// What str0m offers by default (Opus; VP8, H264, H265, VP9, AV1): the
    /// server's behaviour without `--audio-codecs` / `--video-codecs`.
    pub fn str0m_default() -> Self {
        Self {
            audio: vec![Codec::Opus],
            video: vec![Codec::Vp8, Codec::Vp9, Codec::H264, Codec::H265, Codec::Av1],
        }
    }

    /// `config` with only these codecs enabled.
    pub fn apply(&self, config: RtcConfig) -> RtcConfig {
        let mut config = config.clear_codecs();
        for codec in self.audio.iter().chain(&self.video) {
            config = match codec {
                Codec::Opus => config.enable_opus(true, false),
                Codec::PCMU => config.enable_pcmu(true, false),
                Codec::PCMA => config.enable_pcma(true, false),
                Codec::G722 => config.enable_g722(true, false),
                Codec::Vp8 => config.enable_vp8(true),
                Codec::Vp9 => config.enable_vp9(true),
                Codec::H264 => config.enable_h264(true),
                Codec::H265 => config.enable_h265(true),
                Codec::Av1 => config.enable_av1(true),
                // `new` admits no other codec.
                _ => config,
            };
        }
        config
    }

    /// "Opus, VP8 and H264": for error messages.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self
            .audio
            .iter()
            .chain(&self.video)
            .map(|c| match c {
                Codec::Opus => "Opus".to_owned(),
                other => other.to_string().to_uppercase(),
            })
            .collect();
        match names.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

impl Default for CodecList {
    fn default() -> Self {
        Self::str0m_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_needs_a_codec_of_each_kind_and_only_of_that_kind() {
        assert_eq!(
            CodecList::new(&[], &[Codec::Vp8]),
            Err(CodecListError::Empty("audio"))
        );
        assert!(matches!(
            CodecList::new(&[Codec::Vp8], &[Codec::Vp8]),
            Err(CodecListError::WrongKind(_, "audio"))
        ));
        let list = CodecList::new(&[Codec::Opus, Codec::Opus], &[Codec::H264, Codec::Vp8]).unwrap();
        assert_eq!(list.describe(), "Opus, H264 and VP8");
    }

    #[test]
    fn only_the_listed_codecs_are_enabled() {
        let list = CodecList::new(&[Codec::Opus], &[Codec::H264]).unwrap();
        let rtc = list
            .apply(str0m::Rtc::builder())
            .build(std::time::Instant::now());
        let mut codecs: Vec<Codec> = rtc
            .codec_config()
            .params()
            .iter()
            .map(|p| p.spec().codec)
            .filter(|c| !matches!(c, Codec::Rtx))
            .collect();
        codecs.dedup();
        assert_eq!(codecs, [Codec::Opus, Codec::H264]);
    }
}
