use proptest::prelude::*;

use super::*;

const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
const U2: &str = "4a6f2e31-62c1-11ee-8c99-0242ac120002";

fn maria(s: &str) -> MariaDbGtidPos {
    MariaDbGtidPos::parse(s).unwrap()
}

fn my(s: &str) -> MySqlGtidSet {
    MySqlGtidSet::parse(s).unwrap()
}

// --- MariaDB --------------------------------------------------------------------------

#[test]
fn mariadb_parse_and_display_canonical() {
    let p = maria(" 1-2-5,\n 0-1-100 ");
    assert_eq!(p.to_string(), "0-1-100,1-2-5");
    assert_eq!(p.get(0), Some(MariaDbGtid::new(0, 1, 100)));
    assert_eq!(p.seq(1), 5);
    assert_eq!(p.seq(7), 0);
    assert_eq!(p.len(), 2);
    assert!(!p.is_empty());
}

#[test]
fn mariadb_empty_inputs() {
    for s in ["", " ", "\n", ",", " , "] {
        let p = maria(s);
        assert!(p.is_empty(), "{s:?}");
        assert_eq!(p.to_string(), "");
    }
    // seq_no 0 is printed back but holds nothing.
    let z = maria("0-0-0");
    assert!(z.is_empty());
    assert_eq!(z.to_string(), "0-0-0");
    assert!(MariaDbGtidPos::new().contains(&z));
}

#[test]
fn mariadb_duplicate_domain_keeps_highest() {
    // @@gtid_binlog_state lists one GTID per (domain, server).
    let p = maria("0-1-100,0-2-101,0-3-99");
    assert_eq!(p.to_string(), "0-2-101");
    // A tie on seq_no is broken by server_id, whatever the order.
    assert_eq!(maria("0-5-7,0-2-7").to_string(), "0-5-7");
    assert_eq!(maria("0-2-7,0-5-7").to_string(), "0-5-7");
}

#[test]
fn mariadb_errors_name_the_token() {
    for (s, token) in [
        ("0-1", "0-1"),
        ("0-1-2-3", "0-1-2-3"),
        ("0-1-x", "0-1-x"),
        ("0-1-100,abc", "abc"),
        ("0--1-5", "0--1-5"),
        ("4294967296-1-1", "4294967296-1-1"),
        ("0-1-+5", "0-1-+5"),
        ("0 -1-5", "0 -1-5"),
        (&format!("{U1}:1-5"), &format!("{U1}:1-5")),
    ] {
        match MariaDbGtidPos::parse(s) {
            Err(GtidError::MariaDb { token: t, .. }) => assert_eq!(t, token, "{s}"),
            other => panic!("{s}: {other:?}"),
        }
    }
    let e = MariaDbGtidPos::parse("0-1-2,zz").unwrap_err();
    assert!(e.to_string().contains("`zz`"), "{e}");
}

#[test]
fn mariadb_union_contains_difference() {
    let a = maria("0-1-100,1-2-5");
    let b = maria("0-1-90,2-3-7");
    assert_eq!(a.union(&b).to_string(), "0-1-100,1-2-5,2-3-7");
    assert!(a.contains(&maria("0-1-100")));
    assert!(a.contains(&maria("0-9-50,1-2-1")));
    assert!(!a.contains(&maria("0-1-101")));
    assert!(!a.contains(&b)); // domain 2 missing in a
    assert!(a.contains(&maria("5-0-0"))); // seq 0 in a missing domain: nothing to contain
    assert!(maria("1-2-5").is_subset(&a));
    assert_eq!(a.difference(&b).to_string(), "0-1-100,1-2-5");
    assert_eq!(b.difference(&a).to_string(), "2-3-7");
    assert!(a.difference(&a).is_empty());
    assert_eq!(a.intersection(&b).to_string(), "0-1-90");
}

#[test]
fn mariadb_errant_detection() {
    // A replica that wrote 1-2-1 locally while in sync on domain 0.
    let primary = maria("0-1-500");
    let replica = maria("0-1-500,1-2-1");
    assert_eq!(replica.ahead_of(&primary), vec![MariaDbGtid::new(1, 2, 1)]);
    assert!(primary.ahead_of(&replica).is_empty());
    // Same seq_no, different server: two histories.
    let p = maria("0-1-7,1-1-1");
    let r = maria("0-2-7,1-1-1");
    assert_eq!(r.diverging_domains(&p), vec![0]);
    assert!(r.ahead_of(&p).is_empty());
    assert!(p.diverging_domains(&p).is_empty());
}

// --- MySQL ----------------------------------------------------------------------------

#[test]
fn mysql_parse_show_output_with_newlines() {
    let text = format!("{},\n{U2}:1-27\n", U1.to_uppercase() + ":1-5:7:9-10");
    let s = my(&text);
    assert_eq!(s.to_string(), format!("{U1}:1-5:7:9-10,{U2}:1-27"));
    assert_eq!(s.count(), 5 + 1 + 2 + 27);
    assert!(s.contains_gtid(U1, None, 7));
    assert!(!s.contains_gtid(U1, None, 8));
    assert!(s.contains_gtid(&U2.to_uppercase(), None, 27));
}

#[test]
fn mysql_merges_and_sorts() {
    let s = my(&format!("{U2}:5, {U1}:10-20:1-3:4-6:15-25, {U1}:26"));
    assert_eq!(s.to_string(), format!("{U1}:1-6:10-26,{U2}:5"));
    assert_eq!(my(&format!("{U1}:3-3")).to_string(), format!("{U1}:3"));
}

#[test]
fn mysql_empty() {
    for t in ["", "\n", " , "] {
        let s = my(t);
        assert!(s.is_empty());
        assert_eq!(s.count(), 0);
        assert_eq!(s.to_string(), "");
    }
}

#[test]
fn mysql_tagged_gtids() {
    let s = my(&format!("{U1}:Tag_B:1-5:ALPHA:3,{U1}:1-2"));
    assert_eq!(s.to_string(), format!("{U1}:1-2:alpha:3:tag_b:1-5"));
    assert!(s.contains_gtid(U1, Some("TAG_B"), 4));
    assert!(!s.contains_gtid(U1, None, 4));
    let t = my(&format!("{U1}:tag_b:1-5"));
    assert!(s.contains(&t));
    assert_eq!(s.difference(&t).to_string(), format!("{U1}:1-2:alpha:3"));
    assert_eq!(my(&s.to_string()), s);
}

#[test]
fn mysql_errors_name_the_token() {
    let cases = [
        (format!("{U1}:5-3"), "5-3".to_owned()),
        (format!("{U1}:0-3"), "0-3".to_owned()),
        (format!("{U1}:1-x"), "1-x".to_owned()),
        (
            format!("{U1}:1-9223372036854775808"),
            "1-9223372036854775808".to_owned(),
        ),
        ("zzzz:1-5".to_owned(), "zzzz".to_owned()),
        (U1.to_owned(), U1.to_owned()),
        (format!("{U1}:"), format!("{U1}:")),
        (format!("{U1}::1"), format!("{U1}::1")),
        (format!("{U1}:tag"), format!("{U1}:tag")),
        (format!("{U1}:a:b:1"), format!("{U1}:a:b:1")),
        (format!("{U1}:9bad:1"), "9bad".to_owned()),
        (format!("{U1}:bad-tag:1"), "bad-tag".to_owned()),
        (format!("{U1}:{}:1", "t".repeat(33)), "t".repeat(33)),
    ];
    for (s, token) in cases {
        match MySqlGtidSet::parse(&s) {
            Err(GtidError::MySql { token: t, .. }) => assert_eq!(t, token, "{s}"),
            other => panic!("{s}: {other:?}"),
        }
    }
}

#[test]
fn mysql_set_algebra() {
    let a = my(&format!("{U1}:1-10,{U2}:1-5"));
    let b = my(&format!("{U1}:3-4:8-12"));
    assert_eq!(
        a.difference(&b).to_string(),
        format!("{U1}:1-2:5-7,{U2}:1-5")
    );
    assert_eq!(b.difference(&a).to_string(), format!("{U1}:11-12"));
    assert_eq!(a.intersection(&b).to_string(), format!("{U1}:3-4:8-10"));
    assert_eq!(a.union(&b).to_string(), format!("{U1}:1-12,{U2}:1-5"));
    assert!(a.contains(&my(&format!("{U1}:2-9"))));
    assert!(!a.contains(&b));
    assert!(my(&format!("{U2}:3")).is_subset(&a));
    // An errant transaction on a replica.
    let primary = my(&format!("{U1}:1-100"));
    let replica = my(&format!("{U1}:1-90,{U2}:1"));
    assert_eq!(replica.difference(&primary).to_string(), format!("{U2}:1"));
    // Extreme numbers.
    let big = my(&format!("{U1}:9223372036854775806-9223372036854775807"));
    assert_eq!(big.count(), 2);
    assert!(
        big.difference(&my(&format!("{U1}:1-9223372036854775806")))
            .contains_gtid(U1, None, MYSQL_MAX_GNO)
    );
}

// --- GtidSet --------------------------------------------------------------------------

#[test]
fn gtid_set_enum() {
    let m = GtidSet::parse(Flavor::MariaDb, "0-1-5").unwrap();
    let y = GtidSet::parse(Flavor::MySql, &format!("{U1}:1-5")).unwrap();
    assert_eq!(m.flavor(), Flavor::MariaDb);
    assert_eq!(y.flavor(), Flavor::MySql);
    assert!(matches!(
        m.union(&y),
        Err(GtidError::FlavorMismatch {
            left: Flavor::MariaDb,
            right: Flavor::MySql
        })
    ));
    assert!(m.contains(&y).is_err());
    assert!(y.difference(&m).is_err());
    // The empty set combines with either family.
    let e = GtidSet::parse(Flavor::MariaDb, "").unwrap();
    assert_eq!(e.union(&y).unwrap(), y);
    assert_eq!(y.union(&e).unwrap(), y);
    assert!(y.contains(&e).unwrap());
    assert!(!e.contains(&y).unwrap());
    assert_eq!(e.difference(&y).unwrap(), GtidSet::empty(Flavor::MySql));
    assert_eq!(y.difference(&e).unwrap(), y);
    assert!(e.is_subset(&y).unwrap());
    // Same family.
    let m2 = GtidSet::parse(Flavor::MariaDb, "0-1-9,1-1-1").unwrap();
    assert!(m2.contains(&m).unwrap());
    assert_eq!(m2.difference(&m).unwrap().to_string(), "0-1-9,1-1-1");
    assert_eq!(m.intersection(&m2).unwrap().to_string(), "0-1-5");
    assert!(GtidSet::parse(Flavor::MySql, "0-1-5").is_err());
    assert_eq!(GtidSet::parse_detect(&y.to_string()).unwrap(), y);
    assert_eq!(GtidSet::parse_detect("0-1-5").unwrap(), m);
}

#[test]
fn serde_as_string() {
    let y = GtidSet::parse(Flavor::MySql, &format!("{U1}:7,{U1}:1-5")).unwrap();
    let json = serde_json::to_string(&y).unwrap();
    assert_eq!(json, format!("\"{U1}:1-5:7\""));
    assert_eq!(serde_json::from_str::<GtidSet>(&json).unwrap(), y);
    let m: MariaDbGtidPos = serde_json::from_str("\"1-1-1,0-1-5\"").unwrap();
    assert_eq!(serde_json::to_string(&m).unwrap(), "\"0-1-5,1-1-1\"");
    let g: GtidSet = serde_json::from_str("\"0-1-5\"").unwrap();
    assert_eq!(g.as_mariadb(), Some(&maria("0-1-5")));
    let s: MySqlGtidSet = serde_json::from_value(serde_json::json!(format!("{U2}:3"))).unwrap();
    assert_eq!(s.count(), 1);
    let err = serde_json::from_str::<MySqlGtidSet>("\"nope:1\"").unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

// --- properties -----------------------------------------------------------------------

fn arb_maria() -> impl Strategy<Value = MariaDbGtidPos> {
    prop::collection::vec((0u32..5, 1u32..4, 0u64..30), 0..6).prop_map(|v| {
        v.into_iter()
            .map(|(d, s, n)| MariaDbGtid::new(d, s, n))
            .collect()
    })
}

const UUIDS: [&str; 3] = [U1, U2, "ffffffff-0000-1111-2222-333333333333"];
const TAGS: [Option<&str>; 3] = [None, Some("a"), Some("tag_b")];

fn arb_mysql() -> impl Strategy<Value = MySqlGtidSet> {
    prop::collection::vec((0usize..3, 0usize..3, 1u64..60, 0u64..8), 0..10).prop_map(|v| {
        let mut s = MySqlGtidSet::new();
        for (u, t, start, len) in v {
            s.insert(UUIDS[u], TAGS[t], start, start + len).unwrap();
        }
        s
    })
}

/// Normalization invariants of a MySQL set.
fn well_formed(s: &MySqlGtidSet) -> bool {
    s.iter().all(|(_, ivs)| {
        !ivs.is_empty()
            && ivs.iter().all(|iv| 1 <= iv.start && iv.start <= iv.end)
            && ivs.windows(2).all(|w| w[0].end + 1 < w[1].start)
    })
}

proptest! {
    #[test]
    fn prop_maria_roundtrip(a in arb_maria()) {
        prop_assert_eq!(maria(&a.to_string()), a);
    }

    #[test]
    fn prop_maria_union_laws(a in arb_maria(), b in arb_maria(), c in arb_maria()) {
        prop_assert_eq!(a.union(&b), b.union(&a));
        prop_assert_eq!(a.union(&b).union(&c), a.union(&b.union(&c)));
        prop_assert_eq!(a.union(&a), a.clone());
        prop_assert!(a.union(&b).contains(&a));
        prop_assert!(a.is_subset(&a.union(&b)));
    }

    #[test]
    fn prop_maria_difference(a in arb_maria(), b in arb_maria()) {
        prop_assert_eq!(b.contains(&a), a.difference(&b).is_empty());
        prop_assert!(a.contains(&a.intersection(&b)));
        prop_assert!(b.contains(&a.intersection(&b)));
        // What a has beyond b is not contained in b, domain by domain.
        for g in a.ahead_of(&b) {
            prop_assert!(g.seq > b.seq(g.domain));
        }
    }

    #[test]
    fn prop_mysql_roundtrip(a in arb_mysql()) {
        prop_assert!(well_formed(&a));
        prop_assert_eq!(my(&a.to_string()), a.clone());
        // SHOW output separates elements with ",\n" and may use uppercase uuids.
        let shown = a.to_string().replace(',', ",\n").to_uppercase();
        prop_assert_eq!(my(&shown), a);
    }

    #[test]
    fn prop_mysql_union_laws(a in arb_mysql(), b in arb_mysql(), c in arb_mysql()) {
        prop_assert_eq!(a.union(&b), b.union(&a));
        prop_assert_eq!(a.union(&b).union(&c), a.union(&b.union(&c)));
        prop_assert_eq!(a.union(&a), a.clone());
        prop_assert!(a.union(&b).contains(&a));
        prop_assert!(well_formed(&a.union(&b)));
    }

    #[test]
    fn prop_mysql_difference_intersection(a in arb_mysql(), b in arb_mysql()) {
        let d = a.difference(&b);
        let i = a.intersection(&b);
        prop_assert!(well_formed(&d));
        prop_assert!(well_formed(&i));
        prop_assert!(d.intersection(&b).is_empty());
        prop_assert_eq!(d.union(&i), a.clone());
        prop_assert_eq!(a.is_subset(&b), d.is_empty());
        prop_assert_eq!(i.clone(), b.intersection(&a));
        prop_assert_eq!(
            a.union(&b).count(),
            a.count() + b.count() - i.count()
        );
        prop_assert_eq!(a.count(), d.count() + i.count());
    }

    #[test]
    fn prop_mysql_membership(a in arb_mysql(), b in arb_mysql(), u in 0usize..3, t in 0usize..3, n in 1u64..70) {
        let (u, t) = (UUIDS[u], TAGS[t]);
        let in_a = a.contains_gtid(u, t, n);
        let in_b = b.contains_gtid(u, t, n);
        prop_assert_eq!(a.union(&b).contains_gtid(u, t, n), in_a || in_b);
        prop_assert_eq!(a.intersection(&b).contains_gtid(u, t, n), in_a && in_b);
        prop_assert_eq!(a.difference(&b).contains_gtid(u, t, n), in_a && !in_b);
    }

    #[test]
    fn prop_gtid_set_matches_inner(a in arb_mysql(), b in arb_mysql()) {
        let (ga, gb) = (GtidSet::MySql(a.clone()), GtidSet::MySql(b.clone()));
        prop_assert_eq!(ga.union(&gb).unwrap(), GtidSet::MySql(a.union(&b)));
        prop_assert_eq!(ga.contains(&gb).unwrap(), a.contains(&b));
        let json = serde_json::to_string(&ga).unwrap();
        prop_assert_eq!(serde_json::from_str::<GtidSet>(&json).unwrap().is_empty(), a.is_empty());
        if !a.is_empty() {
            prop_assert_eq!(serde_json::from_str::<GtidSet>(&json).unwrap(), ga);
        }
    }
}
