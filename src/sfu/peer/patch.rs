//! A peer's WHIP/WHEP `PATCH`: trickled candidates (capped per session)
//! and ICE restarts (new local credentials, the client's new ones, the
//! same candidate pairs).

use std::time::Instant;

use str0m::IceCreds;
use str0m::media::{MediaKind, Mid};
use tracing::debug;

use super::super::UFRAG_LEN;
use super::super::trickle::{IcePatch, MAX_REMOTE_CANDIDATES, PatchError, PatchOutcome};
use super::{Outputs, Peer, Side};

impl Peer {
    /// Applies a WHIP/WHEP `PATCH` (see [`super::trickle`]): checks
    /// `If-Match` against [`Peer::etag`], then either adds the trickled
    /// candidates, or — when the fragment names ICE credentials other than
    /// the client's current ones — restarts ICE: new local credentials from
    /// the peer's [`IdRng`](super::super::IdRng) (the setup's), the client's new ones, then its candidates. Nothing
    /// changes when it returns an error, so a refused restart leaves the
    /// current ICE session running.
    ///
    /// The restart swaps the credentials in place (str0m's direct API) and
    /// keeps the candidate pairs: the connection carries on over the pair it
    /// has while the client checks with the new credentials, and a check
    /// from a new address becomes a new (peer-reflexive) pair as usual.
    pub fn apply_patch(
        &mut self,
        now: Instant,
        patch: IcePatch,
        out: &mut Outputs,
    ) -> Result<PatchOutcome, PatchError> {
        if self.closed.is_some() {
            return Err(PatchError::Closed);
        }
        let current = self.etag();
        if !patch.if_match.matches(&current) {
            return Err(PatchError::PreconditionFailed { current });
        }
        let restart = match (patch.remote, &self.remote_ice) {
            (Some(new), Some(old)) if new.ufrag == old.ufrag => {
                if new.pass != old.pass {
                    return Err(PatchError::Invalid(
                        "ice-pwd changed but ice-ufrag did not; an ICE restart changes both".into(),
                    ));
                }
                None
            }
            (new, _) => new,
        };
        let mut skipped = patch.skipped;
        let Some(remote) = restart else {
            let added = self.add_remote_candidates(now, patch.candidates, &mut skipped, out);
            if self.closed.is_some() {
                return Err(PatchError::Closed);
            }
            return Ok(PatchOutcome::Trickled { added, skipped });
        };
        let local = IceCreds {
            ufrag: self.rng.token(UFRAG_LEN),
            pass: self.rng.token(32),
        };
        let (new_local, new_remote) = (local.clone(), remote.clone());
        self.guarded(now, out, |rtc, _| {
            let mut api = rtc.direct_api();
            api.set_local_ice_credentials(new_local);
            api.set_remote_ice_credentials(new_remote);
            Ok(())
        });
        if self.closed.is_some() {
            return Err(PatchError::Closed);
        }
        debug!(session = ?self.id, "ICE restart");
        self.ufrag = local.ufrag;
        self.pwd = local.pass;
        self.remote_ice = Some(remote);
        self.remote_candidates = 0;
        self.egress.restart();
        let added = self.add_remote_candidates(now, patch.candidates, &mut skipped, out);
        Ok(PatchOutcome::Restarted {
            ufrag: self.ufrag.clone(),
            pwd: self.pwd.clone(),
            etag: self.etag(),
            media: self.media_sections(),
            added,
            skipped,
        })
    }

    /// The session's audio/video sections (kind, mid) in offer order.
    fn media_sections(&self) -> Vec<(MediaKind, Mid)> {
        match &self.side {
            Side::Publisher(p) => p.media.tracks.iter().map(|t| (t.kind, t.mid)).collect(),
            Side::Subscriber(v) => v.outs.iter().map(|t| (t.kind, t.mid)).collect(),
        }
    }

    /// Adds up to the per-session limit of `candidates`; counts the rest in `skipped`.
    fn add_remote_candidates(
        &mut self,
        now: Instant,
        candidates: Vec<str0m::Candidate>,
        skipped: &mut usize,
        out: &mut Outputs,
    ) -> usize {
        let room = MAX_REMOTE_CANDIDATES.saturating_sub(self.remote_candidates);
        let take = candidates.len().min(room);
        *skipped += candidates.len() - take;
        if take > 0 {
            self.guarded(now, out, |rtc, _| {
                for candidate in candidates.into_iter().take(take) {
                    rtc.add_remote_candidate(candidate);
                }
                Ok(())
            });
            self.remote_candidates += take;
        }
        take
    }
}
