//! The io_uring setup flags this backend tries, best first, and how each
//! ring is built. Measured on Linux 6.18 (2 vCPU, 1200-byte datagrams to a
//! local socket): the three modes send within a few percent of each other at
//! the same CPU per packet (the kernel's UDP path dominates); DEFER_TASKRUN was
//! never behind, and runs completions only when the loop enters the kernel,
//! so it comes first.

use std::io;

use io_uring::IoUring;

use super::{CQ_ENTRIES, SQ_ENTRIES};

/// Which setup flags the ring got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RingMode {
    /// SINGLE_ISSUER | DEFER_TASKRUN (created R_DISABLED, enabled on first use).
    DeferTaskrun,
    /// COOP_TASKRUN.
    CoopTaskrun,
    /// No optional flags.
    Plain,
}

impl RingMode {
    /// Every mode, best first.
    pub(crate) const ALL: [RingMode; 3] = [Self::DeferTaskrun, Self::CoopTaskrun, Self::Plain];

    /// A ring with this mode's flags, [`SQ_ENTRIES`] and [`CQ_ENTRIES`].
    pub(super) fn build(self) -> io::Result<IoUring> {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(CQ_ENTRIES);
        match self {
            Self::DeferTaskrun => {
                builder
                    .setup_single_issuer()
                    .setup_defer_taskrun()
                    .setup_r_disabled();
            }
            Self::CoopTaskrun => {
                builder.setup_coop_taskrun();
            }
            Self::Plain => {}
        }
        builder.build(SQ_ENTRIES)
    }
}
