//! Which Galera node bootstraps a fully stopped cluster: a pure decision over the
//! positions read from every node (grastate.dat, or `--wsrep-recover` where grastate
//! says seqno -1). Never an arbitrary node: the one with the highest committed seqno of
//! the one cluster UUID all nodes share.

use serde::{Deserialize, Serialize};

/// A node's last committed position, as its files say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaleraPosition {
    pub node: String,
    pub uuid: String,
    /// -1 when unknown (the server did not shut down cleanly and was not recovered).
    pub seqno: i64,
    pub safe_to_bootstrap: bool,
}

/// The all-zero UUID of a node that never joined a cluster.
const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

/// Chooses the node to bootstrap from, or says why none may be chosen.
pub fn choose_bootstrap(positions: &[GaleraPosition]) -> Result<&GaleraPosition, String> {
    let known: Vec<&GaleraPosition> = positions
        .iter()
        .filter(|p| !p.uuid.is_empty() && p.uuid != NIL_UUID)
        .collect();
    if known.is_empty() {
        return Err("no node has a Galera state (grastate.dat) to bootstrap from".into());
    }
    let mut uuids: Vec<&str> = known.iter().map(|p| p.uuid.as_str()).collect();
    uuids.sort_unstable();
    uuids.dedup();
    if uuids.len() > 1 {
        return Err(format!(
            "nodes disagree on the cluster UUID ({}): refusing to bootstrap, which could lose one side's data",
            known
                .iter()
                .map(|p| format!("{} has {}", p.node, p.uuid))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(p) = known.iter().find(|p| p.seqno < 0) {
        return Err(format!(
            "{} has seqno -1: recover its position (mariadbd --wsrep-recover) before choosing",
            p.node
        ));
    }
    // Highest seqno; among equals prefer the one Galera marked safe, then list order.
    let best = known
        .iter()
        .enumerate()
        .max_by(|(ia, a), (ib, b)| {
            a.seqno
                .cmp(&b.seqno)
                .then(a.safe_to_bootstrap.cmp(&b.safe_to_bootstrap))
                .then(ib.cmp(ia))
        })
        .map(|(_, p)| *p);
    best.ok_or_else(|| "no candidate".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(node: &str, uuid: &str, seqno: i64, safe: bool) -> GaleraPosition {
        GaleraPosition {
            node: node.into(),
            uuid: uuid.into(),
            seqno,
            safe_to_bootstrap: safe,
        }
    }

    #[test]
    fn highest_seqno_wins() {
        let ps = [
            p("a", "u1", 10, false),
            p("b", "u1", 12, false),
            p("c", "u1", 11, true),
        ];
        assert_eq!(choose_bootstrap(&ps).unwrap().node, "b");
    }

    #[test]
    fn ties_prefer_safe_then_order() {
        let ps = [p("a", "u1", 12, false), p("b", "u1", 12, true)];
        assert_eq!(choose_bootstrap(&ps).unwrap().node, "b");
        let ps = [p("a", "u1", 12, false), p("b", "u1", 12, false)];
        assert_eq!(choose_bootstrap(&ps).unwrap().node, "a");
    }

    #[test]
    fn refuses_two_uuids_and_unknown_seqnos() {
        let e = choose_bootstrap(&[p("a", "u1", 1, true), p("b", "u2", 5, false)]).unwrap_err();
        assert!(e.contains("disagree"), "{e}");
        let e = choose_bootstrap(&[p("a", "u1", -1, false), p("b", "u1", 5, false)]).unwrap_err();
        assert!(e.contains("a has seqno -1"), "{e}");
        // A node that never joined (nil UUID) does not count.
        let ps = [p("a", NIL_UUID, -1, false), p("b", "u1", 5, false)];
        assert_eq!(choose_bootstrap(&ps).unwrap().node, "b");
        assert!(choose_bootstrap(&[p("a", NIL_UUID, -1, false)]).is_err());
    }
}
