//! The media path of a peer: a publisher's RTP coming out of str0m
//! (checked against its bitrate limit, turned into one [`Forwarded`] for
//! every subscriber), and a subscriber's outgoing packets (mapped to the
//! payload types it negotiated, rewritten into one continuous stream per
//! outgoing track, written into str0m until the next flush).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use str0m::Rtc;
use str0m::bwe::Bitrate;
use str0m::media::{KeyframeRequestKind, MediaKind};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};
use tracing::warn;

use crate::sfu::room::VOICE_LEVEL;

use super::{
    CloseReason, Feed, Forwarded, GAP_KEYFRAME_INTERVAL, NO_PT, Outputs, Peer, PeerEvent,
    PublishedTrack, REMB_INTERVAL, RTP_HEADER_BYTES, Side, TrackOut, note_media,
};

impl Peer {
    /// A subscriber: queue one packet of `feed` in str0m. Nothing is sent
    /// until [`Peer::flush`]: the shard flushes every peer this returned
    /// `true` for (it just became unflushed) once per loop turn, so a burst
    /// of packets (a video frame) costs one str0m timeout and drain per
    /// subscriber, not one per packet.
    pub fn forward(&mut self, packet: &Forwarded, feed: &Feed, out: &mut Outputs) -> bool {
        if !self.connected || self.closed.is_some() {
            return false;
        }
        let Side::Subscriber(subscriber) = &mut self.side else {
            return false;
        };
        let Some(track) = subscriber.outs.iter_mut().find(|t| t.feed == *feed) else {
            return false;
        };
        let kind = packet.track.kind;
        if track.kind != kind {
            out.dropped += 1;
            return false;
        }
        if track.map_track != Some(packet.track.id) {
            build_pt_map(&self.rtc, track, &packet.track);
        }
        let pt = track
            .pt_map
            .get(usize::from(packet.pt))
            .copied()
            .unwrap_or(NO_PT);
        if pt == NO_PT {
            out.dropped += 1;
            return false;
        }
        if let Some(limit) = &mut self.bitrate_limit {
            let bytes = packet.payload.len() + RTP_HEADER_BYTES;
            if kind == MediaKind::Audio {
                limit.charge(packet.received, bytes);
            } else if !limit.admit(packet.received, bytes) {
                out.dropped_bitrate_out += 1;
                self.room
                    .dropped_bitrate_out
                    .fetch_add(1, Ordering::Relaxed);
                self.video_gap = true;
                return false;
            } else if self.video_gap {
                // The frames after a dropped packet do not decode until a
                // keyframe: ask for one, but seldom, since a keyframe is
                // what a viewer over its limit can least afford.
                self.video_gap = false;
                let due = self.gap_keyframe_at.is_none_or(|at| {
                    packet.received.saturating_duration_since(at) >= GAP_KEYFRAME_INTERVAL
                });
                if due {
                    self.gap_keyframe_at = Some(packet.received);
                    out.events.push(PeerEvent::WantKeyframe {
                        feed: *feed,
                        kind: KeyframeRequestKind::Pli,
                    });
                }
            }
        }
        let Some(mapped) = track.rewriter.rewrite(
            packet.source,
            packet.seq,
            packet.ts,
            packet.received,
            packet.clock_rate,
        ) else {
            out.dropped += 1;
            return false;
        };
        if mapped.switched && kind == MediaKind::Video {
            out.events.push(PeerEvent::WantKeyframe {
                feed: *feed,
                kind: KeyframeRequestKind::Pli,
            });
        }
        let mid = track.mid;
        let mut write = RtpWrite::new(
            pt.into(),
            mapped.seq.into(),
            mapped.ts,
            packet.received,
            packet.payload.clone(),
        )
        .marker(packet.marker)
        .nackable(kind == MediaKind::Video);
        // Only audio carries values worth passing on (level, voice activity).
        if packet.audio_level.is_some() || packet.voice_activity.is_some() {
            write = write.ext_vals(ExtensionValues {
                audio_level: packet.audio_level,
                voice_activity: packet.voice_activity,
                ..Default::default()
            });
        }
        out.forwarded += 1;
        note_media(&mut self.media_seen, self.created, packet.received, out);
        let written = catch_unwind(AssertUnwindSafe(|| {
            if let Some(stream) = self.rtc.direct_api().stream_tx_by_mid(mid, None) {
                stream.write_rtp(write);
            }
        }));
        if written.is_err() {
            warn!(session = ?self.id, "str0m panicked; closing this peer");
            self.closed = Some(CloseReason::Panicked);
            return false;
        }
        let became_unflushed = !self.unflushed;
        self.unflushed = true;
        became_unflushed
    }

    pub(super) fn handle_rtp(&mut self, packet: RtpPacket, out: &mut Outputs) {
        let Side::Publisher(publisher) = &mut self.side else {
            return;
        };
        let ssrc = packet.header.ssrc;
        if let Some(hold) = &mut self.start_hold {
            hold.confirm(*ssrc);
        }
        let index = match publisher.ssrcs.iter().find(|(s, _)| *s == ssrc) {
            Some((_, index)) => *index,
            None => {
                let Some(mid) = self.rtc.direct_api().stream_rx(&ssrc).map(|s| s.mid()) else {
                    out.dropped += 1;
                    return;
                };
                let Some(index) = publisher.media.tracks.iter().position(|t| t.mid == mid) else {
                    out.dropped += 1;
                    return;
                };
                publisher.ssrcs.push((ssrc, index));
                // Tell a new stream our limit up front (REMB), so a
                // well-behaved encoder never reaches it.
                if let Some(limit) = &self.bitrate_limit
                    && let Some(stream) = self.rtc.direct_api().stream_rx(&ssrc)
                {
                    stream.request_remb(Bitrate::bps(limit.bits_per_second()));
                }
                index
            }
        };
        let Some(track) = publisher.media.tracks.get(index) else {
            out.dropped += 1;
            return;
        };
        let kind = track.kind;
        if let Some(limit) = &mut self.bitrate_limit {
            let now = packet.timestamp;
            let bytes = packet.payload.len() + RTP_HEADER_BYTES;
            if kind == MediaKind::Audio {
                limit.charge(now, bytes);
            } else if !limit.admit(now, bytes) {
                out.dropped_bitrate_in += 1;
                self.room.dropped_bitrate_in.fetch_add(1, Ordering::Relaxed);
                let bps = limit.bits_per_second();
                if self
                    .last_remb
                    .is_none_or(|at| now.saturating_duration_since(at) >= REMB_INTERVAL)
                {
                    self.last_remb = Some(now);
                    if let Some(stream) = self.rtc.direct_api().stream_rx(&ssrc) {
                        stream.request_remb(Bitrate::bps(bps));
                    }
                }
                return;
            }
        }
        let pt = *packet.header.payload_type;
        let Some(params) = track.params(pt) else {
            out.dropped += 1;
            return;
        };
        let clock_rate = params.spec().clock_rate.get();
        let bytes = packet.payload.len() as u64;
        self.room.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        track.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        let ext = &packet.header.ext_vals;
        if kind == MediaKind::Audio
            && (ext.voice_activity == Some(true)
                || ext.audio_level.is_some_and(|level| level >= VOICE_LEVEL))
        {
            publisher.media.voiced.fetch_add(1, Ordering::Relaxed);
        }
        note_media(&mut self.media_seen, self.created, packet.timestamp, out);
        out.events.push(PeerEvent::Media(Arc::new(Forwarded {
            room_id: self.room.id,
            track: track.clone(),
            main: self.room.is_main(publisher.media.publisher),
            source: (track.id.get() << 32) | u64::from(*ssrc),
            pt,
            clock_rate,
            seq: *packet.seq_no,
            ts: packet.header.timestamp,
            marker: packet.header.marker,
            audio_level: ext.audio_level,
            voice_activity: ext.voice_activity,
            payload: packet.payload,
            received: packet.timestamp,
        })));
    }
}

/// Maps each of the payload types of `published` to the one this
/// subscriber negotiated for the same codec on `track` (same name, clock
/// and format).
fn build_pt_map(rtc: &Rtc, track: &mut TrackOut, published: &PublishedTrack) {
    track.pt_map = [NO_PT; 128];
    track.map_track = Some(published.id);
    if published.kind != track.kind {
        return;
    }
    let remote_pts = rtc.media(track.mid).map(|m| m.remote_pts()).unwrap_or(&[]);
    for params in &published.params {
        let Some(ours) = rtc.codec_config().match_params(*params) else {
            continue;
        };
        if !remote_pts.contains(&ours.pt()) {
            continue;
        }
        if let Some(slot) = track.pt_map.get_mut(usize::from(*params.pt())) {
            *slot = *ours.pt();
        }
    }
}

/// Whether a subscriber negotiated at least one of the codecs of
/// `published` on `track` (used to refuse a viewer with 422 before it
/// connects).
pub(in crate::sfu) fn can_receive(
    rtc: &Rtc,
    track: &mut TrackOut,
    published: &PublishedTrack,
) -> bool {
    build_pt_map(rtc, track, published);
    track.pt_map.iter().any(|&pt| pt != NO_PT)
}
