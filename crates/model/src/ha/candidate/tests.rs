use super::*;
use crate::ha::testkit::{U, assert_mentions, ep, sample};

fn gs(flavor: Flavor, s: &str) -> GtidSet {
    GtidSet::parse(flavor, s).unwrap()
}

#[test]
fn mariadb_errant_rules() {
    let m = Flavor::MariaDb;
    // (name, replica server_id, replica gtid_current_pos, reference, errant?, needle)
    let cases = [
        ("in step", 2, "0-1-100", "0-1-100", None, ""),
        ("behind", 2, "0-1-90", "0-1-100", None, ""),
        (
            "ahead of everything received",
            2,
            "0-1-100,1-2-5",
            "0-1-100",
            Some("1-2-5"),
            "beyond everything received",
        ),
        (
            "same number, other server",
            2,
            "0-3-100",
            "0-1-100",
            Some("0-3-100"),
            "same number",
        ),
        (
            "written locally, then behind",
            2,
            "0-2-60",
            "0-1-100",
            Some("0-2-60"),
            "written on this server itself",
        ),
        (
            // A former primary whose writes are the cluster's history: not errant.
            "own transactions the primary also has",
            2,
            "0-2-60",
            "0-2-60",
            None,
            "",
        ),
    ];
    for (name, sid, executed, reference, want, needle) in cases {
        let s = sample(m, sid, executed);
        let got = errant_transactions(m, &s, &gs(m, reference)).unwrap();
        assert_eq!(got.as_ref().map(|e| e.gtids.as_str()), want, "{name}");
        if let Some(e) = got {
            assert_mentions(&[e.why], needle);
        }
    }
}

#[test]
fn mysql_errant_is_an_exact_difference() {
    let f = Flavor::MySql;
    let s = sample(f, 2, &format!("{}:1-100,{}:1-3", U[1], U[2]));
    let reference = gs(f, &format!("{}:1-105", U[1]));
    let e = errant_transactions(f, &s, &reference).unwrap().unwrap();
    assert_eq!(e.gtids, format!("{}:1-3", U[2]));
    assert_mentions(&[e.why], &format!("{}:1-3", U[2]));
    let clean = sample(f, 2, &format!("{}:1-100", U[1]));
    assert_eq!(errant_transactions(f, &clean, &reference).unwrap(), None);
}

#[test]
fn missing_counts_transactions() {
    let m = Flavor::MariaDb;
    let (n, set) = missing_transactions(&gs(m, "0-1-90,1-1-5"), &gs(m, "0-1-100,1-1-7")).unwrap();
    assert_eq!(n, 12);
    assert_eq!(set.to_string(), "0-1-100,1-1-7");
    let f = Flavor::MySql;
    let (n, set) = missing_transactions(
        &gs(f, &format!("{}:1-90", U[1])),
        &gs(f, &format!("{}:1-100", U[1])),
    )
    .unwrap();
    assert_eq!(n, 10);
    assert_eq!(set.to_string(), format!("{}:91-100", U[1]));
}

fn cand(flavor: Flavor, n: u8, received: &str, lag: Option<u64>) -> Candidate {
    Candidate {
        endpoint: ep(n),
        received: gs(flavor, received),
        seconds_behind: lag,
        exclusion: None,
    }
}

#[test]
fn most_advanced_by_set_inclusion() {
    let m = Flavor::MariaDb;
    // Not by sum of seqnos: replica 2 has the larger sum but is behind in domain 1.
    let cs = [
        cand(m, 2, "0-1-200,1-1-10", Some(0)),
        cand(m, 3, "0-1-200,1-1-11", Some(0)),
    ];
    let c = most_advanced(&cs, &[]).unwrap();
    assert_eq!(c.index, 1);
    assert_mentions(&c.reasons, "has received the most (0-1-200,1-1-11)");

    let f = Flavor::MySql;
    let cs = [
        cand(f, 2, &format!("{}:1-105", U[1]), Some(0)),
        cand(f, 3, &format!("{}:1-100", U[1]), Some(0)),
    ];
    assert_eq!(most_advanced(&cs, &[]).unwrap().index, 0);
}

#[test]
fn ties_are_broken_and_said() {
    let m = Flavor::MariaDb;
    let tie = |lag2, lag3| [cand(m, 2, "0-1-100", lag2), cand(m, 3, "0-1-100", lag3)];
    // (name, candidates, preferred, chosen index, needle)
    let cases = [
        (
            "lowest address",
            tie(Some(0), Some(0)),
            vec![],
            0,
            "lowest address",
        ),
        (
            "preference",
            tie(Some(0), Some(5)),
            vec![ep(3)],
            1,
            "preference order",
        ),
        (
            "lower lag",
            tie(Some(4), Some(1)),
            vec![],
            1,
            "lower lag (1 s against 4 s)",
        ),
        (
            "unknown lag last",
            tie(None, Some(9)),
            vec![],
            1,
            "lower lag",
        ),
    ];
    for (name, cs, preferred, want, needle) in cases {
        let c = most_advanced(&cs, &preferred).unwrap();
        assert_eq!(c.index, want, "{name}");
        assert_mentions(&c.reasons, "a tie");
        assert_mentions(&c.reasons, needle);
    }
}

#[test]
fn preference_never_beats_a_more_advanced_replica() {
    let m = Flavor::MariaDb;
    let cs = [
        cand(m, 2, "0-1-101", Some(0)),
        cand(m, 3, "0-1-100", Some(0)),
    ];
    assert_eq!(most_advanced(&cs, &[ep(3)]).unwrap().index, 0);
}

#[test]
fn incomparable_or_diverged_sets_refuse() {
    let m = Flavor::MariaDb;
    let cs = [
        cand(m, 2, "0-1-100,1-1-50", Some(0)),
        cand(m, 3, "0-1-99,1-1-51", Some(0)),
    ];
    let r = most_advanced(&cs, &[]).unwrap_err();
    assert_mentions(&r, "neither contains the other");
    assert_mentions(&r, "a person must decide");

    let cs = [
        cand(m, 2, "0-1-100", Some(0)),
        cand(m, 3, "0-3-100", Some(0)),
    ];
    let r = most_advanced(&cs, &[]).unwrap_err();
    assert_mentions(&r, "different transactions with the same number");

    let f = Flavor::MySql;
    let cs = [
        cand(f, 2, &format!("{}:1-100,{}:1", U[1], U[2]), Some(0)),
        cand(f, 3, &format!("{}:1-100,{}:1", U[1], U[3]), Some(0)),
    ];
    let r = most_advanced(&cs, &[]).unwrap_err();
    assert_mentions(&r, &format!("lacks {}:1", U[3]));
}

#[test]
fn excluded_candidates_are_not_chosen() {
    let m = Flavor::MariaDb;
    let mut cs = [
        cand(m, 2, "0-1-101", Some(0)),
        cand(m, 3, "0-1-100", Some(0)),
    ];
    cs[0].exclusion = Some("delayed".into());
    assert_eq!(most_advanced(&cs, &[]).unwrap().index, 1);
    cs[1].exclusion = Some("binlog off".into());
    assert_mentions(
        &most_advanced(&cs, &[]).unwrap_err(),
        "every one of them is excluded",
    );
}
