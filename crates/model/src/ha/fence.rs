//! Why a replication node is kept read-only and out of its cluster, and whether nines
//! lifts that by itself. A former primary (failed over, replaced while it was down, or
//! not repointed during a promotion) waits for a rejoin check that the reconciler starts
//! once the node answers; a node found with errant transactions waits for a person.
//!
//! The store keeps a fence as one line of text, the way it has always been written
//! (`pending rejoin: …` for the first kind), so stored fences read back unchanged.

use std::fmt;

const PENDING_REJOIN: &str = "pending rejoin: ";

/// A node's fence, with the reason a person reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fence {
    /// Lifted by a rejoin job once the node answers and its GTIDs are proven to be in
    /// the primary's history.
    PendingRejoin(String),
    /// Lifted only by a person (errant transactions: save them, then rebuild or rejoin).
    Held(String),
}

impl Fence {
    /// Whether the reconciler lifts this fence by itself.
    pub fn pending_rejoin(&self) -> bool {
        matches!(self, Self::PendingRejoin(_))
    }

    /// The reason alone.
    pub fn reason(&self) -> &str {
        match self {
            Self::PendingRejoin(r) | Self::Held(r) => r,
        }
    }

    /// A fence as the store keeps it (its [`Display`](fmt::Display) form).
    pub fn from_stored(text: &str) -> Self {
        match text.strip_prefix(PENDING_REJOIN) {
            Some(reason) => Self::PendingRejoin(reason.to_string()),
            None => Self::Held(text.to_string()),
        }
    }
}

impl fmt::Display for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PendingRejoin(r) => write!(f, "{PENDING_REJOIN}{r}"),
            Self::Held(r) => f.write_str(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_read_back_as_they_were_written() {
        let table = [
            (
                "pending rejoin: failed over at 12:00 (job 4)",
                Fence::PendingRejoin("failed over at 12:00 (job 4)".into()),
                true,
            ),
            (
                "errant transactions 0-9-3: …",
                Fence::Held("errant transactions 0-9-3: …".into()),
                false,
            ),
            // Only the exact prefix marks a fence nines lifts by itself.
            (
                "pending rejoin failed",
                Fence::Held("pending rejoin failed".into()),
                false,
            ),
        ];
        for (stored, fence, lifted) in table {
            assert_eq!(Fence::from_stored(stored), fence, "{stored}");
            assert_eq!(fence.to_string(), stored);
            assert_eq!(fence.pending_rejoin(), lifted, "{stored}");
        }
    }
}
