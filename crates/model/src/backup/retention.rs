//! Which backups a retention policy lets go: everything the restorable window needs is
//! kept — every backup finished inside the window, what those build on, and the newest
//! self-contained backup (full or logical) finished before the window starts, so that
//! its start stays restorable — plus the newest few self-contained backups whatever their
//! age. Incrementals live and die with what they build on. Running backups are never
//! touched; failed ones go once they are older than the window.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use super::{BackupMethod, BackupState};

/// A backup as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFacts {
    pub id: i64,
    pub method: BackupMethod,
    pub state: BackupState,
    pub parent_id: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// How long backups are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// The restorable window: any point this far back stays restorable.
    pub window: Duration,
    /// Self-contained backups kept whatever their age.
    pub min_fulls: u32,
}

/// The ids of the backups to delete, incrementals before what they build on.
pub fn expired(backups: &[BackupFacts], policy: &RetentionPolicy, now: DateTime<Utc>) -> Vec<i64> {
    let start = now - policy.window;
    let by_id: HashMap<i64, &BackupFacts> = backups.iter().map(|b| (b.id, b)).collect();
    let completed = |b: &&BackupFacts| b.state == BackupState::Completed;
    let base = |b: &&BackupFacts| b.method != BackupMethod::Incremental;
    let mut keep: HashSet<i64> = HashSet::new();
    // What a kept backup builds on is kept.
    let keep_chain = |keep: &mut HashSet<i64>, id: i64| {
        let mut next = Some(id);
        while let Some(i) = next {
            if !keep.insert(i) {
                break;
            }
            next = by_id.get(&i).and_then(|b| b.parent_id);
        }
    };
    for b in backups {
        let recent = b.finished_at.unwrap_or(b.started_at) >= start;
        if b.state == BackupState::Running || (recent && b.state == BackupState::Failed) {
            keep.insert(b.id);
        } else if recent && b.state == BackupState::Completed {
            keep_chain(&mut keep, b.id);
        }
    }
    let mut bases: Vec<&BackupFacts> = backups.iter().filter(completed).filter(base).collect();
    bases.sort_by_key(|b| std::cmp::Reverse((b.finished_at, b.id)));
    if let Some(b) = bases
        .iter()
        .find(|b| b.finished_at.is_some_and(|f| f < start))
    {
        keep.insert(b.id);
    }
    for b in bases.iter().take(policy.min_fulls as usize) {
        keep.insert(b.id);
    }
    // An incremental whose chain lost a link goes too.
    let broken = |id: i64, keep: &HashSet<i64>| {
        let mut next = by_id.get(&id).and_then(|b| b.parent_id);
        while let Some(p) = next {
            if !keep.contains(&p) {
                return true;
            }
            next = by_id.get(&p).and_then(|b| b.parent_id);
        }
        false
    };
    let kept_whole: HashSet<i64> = keep
        .iter()
        .copied()
        .filter(|id| !broken(*id, &keep))
        .collect();
    let mut gone: Vec<&BackupFacts> = backups
        .iter()
        .filter(|b| b.state != BackupState::Running && !kept_whole.contains(&b.id))
        .collect();
    // Newest first: an incremental is always newer than what it builds on.
    gone.sort_by_key(|b| std::cmp::Reverse(b.id));
    gone.iter().map(|b| b.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::testkit::t;
    use BackupMethod::*;
    use BackupState::*;

    /// A backup finished `age` seconds before t(0) (started a second earlier).
    fn b(
        id: i64,
        method: BackupMethod,
        state: BackupState,
        parent: Option<i64>,
        age: i64,
    ) -> BackupFacts {
        BackupFacts {
            id,
            method,
            state,
            parent_id: parent,
            started_at: t(-age - 1),
            finished_at: (state != Running).then(|| t(-age)),
        }
    }

    #[test]
    fn the_window_and_what_it_needs_are_kept() {
        let day = 86_400;
        let policy = RetentionPolicy {
            window: Duration::days(7),
            min_fulls: 1,
        };
        // (name, backups, expired)
        let cases: Vec<(&str, Vec<BackupFacts>, Vec<i64>)> = vec![
            (
                "all inside the window",
                vec![
                    b(1, Full, Completed, None, 3 * day),
                    b(2, Incremental, Completed, Some(1), day),
                ],
                vec![],
            ),
            (
                "old fulls go but the newest before the window stays",
                vec![
                    b(1, Full, Completed, None, 30 * day),
                    b(2, Full, Completed, None, 20 * day),
                    b(3, Full, Completed, None, 9 * day),
                    b(4, Full, Completed, None, 2 * day),
                ],
                vec![2, 1],
            ),
            (
                "an incremental inside keeps its old full",
                vec![
                    b(1, Full, Completed, None, 20 * day),
                    b(2, Incremental, Completed, Some(1), 10 * day),
                    b(3, Incremental, Completed, Some(2), day),
                ],
                vec![],
            ),
            (
                "incrementals die with their full",
                vec![
                    b(1, Full, Completed, None, 20 * day),
                    b(2, Incremental, Completed, Some(1), 15 * day),
                    b(3, Full, Completed, None, 10 * day),
                    b(4, Full, Completed, None, day),
                ],
                vec![2, 1],
            ),
            (
                "old incrementals of the kept base go, the base stays",
                vec![
                    b(1, Full, Completed, None, 20 * day),
                    b(2, Incremental, Completed, Some(1), 15 * day),
                ],
                vec![2],
            ),
            (
                "failed ones go when old, stay when recent; running ones stay",
                vec![
                    b(1, Full, Failed, None, 20 * day),
                    b(2, Full, Completed, None, 3 * day),
                    b(3, Full, Failed, None, day),
                    b(4, Incremental, Running, Some(2), 0),
                ],
                vec![1],
            ),
            (
                "logical backups are self-contained",
                vec![
                    b(1, Logical, Completed, None, 20 * day),
                    b(2, Logical, Completed, None, 10 * day),
                    b(3, Full, Completed, None, day),
                ],
                vec![1],
            ),
            (
                "nothing recent: the newest base is kept however old",
                vec![
                    b(1, Full, Completed, None, 90 * day),
                    b(2, Full, Completed, None, 60 * day),
                ],
                vec![1],
            ),
        ];
        for (name, backups, want) in cases {
            assert_eq!(expired(&backups, &policy, t(0)), want, "{name}");
        }
    }

    #[test]
    fn a_minimum_of_fulls_is_kept_whatever_their_age() {
        let day = 86_400;
        let policy = RetentionPolicy {
            window: Duration::days(1),
            min_fulls: 3,
        };
        let backups = vec![
            b(1, Full, Completed, None, 40 * day),
            b(2, Full, Completed, None, 30 * day),
            b(3, Full, Completed, None, 20 * day),
            b(4, Full, Completed, None, 10 * day),
        ];
        assert_eq!(expired(&backups, &policy, t(0)), vec![1]);
    }
}
