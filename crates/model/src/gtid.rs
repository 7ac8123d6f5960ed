//! GTID sets of both server families, as pure values: parsing, canonical printing and
//! set algebra (union, containment, difference, intersection).
//!
//! * MariaDB ([`MariaDbGtidPos`]): a *position*, `domain-server-seq` per replication
//!   domain (`0-1-100,1-2-5`). A position names the last GTID applied in each domain and
//!   implies every earlier seq_no of that domain, so it is modelled as a map
//!   domain -> (server_id, seq_no) and compared by seq_no within each domain.
//! * MySQL ([`MySqlGtidSet`]): an explicit set, `uuid:interval[:interval...]` per source
//!   (`3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7`), including MySQL 8.3+ tagged GTIDs
//!   (`uuid:tag:1-5`). Modelled as a map (uuid, tag) -> sorted, merged, disjoint intervals.
//! * [`GtidSet`] wraps either, for code that handles both families; operations on two
//!   sets of different families fail with [`GtidError::FlavorMismatch`], except that an
//!   empty set (which carries no family in its text form) combines with either.
//!
//! All three types print canonically (sorted, merged, `,` separated, no whitespace) and
//! serialize with serde as that string.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::replication::Flavor;

/// A GTID text that could not be parsed, or an operation on sets of different families.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtidError {
    /// A `domain-server-seq` element of a MariaDB GTID position is malformed.
    #[error("invalid MariaDB GTID `{token}`: {reason}")]
    MariaDb { token: String, reason: &'static str },
    /// A `uuid[:tag]:interval` element (or one of its parts) of a MySQL GTID set is
    /// malformed; `token` is the offending part.
    #[error("invalid MySQL GTID set token `{token}`: {reason}")]
    MySql { token: String, reason: &'static str },
    /// A MariaDB position was combined with a MySQL set (both non-empty).
    #[error("cannot combine a {left:?} GTID set with a {right:?} GTID set")]
    FlavorMismatch { left: Flavor, right: Flavor },
}

/// Splits a GTID text on commas, trimming whitespace (SHOW output wraps long sets with
/// newlines) and skipping empty elements, so `""`, `"\n"` and a trailing comma parse.
fn elements(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|e| !e.is_empty())
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------
// MariaDB
// ---------------------------------------------------------------------------------------

/// One MariaDB GTID, `domain-server-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MariaDbGtid {
    pub domain: u32,
    pub server_id: u32,
    pub seq: u64,
}

impl MariaDbGtid {
    pub fn new(domain: u32, server_id: u32, seq: u64) -> Self {
        Self {
            domain,
            server_id,
            seq,
        }
    }

    /// Parses one `domain-server-seq` (surrounding whitespace allowed).
    pub fn parse(s: &str) -> Result<Self, GtidError> {
        let token = s.trim();
        let bad = |reason| GtidError::MariaDb {
            token: token.to_owned(),
            reason,
        };
        let mut parts = token.split('-');
        let (Some(d), Some(sid), Some(seq), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected domain-server_id-seq_no"));
        };
        if !(all_digits(d) && all_digits(sid) && all_digits(seq)) {
            return Err(bad("expected three unsigned decimal numbers"));
        }
        let domain = d
            .parse()
            .map_err(|_| bad("domain_id out of range (32 bits)"))?;
        let server_id = sid
            .parse()
            .map_err(|_| bad("server_id out of range (32 bits)"))?;
        let seq = seq
            .parse()
            .map_err(|_| bad("seq_no out of range (64 bits)"))?;
        Ok(Self::new(domain, server_id, seq))
    }

    /// The order used to pick one GTID of a domain: higher seq_no wins, ties broken by
    /// the higher server_id (arbitrary but deterministic).
    fn rank(&self) -> (u64, u32) {
        (self.seq, self.server_id)
    }
}

impl fmt::Display for MariaDbGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server_id, self.seq)
    }
}

impl FromStr for MariaDbGtid {
    type Err = GtidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A MariaDB GTID position: the last GTID of each replication domain
/// (`@@gtid_current_pos`, `@@gtid_binlog_pos`, `@@gtid_slave_pos`, `Gtid_IO_Pos`).
///
/// A position implies every earlier seq_no of its domains, so comparisons look at the
/// seq_no per domain; server_ids are carried along but not compared (except by
/// [`MariaDbGtidPos::diverging_domains`]). A domain at seq_no 0 (`0-0-0`) holds no
/// transaction: it is kept for printing but counts as empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MariaDbGtidPos {
    domains: BTreeMap<u32, MariaDbGtid>,
}

impl MariaDbGtidPos {
    /// The empty position.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a comma-separated list of `domain-server-seq`; whitespace and newlines
    /// around elements and the empty string are accepted. A domain listed twice (as in
    /// `@@gtid_binlog_state`, one GTID per server) keeps its highest seq_no.
    pub fn parse(s: &str) -> Result<Self, GtidError> {
        let mut pos = Self::new();
        for e in elements(s) {
            pos.insert(MariaDbGtid::parse(e)?);
        }
        Ok(pos)
    }

    /// Adds a GTID: it replaces the domain's entry when its seq_no is higher (ties: the
    /// higher server_id).
    pub fn insert(&mut self, gtid: MariaDbGtid) {
        self.domains
            .entry(gtid.domain)
            .and_modify(|cur| {
                if gtid.rank() > cur.rank() {
                    *cur = gtid;
                }
            })
            .or_insert(gtid);
    }

    /// The GTID of one domain.
    pub fn get(&self, domain: u32) -> Option<MariaDbGtid> {
        self.domains.get(&domain).copied()
    }

    /// The seq_no reached in one domain, 0 when the domain is absent.
    pub fn seq(&self, domain: u32) -> u64 {
        self.domains.get(&domain).map_or(0, |g| g.seq)
    }

    /// The GTIDs, sorted by domain.
    pub fn iter(&self) -> impl Iterator<Item = MariaDbGtid> + '_ {
        self.domains.values().copied()
    }

    /// The domains listed (including those at seq_no 0).
    pub fn domains(&self) -> impl Iterator<Item = u32> + '_ {
        self.domains.keys().copied()
    }

    /// Number of domains listed.
    pub fn len(&self) -> usize {
        self.domains.len()
    }

    /// True when no domain has a transaction (no entry, or only seq_no 0 entries).
    pub fn is_empty(&self) -> bool {
        self.domains.values().all(|g| g.seq == 0)
    }

    /// Per domain the further GTID of the two (highest seq_no; ties: higher server_id).
    pub fn union(&self, other: &Self) -> Self {
        let mut out = self.clone();
        for g in other.iter() {
            out.insert(g);
        }
        out
    }

    /// Per domain present in both, the lesser GTID of the two: the common prefix.
    pub fn intersection(&self, other: &Self) -> Self {
        let domains = self
            .domains
            .iter()
            .filter_map(|(d, a)| {
                let b = other.domains.get(d)?;
                Some((*d, if a.rank() <= b.rank() { *a } else { *b }))
            })
            .collect();
        Self { domains }
    }

    /// True when every transaction `other` implies is implied by `self`: for each domain
    /// of `other`, `other`'s seq_no <= `self`'s (a domain `self` lacks counts as seq_no 0).
    pub fn contains(&self, other: &Self) -> bool {
        other.iter().all(|g| g.seq <= self.seq(g.domain))
    }

    /// `other.contains(self)`.
    pub fn is_subset(&self, other: &Self) -> bool {
        other.contains(self)
    }

    /// The entries of `self` that go beyond `other`: the domains where `self`'s seq_no is
    /// higher than `other`'s (or `other` lacks the domain). Empty iff `other ⊇ self`.
    pub fn difference(&self, other: &Self) -> Self {
        let domains = self
            .domains
            .iter()
            .filter(|(d, g)| g.seq > other.seq(**d))
            .map(|(d, g)| (*d, *g))
            .collect();
        Self { domains }
    }

    /// Errant-transaction check: the GTIDs of `self` in the domains where `self` has
    /// transactions `other` has not (e.g. a replica's `gtid_current_pos` against its
    /// primary's `gtid_binlog_pos`). Empty when `other` has everything `self` has.
    ///
    /// Positions only compare seq_nos: a replica that wrote locally *and* fell behind
    /// shows no excess here; see [`Self::diverging_domains`] for the cases a position
    /// can still prove.
    pub fn ahead_of(&self, other: &Self) -> Vec<MariaDbGtid> {
        self.difference(other).iter().collect()
    }

    /// The domains where both positions stand at the same seq_no but name different
    /// server_ids: two different transactions with the same number, i.e. histories that
    /// have certainly diverged.
    pub fn diverging_domains(&self, other: &Self) -> Vec<u32> {
        self.iter()
            .filter(|a| {
                other
                    .get(a.domain)
                    .is_some_and(|b| b.seq == a.seq && a.seq != 0 && b.server_id != a.server_id)
            })
            .map(|a| a.domain)
            .collect()
    }
}

impl fmt::Display for MariaDbGtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.domains.values().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

impl FromStr for MariaDbGtidPos {
    type Err = GtidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl FromIterator<MariaDbGtid> for MariaDbGtidPos {
    fn from_iter<I: IntoIterator<Item = MariaDbGtid>>(iter: I) -> Self {
        let mut pos = Self::new();
        for g in iter {
            pos.insert(g);
        }
        pos
    }
}

// ---------------------------------------------------------------------------------------
// MySQL
// ---------------------------------------------------------------------------------------

/// The highest transaction number MySQL accepts (2^63 - 1).
pub const MYSQL_MAX_GNO: u64 = i64::MAX as u64;

/// A closed interval of MySQL transaction numbers, `start..=end`, `1 <= start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interval {
    pub start: u64,
    pub end: u64,
}

impl Interval {
    /// The interval `start..=end`; None when empty or outside `1..=MYSQL_MAX_GNO`.
    pub fn new(start: u64, end: u64) -> Option<Self> {
        (1 <= start && start <= end && end <= MYSQL_MAX_GNO).then_some(Self { start, end })
    }

    /// Number of transactions in the interval.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never true for a valid interval; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.end < self.start
    }

    fn parse(token: &str) -> Result<Self, GtidError> {
        let bad = |reason| GtidError::MySql {
            token: token.to_owned(),
            reason,
        };
        let num = |s: &str| -> Result<u64, GtidError> {
            if !all_digits(s) {
                return Err(bad("expected a number or a range a-b"));
            }
            s.parse::<u64>()
                .ok()
                .filter(|n| (1..=MYSQL_MAX_GNO).contains(n))
                .ok_or_else(|| bad("transaction number out of range 1..2^63-1"))
        };
        let (start, end) = match token.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(token)?;
                (n, n)
            }
        };
        Self::new(start, end).ok_or_else(|| bad("interval end is before its start"))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// The source of MySQL GTIDs: a server_uuid (lowercase, canonical 8-4-4-4-12 form) and,
/// for MySQL 8.3+ tagged GTIDs, a tag (lowercase). Untagged sorts before tagged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tsid {
    uuid: String,
    tag: Option<String>,
}

impl Tsid {
    /// Validates and normalizes a uuid (case-insensitive) and an optional tag
    /// (`[a-z_][a-z0-9_]{0,31}`, case-insensitive).
    pub fn new(uuid: &str, tag: Option<&str>) -> Result<Self, GtidError> {
        Ok(Self {
            uuid: normalize_uuid(uuid)?,
            tag: tag.map(normalize_tag).transpose()?,
        })
    }

    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
}

fn normalize_uuid(s: &str) -> Result<String, GtidError> {
    let token = s.trim();
    let ok = token.len() == 36
        && token.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if ok {
        Ok(token.to_ascii_lowercase())
    } else {
        Err(GtidError::MySql {
            token: token.to_owned(),
            reason: "expected a server uuid (8-4-4-4-12 hex digits)",
        })
    }
}

fn normalize_tag(s: &str) -> Result<String, GtidError> {
    let token = s.trim();
    let mut bytes = token.bytes();
    let ok = token.len() <= 32
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(token.to_ascii_lowercase())
    } else {
        Err(GtidError::MySql {
            token: token.to_owned(),
            reason: "expected a GTID tag ([a-z_][a-z0-9_]*, at most 32 characters)",
        })
    }
}

/// Sorts and merges overlapping or adjacent intervals.
fn normalize(mut v: Vec<Interval>) -> Vec<Interval> {
    v.sort_unstable();
    let mut out: Vec<Interval> = Vec::with_capacity(v.len());
    for iv in v {
        match out.last_mut() {
            Some(last) if iv.start <= last.end.saturating_add(1) => {
                last.end = last.end.max(iv.end);
            }
            _ => out.push(iv),
        }
    }
    out
}

fn union_iv(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    normalize(a.iter().chain(b).copied().collect())
}

fn intersection_iv(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        let (lo, hi) = (x.start.max(y.start), x.end.min(y.end));
        if lo <= hi {
            out.push(Interval { start: lo, end: hi });
        }
        if x.end < y.end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

fn difference_iv(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::new();
    let mut j = 0;
    for iv in a {
        let (mut start, end) = (iv.start, iv.end);
        while b.get(j).is_some_and(|y| y.end < start) {
            j += 1;
        }
        let mut covered = false;
        for y in b[j..].iter().take_while(|y| y.start <= end) {
            if y.start > start {
                out.push(Interval {
                    start,
                    end: y.start - 1,
                });
            }
            if y.end >= end {
                covered = true;
                break;
            }
            // y.end < end <= MYSQL_MAX_GNO: no overflow.
            start = y.end + 1;
        }
        if !covered {
            out.push(Interval { start, end });
        }
    }
    out
}

/// `a ⊆ b` for normalized lists: each interval of `a` must lie inside one of `b`
/// (adjacent intervals of `b` are merged, so a covered range never spans two).
fn subset_iv(a: &[Interval], b: &[Interval]) -> bool {
    let mut j = 0;
    a.iter().all(|x| {
        while b.get(j).is_some_and(|y| y.end < x.start) {
            j += 1;
        }
        b.get(j)
            .is_some_and(|y| y.start <= x.start && x.end <= y.end)
    })
}

/// A MySQL GTID set (`@@gtid_executed`, `Retrieved_Gtid_Set`, `Executed_Gtid_Set`):
/// per source (uuid and optional tag), a sorted list of disjoint, non-adjacent intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MySqlGtidSet {
    /// Invariant: no empty list; each list normalized.
    sets: BTreeMap<Tsid, Vec<Interval>>,
}

impl MySqlGtidSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `uuid:interval[:interval...][:tag:interval...]` elements separated by
    /// commas, as MySQL prints them (including the `,\n` of SHOW output); uuids and tags
    /// are case-insensitive, intervals may overlap or repeat, the empty string is the
    /// empty set.
    pub fn parse(s: &str) -> Result<Self, GtidError> {
        let mut set = Self::new();
        for e in elements(s) {
            set.parse_element(e)?;
        }
        Ok(set)
    }

    fn parse_element(&mut self, element: &str) -> Result<(), GtidError> {
        let mut parts = element.split(':').map(str::trim);
        let uuid = normalize_uuid(parts.next().unwrap_or_default())?;
        let mut tsid = Tsid {
            uuid: uuid.clone(),
            tag: None,
        };
        // Whether the current tag (or the bare uuid) has had an interval yet.
        let mut has_interval = false;
        for part in parts {
            if part.starts_with(|c: char| c.is_ascii_digit()) {
                let iv = Interval::parse(part)?;
                self.add(tsid.clone(), &[iv]);
                has_interval = true;
            } else if part.is_empty() {
                return Err(GtidError::MySql {
                    token: element.to_owned(),
                    reason: "empty component between colons",
                });
            } else {
                if tsid.tag.is_some() && !has_interval {
                    return Err(GtidError::MySql {
                        token: element.to_owned(),
                        reason: "GTID tag without an interval",
                    });
                }
                tsid = Tsid {
                    uuid: uuid.clone(),
                    tag: Some(normalize_tag(part)?),
                };
                has_interval = false;
            }
        }
        if has_interval {
            Ok(())
        } else {
            Err(GtidError::MySql {
                token: element.to_owned(),
                reason: "expected uuid[:tag]:interval",
            })
        }
    }

    fn add(&mut self, tsid: Tsid, ivs: &[Interval]) {
        if ivs.is_empty() {
            return;
        }
        let merged = match self.sets.get(&tsid) {
            Some(cur) => union_iv(cur, ivs),
            None => normalize(ivs.to_vec()),
        };
        self.sets.insert(tsid, merged);
    }

    /// Adds the transactions `start..=end` of a source.
    pub fn insert(
        &mut self,
        uuid: &str,
        tag: Option<&str>,
        start: u64,
        end: u64,
    ) -> Result<(), GtidError> {
        let tsid = Tsid::new(uuid, tag)?;
        let iv = Interval::new(start, end).ok_or_else(|| GtidError::MySql {
            token: format!("{start}-{end}"),
            reason: "interval must satisfy 1 <= start <= end <= 2^63-1",
        })?;
        self.add(tsid, &[iv]);
        Ok(())
    }

    /// True when the single GTID `uuid[:tag]:gno` is in the set.
    pub fn contains_gtid(&self, uuid: &str, tag: Option<&str>, gno: u64) -> bool {
        let Ok(tsid) = Tsid::new(uuid, tag) else {
            return false;
        };
        self.sets
            .get(&tsid)
            .is_some_and(|ivs| ivs.iter().any(|iv| iv.start <= gno && gno <= iv.end))
    }

    /// The intervals of one source (empty when absent).
    pub fn intervals(&self, tsid: &Tsid) -> &[Interval] {
        self.sets.get(tsid).map_or(&[], Vec::as_slice)
    }

    /// The sources and their intervals, sorted by uuid then tag (untagged first).
    pub fn iter(&self) -> impl Iterator<Item = (&Tsid, &[Interval])> + '_ {
        self.sets.iter().map(|(t, v)| (t, v.as_slice()))
    }

    /// True when the set holds no transaction.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Number of transactions in the set (saturating at u64::MAX).
    pub fn count(&self) -> u64 {
        self.sets
            .values()
            .flatten()
            .fold(0u64, |n, iv| n.saturating_add(iv.len()))
    }

    pub fn union(&self, other: &Self) -> Self {
        let mut out = self.clone();
        for (t, ivs) in &other.sets {
            out.add(t.clone(), ivs);
        }
        out
    }

    pub fn intersection(&self, other: &Self) -> Self {
        let sets = self
            .sets
            .iter()
            .filter_map(|(t, a)| {
                let v = intersection_iv(a, other.sets.get(t)?);
                (!v.is_empty()).then(|| (t.clone(), v))
            })
            .collect();
        Self { sets }
    }

    /// The transactions of `self` that are not in `other` (intervals are split as
    /// needed). A replica's `gtid_executed` minus its primary's gives the errant ones.
    pub fn difference(&self, other: &Self) -> Self {
        let sets = self
            .sets
            .iter()
            .filter_map(|(t, a)| {
                let v = match other.sets.get(t) {
                    Some(b) => difference_iv(a, b),
                    None => a.clone(),
                };
                (!v.is_empty()).then(|| (t.clone(), v))
            })
            .collect();
        Self { sets }
    }

    /// True when every transaction of `other` is in `self`.
    pub fn contains(&self, other: &Self) -> bool {
        other
            .sets
            .iter()
            .all(|(t, b)| self.sets.get(t).is_some_and(|a| subset_iv(b, a)))
    }

    /// `other.contains(self)`.
    pub fn is_subset(&self, other: &Self) -> bool {
        other.contains(self)
    }
}

impl fmt::Display for MySqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last_uuid: Option<&str> = None;
        for (tsid, ivs) in &self.sets {
            if last_uuid != Some(tsid.uuid.as_str()) {
                if last_uuid.is_some() {
                    f.write_str(",")?;
                }
                f.write_str(&tsid.uuid)?;
                last_uuid = Some(&tsid.uuid);
            }
            if let Some(tag) = &tsid.tag {
                write!(f, ":{tag}")?;
            }
            for iv in ivs {
                write!(f, ":{iv}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for MySqlGtidSet {
    type Err = GtidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------------------
// Either family
// ---------------------------------------------------------------------------------------

/// A GTID set of either server family.
///
/// Binary operations need both sides of the same family and fail with
/// [`GtidError::FlavorMismatch`] otherwise, except that an empty set combines with a set
/// of either family (the empty string is a valid GTID set of both). Serialized as its
/// canonical string; deserializing guesses the family from the text (a `:` means MySQL;
/// the empty string becomes an empty MariaDB position).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GtidSet {
    MariaDb(MariaDbGtidPos),
    MySql(MySqlGtidSet),
}

impl GtidSet {
    /// Parses a GTID text of the given family.
    pub fn parse(flavor: Flavor, s: &str) -> Result<Self, GtidError> {
        Ok(match flavor {
            Flavor::MariaDb => Self::MariaDb(MariaDbGtidPos::parse(s)?),
            Flavor::MySql => Self::MySql(MySqlGtidSet::parse(s)?),
        })
    }

    /// Parses a GTID text, guessing its family: MySQL sets contain `:`, MariaDB
    /// positions never do. The empty string gives an empty MariaDB position.
    pub fn parse_detect(s: &str) -> Result<Self, GtidError> {
        let flavor = if s.contains(':') {
            Flavor::MySql
        } else {
            Flavor::MariaDb
        };
        Self::parse(flavor, s)
    }

    /// The empty set of a family.
    pub fn empty(flavor: Flavor) -> Self {
        match flavor {
            Flavor::MariaDb => Self::MariaDb(MariaDbGtidPos::new()),
            Flavor::MySql => Self::MySql(MySqlGtidSet::new()),
        }
    }

    pub fn flavor(&self) -> Flavor {
        match self {
            Self::MariaDb(_) => Flavor::MariaDb,
            Self::MySql(_) => Flavor::MySql,
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Self::MariaDb(p) => p.is_empty(),
            Self::MySql(s) => s.is_empty(),
        }
    }

    pub fn as_mariadb(&self) -> Option<&MariaDbGtidPos> {
        match self {
            Self::MariaDb(p) => Some(p),
            Self::MySql(_) => None,
        }
    }

    pub fn as_mysql(&self) -> Option<&MySqlGtidSet> {
        match self {
            Self::MySql(s) => Some(s),
            Self::MariaDb(_) => None,
        }
    }

    /// This set as one of `flavor`: itself, or an empty set of `flavor` when it is empty.
    fn coerce(&self, flavor: Flavor) -> Option<Cow<'_, Self>> {
        if self.flavor() == flavor {
            Some(Cow::Borrowed(self))
        } else if self.is_empty() {
            Some(Cow::Owned(Self::empty(flavor)))
        } else {
            None
        }
    }

    /// Both sides as the same family (that of the first non-empty side).
    fn pair<'a>(&'a self, other: &'a Self) -> Result<(Cow<'a, Self>, Cow<'a, Self>), GtidError> {
        let flavor = if self.is_empty() {
            other.flavor()
        } else {
            self.flavor()
        };
        match (self.coerce(flavor), other.coerce(flavor)) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(GtidError::FlavorMismatch {
                left: self.flavor(),
                right: other.flavor(),
            }),
        }
    }

    fn combine(
        &self,
        other: &Self,
        maria: impl FnOnce(&MariaDbGtidPos, &MariaDbGtidPos) -> MariaDbGtidPos,
        my: impl FnOnce(&MySqlGtidSet, &MySqlGtidSet) -> MySqlGtidSet,
    ) -> Result<Self, GtidError> {
        let (a, b) = self.pair(other)?;
        match (a.as_ref(), b.as_ref()) {
            (Self::MariaDb(a), Self::MariaDb(b)) => Ok(Self::MariaDb(maria(a, b))),
            (Self::MySql(a), Self::MySql(b)) => Ok(Self::MySql(my(a, b))),
            _ => Err(GtidError::FlavorMismatch {
                left: self.flavor(),
                right: other.flavor(),
            }),
        }
    }

    pub fn union(&self, other: &Self) -> Result<Self, GtidError> {
        self.combine(other, MariaDbGtidPos::union, MySqlGtidSet::union)
    }

    pub fn intersection(&self, other: &Self) -> Result<Self, GtidError> {
        self.combine(
            other,
            MariaDbGtidPos::intersection,
            MySqlGtidSet::intersection,
        )
    }

    /// What `self` has beyond `other`: a set difference for MySQL, the domains that are
    /// further ahead for MariaDB (see [`MariaDbGtidPos::difference`]).
    pub fn difference(&self, other: &Self) -> Result<Self, GtidError> {
        self.combine(other, MariaDbGtidPos::difference, MySqlGtidSet::difference)
    }

    /// True when `self` has every transaction of `other`.
    pub fn contains(&self, other: &Self) -> Result<bool, GtidError> {
        let (a, b) = self.pair(other)?;
        match (a.as_ref(), b.as_ref()) {
            (Self::MariaDb(a), Self::MariaDb(b)) => Ok(a.contains(b)),
            (Self::MySql(a), Self::MySql(b)) => Ok(a.contains(b)),
            _ => Err(GtidError::FlavorMismatch {
                left: self.flavor(),
                right: other.flavor(),
            }),
        }
    }

    /// `other.contains(self)`.
    pub fn is_subset(&self, other: &Self) -> Result<bool, GtidError> {
        other.contains(self)
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MariaDb(p) => p.fmt(f),
            Self::MySql(s) => s.fmt(f),
        }
    }
}

impl From<MariaDbGtidPos> for GtidSet {
    fn from(p: MariaDbGtidPos) -> Self {
        Self::MariaDb(p)
    }
}

impl From<MySqlGtidSet> for GtidSet {
    fn from(s: MySqlGtidSet) -> Self {
        Self::MySql(s)
    }
}

// ---------------------------------------------------------------------------------------
// serde: as the canonical string
// ---------------------------------------------------------------------------------------

macro_rules! serde_as_string {
    ($t:ty, $parse:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = Cow::<'de, str>::deserialize(deserializer)?;
                $parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_string!(MariaDbGtidPos, MariaDbGtidPos::parse);
serde_as_string!(MySqlGtidSet, MySqlGtidSet::parse);
serde_as_string!(GtidSet, GtidSet::parse_detect);

#[cfg(test)]
mod tests;
