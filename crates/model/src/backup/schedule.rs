//! Backup schedules: a cron expression (five fields, or six with seconds first) read in a
//! time zone, and when a schedule is due. The controller keeps each schedule's next run
//! in the store, so a run missed while it was down is made once when it starts again.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

use crate::input::InputError;

/// A checked schedule: its cron expression and time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

impl Schedule {
    /// Parses `cron` (e.g. `0 3 * * *`, or `*/10 * * * * *` with seconds) in zone `tz`
    /// (an IANA name such as `Europe/Berlin`; `UTC` when empty).
    pub fn parse(cron: &str, tz: &str) -> Result<Self, InputError> {
        let tz: Tz = if tz.trim().is_empty() {
            Tz::UTC
        } else {
            tz.trim().parse().map_err(|_| {
                InputError::new(
                    "tz",
                    format!(
                        "tz `{}` is not a known time zone (e.g. UTC, Europe/Berlin)",
                        crate::input::printable(tz)
                    ),
                )
            })?
        };
        if cron.len() > 256 {
            return Err(InputError::new(
                "cron",
                "cron expression longer than 256 characters",
            ));
        }
        let parsed = Cron::from_str(cron.trim()).map_err(|e| {
            InputError::new(
                "cron",
                format!("cron `{}`: {e}", crate::input::printable(cron)),
            )
        })?;
        let s = Self { cron: parsed, tz };
        // A pattern that never fires (31 February) is refused rather than kept idle.
        if s.next_after(Utc::now()).is_none() {
            return Err(InputError::new(
                "cron",
                format!("cron `{cron}` never fires"),
            ));
        }
        Ok(s)
    }

    /// The first time strictly after `t` the schedule fires.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }
}

/// What to do with a schedule now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleAction {
    /// Not due: look again at this time.
    Wait(DateTime<Utc>),
    /// Take a backup now and store `next` as the next run. A run missed while the
    /// controller was down (its time long past) is made once, not once per miss.
    Run { next: Option<DateTime<Utc>> },
}

/// Whether a schedule whose next run is `next_run` is due at `now`.
pub fn schedule_action(
    s: &Schedule,
    next_run: DateTime<Utc>,
    now: DateTime<Utc>,
) -> ScheduleAction {
    if now < next_run {
        ScheduleAction::Wait(next_run)
    } else {
        ScheduleAction::Run {
            next: s.next_after(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_runs_follow_the_zone_and_dst() {
        // (cron, tz, after, next)
        let cases = [
            (
                "0 3 * * *",
                "UTC",
                "2026-11-30T02:00:00Z",
                "2026-11-30T03:00:00Z",
            ),
            (
                "0 3 * * *",
                "UTC",
                "2026-11-30T03:00:00Z",
                "2026-12-01T03:00:00Z",
            ),
            (
                "0 3 * * *",
                "Europe/Berlin",
                "2026-11-30T00:00:00Z",
                "2026-11-30T02:00:00Z",
            ),
            // Summer time in Berlin: UTC+2.
            (
                "0 3 * * *",
                "Europe/Berlin",
                "2026-07-01T00:00:00Z",
                "2026-07-01T01:00:00Z",
            ),
            // 02:30 does not exist on 29 March 2026 in Berlin: that day's backup runs when
            // the clocks jump (03:00 CEST), it is not skipped.
            (
                "30 2 * * *",
                "Europe/Berlin",
                "2026-03-28T12:00:00Z",
                "2026-03-29T01:00:00Z",
            ),
            (
                "*/10 * * * * *",
                "",
                "2026-11-30T00:00:01Z",
                "2026-11-30T00:00:10Z",
            ),
            (
                "0 0 * * SUN",
                "UTC",
                "2026-11-30T00:00:00Z",
                "2026-12-06T00:00:00Z",
            ),
        ];
        for (cron, tz, after, next) in cases {
            let s = Schedule::parse(cron, tz).unwrap();
            assert_eq!(
                s.next_after(at(after)),
                Some(at(next)),
                "{cron} {tz} after {after}"
            );
        }
    }

    #[test]
    fn bad_schedules_name_their_field() {
        for (cron, tz, field) in [
            ("61 * * * *", "UTC", "cron"),
            ("every day", "UTC", "cron"),
            ("0 3 * * *", "Mars/Olympus", "tz"),
            ("0 0 31 2 *", "UTC", "cron"),
        ] {
            let e = Schedule::parse(cron, tz).unwrap_err();
            assert_eq!(e.field, field, "{cron} {tz}: {e}");
        }
    }

    #[test]
    fn a_missed_run_is_made_once() {
        let s = Schedule::parse("0 * * * *", "UTC").unwrap();
        let t = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 11, 30, h, m, 0).unwrap();
        assert_eq!(
            schedule_action(&s, t(3, 0), t(2, 59)),
            ScheduleAction::Wait(t(3, 0))
        );
        assert_eq!(
            schedule_action(&s, t(3, 0), t(3, 0)),
            ScheduleAction::Run {
                next: Some(t(4, 0))
            }
        );
        // Down from 03:00 to 07:10: one run now, the next at 08:00.
        assert_eq!(
            schedule_action(&s, t(3, 0), t(7, 10)),
            ScheduleAction::Run {
                next: Some(t(8, 0))
            }
        );
    }
}
