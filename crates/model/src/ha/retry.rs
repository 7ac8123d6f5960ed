//! One retry rule for every automatic repair (node restart, failover, rejoin, Galera
//! recovery): a bounded number of attempts per outage, the first after a grace period,
//! each next one after a wait that doubles.
//!
//! The attempts are passed in with their times (the controller keeps them in the store,
//! so a restarted controller does not start counting again); attempts made before the
//! current outage began are ignored, so nobody has to clear them when it ends.

use chrono::{DateTime, Duration, Utc};

use crate::ha::policy::HaPolicy;

/// A bounded number of attempts per outage with a doubling wait between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudget {
    /// Attempts allowed in one outage.
    pub max_attempts: u32,
    /// Wait between the outage's start and the first attempt.
    pub grace: Duration,
    /// Wait after the first attempt; doubled after each further one.
    pub backoff: Duration,
}

/// What a [`RetryBudget`] allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryVerdict {
    /// Try now; `attempt` counts from 1 within the outage.
    Go { attempt: u32 },
    /// Not yet: look again at `until`.
    Wait { until: DateTime<Utc> },
    /// Every attempt of this outage was made.
    Exhausted { attempts: u32 },
}

impl RetryBudget {
    /// The policy's restart budget with `grace` before the first attempt.
    pub fn from_policy(policy: &HaPolicy, grace: Duration) -> Self {
        Self {
            max_attempts: policy.max_restart_attempts,
            grace,
            backoff: policy.restart_backoff,
        }
    }

    /// The attempts of the outage that began at `since`.
    pub fn in_outage(since: DateTime<Utc>, attempts: &[DateTime<Utc>]) -> Vec<DateTime<Utc>> {
        let mut v: Vec<DateTime<Utc>> = attempts.iter().copied().filter(|a| *a >= since).collect();
        v.sort();
        v
    }

    /// What may be done now in the outage that began at `since`, given every attempt
    /// made (those before `since` do not count).
    pub fn next(
        &self,
        since: DateTime<Utc>,
        attempts: &[DateTime<Utc>],
        now: DateTime<Utc>,
    ) -> RetryVerdict {
        let made = Self::in_outage(since, attempts);
        let done = u32::try_from(made.len()).unwrap_or(u32::MAX);
        if done >= self.max_attempts {
            return RetryVerdict::Exhausted { attempts: done };
        }
        let at = match made.last() {
            None => since + self.grace,
            Some(last) => *last + self.wait_after(done),
        };
        if now < at {
            RetryVerdict::Wait { until: at }
        } else {
            RetryVerdict::Go { attempt: done + 1 }
        }
    }

    /// The wait after `done` attempts: the backoff, doubled after each attempt past the
    /// first (capped at 2^16 times).
    pub fn wait_after(&self, done: u32) -> Duration {
        let doublings = done.saturating_sub(1).min(16);
        self.backoff
            .checked_mul(1 << doublings)
            .unwrap_or(self.backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::testkit::t;

    #[test]
    fn attempts_wait_double_and_run_out() {
        let b = RetryBudget {
            max_attempts: 3,
            grace: Duration::seconds(5),
            backoff: Duration::seconds(10),
        };
        use RetryVerdict::*;
        // (outage since, attempts made, now, verdict)
        let cases: Vec<(&str, i64, Vec<i64>, i64, RetryVerdict)> = vec![
            ("in the grace period", 0, vec![], 3, Wait { until: t(5) }),
            ("grace over", 0, vec![], 5, Go { attempt: 1 }),
            (
                "after one attempt: 10 s",
                0,
                vec![5],
                14,
                Wait { until: t(15) },
            ),
            ("second attempt", 0, vec![5], 15, Go { attempt: 2 }),
            (
                "after two: doubled to 20 s",
                0,
                vec![5, 15],
                30,
                Wait { until: t(35) },
            ),
            ("third attempt", 0, vec![5, 15], 35, Go { attempt: 3 }),
            (
                "out of attempts",
                0,
                vec![5, 15, 35],
                1000,
                Exhausted { attempts: 3 },
            ),
            (
                "an earlier outage does not count",
                100,
                vec![5, 15, 35],
                105,
                Go { attempt: 1 },
            ),
            (
                "order of the record does not matter",
                0,
                vec![15, 5],
                30,
                Wait { until: t(35) },
            ),
        ];
        for (name, since, made, now, want) in cases {
            let made: Vec<_> = made.into_iter().map(t).collect();
            assert_eq!(b.next(t(since), &made, t(now)), want, "{name}");
        }
    }

    #[test]
    fn a_huge_backoff_does_not_overflow() {
        let b = RetryBudget {
            max_attempts: 100,
            grace: Duration::zero(),
            backoff: Duration::days(365),
        };
        assert_eq!(b.wait_after(1), Duration::days(365));
        assert!(b.wait_after(60) >= Duration::days(365));
    }
}
