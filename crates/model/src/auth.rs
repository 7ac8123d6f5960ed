//! Users, roles and what each role may do: the authorisation decision as one pure
//! function over (role, method, route), and the rules for user names and passwords.
//!
//! - `admin`: everything, including users and tokens.
//! - `operator`: every cluster action (every change under `/api/v1/` except users and
//!   tokens), and reading everything.
//! - `viewer`: reading only: every GET; no POST, PUT or DELETE under `/api/v1/`.
//!
//! The web pages follow the same rule through the same function (their forms post to
//! routes classed like the API's).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A user's role.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    Viewer,
    Operator,
    Admin,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for UserRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UserRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "operator" => Ok(Self::Operator),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "`{}` is not a role: one of admin, operator, viewer",
                crate::input::printable(other)
            )),
        }
    }
}

/// What a request does, for the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads (GET, HEAD).
    Read,
    /// Changes a cluster, a job, a channel, a repository: everything but users.
    Change,
    /// Creates, changes or deletes users and tokens.
    Users,
}

/// What a request to `path` with `method` does.
pub fn access(method: &str, path: &str) -> Access {
    if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD") {
        return Access::Read;
    }
    let users = ["/api/v1/users", "/api/v1/tokens"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")));
    if users { Access::Users } else { Access::Change }
}

/// Whether `role` may do `access`.
pub fn allowed(role: UserRole, access: Access) -> bool {
    match access {
        Access::Read => true,
        Access::Change => role >= UserRole::Operator,
        Access::Users => role == UserRole::Admin,
    }
}

/// The shortest password nines accepts.
pub const MIN_PASSWORD: usize = 12;
/// The longest (argon2 takes any length; this bounds the work per login).
pub const MAX_PASSWORD: usize = 1024;

/// A user name: 1-64 letters, digits, `.`, `_`, `-`, starting with a letter or digit.
pub fn check_user_name(field: &str, name: &str) -> Result<String, crate::input::InputError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(crate::input::InputError::new(
            field,
            format!(
                "`{}` is not a user name: 1-64 letters, digits, `.`, `_` or `-`, starting with a letter or digit",
                crate::input::printable(name)
            ),
        ))
    }
}

/// A password: at least [`MIN_PASSWORD`] characters, at most [`MAX_PASSWORD`], no
/// control characters (a trailing newline of a password file is removed before).
pub fn check_password(field: &str, pw: &str) -> Result<(), crate::input::InputError> {
    let n = pw.chars().count();
    if n < MIN_PASSWORD {
        return Err(crate::input::InputError::new(
            field,
            format!("a password has at least {MIN_PASSWORD} characters (this one has {n})"),
        ));
    }
    if n > MAX_PASSWORD {
        return Err(crate::input::InputError::new(
            field,
            format!("a password has at most {MAX_PASSWORD} characters"),
        ));
    }
    if pw.chars().any(char::is_control) {
        return Err(crate::input::InputError::new(
            field,
            "a password cannot contain control characters",
        ));
    }
    Ok(())
}

/// Login attempts: how many failures within the window lock a source or a user name out
/// for the rest of the window.
pub const LOGIN_FAILURES: usize = 5;
pub const LOGIN_WINDOW_SECS: i64 = 300;

/// Whether another login attempt may be tried, given the failures' times (unix seconds)
/// of the source or the name; None: yes; Some(seconds): wait that long.
pub fn login_wait(failures: &[i64], now: i64) -> Option<i64> {
    let recent: Vec<i64> = failures
        .iter()
        .copied()
        .filter(|t| now - t < LOGIN_WINDOW_SECS)
        .collect();
    if recent.len() < LOGIN_FAILURES {
        return None;
    }
    let oldest = recent.iter().min().copied().unwrap_or(now);
    Some((oldest + LOGIN_WINDOW_SECS - now).max(1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn roles_and_routes() {
        use Access::*;
        use UserRole::*;
        let cases = [
            ("GET", "/api/v1/clusters", Read),
            ("HEAD", "/api/v1/clusters", Read),
            ("GET", "/api/v1/users", Read),
            ("POST", "/api/v1/clusters", Change),
            ("PUT", "/api/v1/clusters/shop/maintenance", Change),
            ("DELETE", "/api/v1/clusters/shop", Change),
            ("POST", "/api/v1/users", Users),
            ("DELETE", "/api/v1/users/ann", Users),
            ("POST", "/api/v1/tokens", Users),
            ("POST", "/api/v1/usersx", Change),
        ];
        for (m, p, want) in cases {
            assert_eq!(access(m, p), want, "{m} {p}");
        }
        let table = [
            (Viewer, Read, true),
            (Viewer, Change, false),
            (Viewer, Users, false),
            (Operator, Read, true),
            (Operator, Change, true),
            (Operator, Users, false),
            (Admin, Read, true),
            (Admin, Change, true),
            (Admin, Users, true),
        ];
        for (r, a, want) in table {
            assert_eq!(allowed(r, a), want, "{r} {a:?}");
        }
        for r in [Viewer, Operator, Admin] {
            assert_eq!(r.as_str().parse::<UserRole>().unwrap(), r);
        }
        assert!(
            "root"
                .parse::<UserRole>()
                .unwrap_err()
                .contains("admin, operator, viewer")
        );
    }

    #[test]
    fn names_and_passwords() {
        for ok in ["ann", "a", "ops.team-1", "B_2"] {
            assert!(check_user_name("name", ok).is_ok(), "{ok}");
        }
        for bad in ["", ".ann", "-x", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(check_user_name("name", bad).is_err(), "{bad}");
        }
        assert!(check_password("password", "short").is_err());
        assert!(check_password("password", "twelve-chars").is_ok());
        assert!(check_password("password", "twelve-chars\u{7}").is_err());
        assert!(check_password("password", &"x".repeat(1025)).is_err());
    }

    #[test]
    fn logins_are_limited() {
        assert_eq!(login_wait(&[], 1000), None);
        assert_eq!(login_wait(&[990, 991, 992, 993], 1000), None);
        assert_eq!(login_wait(&[990, 991, 992, 993, 994], 1000), Some(290));
        // Old failures fall out of the window.
        assert_eq!(login_wait(&[100, 991, 992, 993, 994], 1000), None);
        assert_eq!(login_wait(&[701, 702, 703, 704, 705], 1000), Some(1));
        assert_eq!(login_wait(&[700, 701, 702, 703, 704], 1000), None);
    }
}
