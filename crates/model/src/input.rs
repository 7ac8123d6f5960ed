//! The validation boundary: every value a person types (in the CLI, the API or the UI) is
//! checked here once, against what every layer below accepts — MariaDB option files, the
//! service layer's character set, shell quoting, URL path segments — and turned into a
//! type that only holds accepted values. Errors name the field and the value.
//!
//! What each check accepts, and why, is listed in docs/security.md.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;

/// A value refused at the boundary: the field it came in, and why (naming the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    pub field: String,
    pub message: String,
}

impl InputError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Nodes one cluster may have: pre-flight opens every host at once, and Galera's group
/// communication is not meant for more.
pub const MAX_NODES: usize = 64;
/// Longest cluster name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest account name (MariaDB's own limit is 80 characters; 32 keeps MySQL 5.7 happy).
pub const MAX_ACCOUNT_LEN: usize = 32;
/// Longest free text a person attaches to something (a maintenance reason, a note).
pub const MAX_TEXT_LEN: usize = 1024;
/// Longest host name (RFC 1123).
pub const MAX_HOST_LEN: usize = 253;

/// Words a cluster may not be named: they name routes beside `/api/v1/clusters/{name}`
/// (and the UI's pages to come), so a cluster so named could never be shown or deleted.
pub const RESERVED_CLUSTER_NAMES: &[&str] = &["import", "new", "nodes", "jobs", "events"];

/// The accounts nines creates on every server it deploys.
pub const NINES_ADMIN_ACCOUNT: &str = "nines_admin";
pub const NINES_MONITOR_ACCOUNT: &str = "nines_monitor";
pub const NINES_REPLICATION_ACCOUNT: &str = "nines_repl";

/// Accounts a person may not name as the cluster's administrator: nines's own (taking one
/// over would lock nines out of its nodes), and the server's own system accounts.
pub const RESERVED_ACCOUNTS: &[&str] = &[
    NINES_ADMIN_ACCOUNT,
    NINES_MONITOR_ACCOUNT,
    NINES_REPLICATION_ACCOUNT,
    "mysql",
    "mariadb.sys",
    "root",
    "PUBLIC",
];

/// A cluster's name: 1-64 letters, digits, `-`, `_`, `.`, starting with a letter or digit,
/// and not a reserved word. Safe in a URL path segment, a file name, a MariaDB option
/// value and a shell word as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClusterName(String);

impl ClusterName {
    pub fn parse(field: &str, s: &str) -> Result<Self, InputError> {
        if s.is_empty() || s.chars().count() > MAX_NAME_LEN {
            return Err(InputError::new(
                field,
                format!(
                    "{field} `{}` must be 1-{MAX_NAME_LEN} characters",
                    printable(s)
                ),
            ));
        }
        let first_ok = s.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !first_ok
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(InputError::new(
                field,
                format!(
                    "{field} `{}` may hold only letters, digits, `-`, `_` and `.`, and must start with a letter or digit",
                    printable(s)
                ),
            ));
        }
        if RESERVED_CLUSTER_NAMES
            .iter()
            .any(|r| r.eq_ignore_ascii_case(s))
        {
            return Err(InputError::new(
                field,
                format!(
                    "{field} `{s}` is reserved (it names a route of the API); reserved: {}",
                    RESERVED_CLUSTER_NAMES.join(", ")
                ),
            ));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ClusterName {
    type Error = InputError;
    fn try_from(s: String) -> Result<Self, InputError> {
        Self::parse("name", &s)
    }
}

impl From<ClusterName> for String {
    fn from(n: ClusterName) -> String {
        n.0
    }
}

/// A database account name nines puts into SQL (quoted) and option files: 1-32 letters,
/// digits, `_`, `-`, `.`; one nines is to create is also not one of nines's own or the
/// server's system accounts ([`AccountName::new_account`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountName(String);

impl AccountName {
    pub fn parse(field: &str, s: &str) -> Result<Self, InputError> {
        let ok = !s.is_empty()
            && s.chars().count() <= MAX_ACCOUNT_LEN
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(InputError::new(
                field,
                format!(
                    "{field} `{}` must be 1-{MAX_ACCOUNT_LEN} letters, digits, `_`, `-` or `.`",
                    printable(s)
                ),
            ));
        }
        Ok(Self(s.to_string()))
    }

    /// An account nines is to create (the administrator of a cluster it deploys): also
    /// not one of [`RESERVED_ACCOUNTS`].
    pub fn new_account(field: &str, s: &str) -> Result<Self, InputError> {
        let name = Self::parse(field, s)?;
        if RESERVED_ACCOUNTS.iter().any(|r| r.eq_ignore_ascii_case(s)) {
            return Err(InputError::new(
                field,
                format!(
                    "{field} `{s}` is an account nines or the server keeps for itself; choose another name (reserved: {})",
                    RESERVED_ACCOUNTS.join(", ")
                ),
            ));
        }
        Ok(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AccountName {
    type Error = InputError;
    fn try_from(s: String) -> Result<Self, InputError> {
        Self::parse("account", &s)
    }
}

impl From<AccountName> for String {
    fn from(n: AccountName) -> String {
        n.0
    }
}

/// Free text a person attaches to something (a maintenance reason): trimmed, not empty,
/// at most [`MAX_TEXT_LEN`] characters, no control characters (they would reach
/// terminals and logs as they are).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text(String);

impl Text {
    pub fn parse(field: &str, s: &str) -> Result<Self, InputError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(InputError::new(field, format!("{field} must not be empty")));
        }
        let n = t.chars().count();
        if n > MAX_TEXT_LEN {
            return Err(InputError::new(
                field,
                format!("{field} is {n} characters long; the most allowed is {MAX_TEXT_LEN}"),
            ));
        }
        if let Some(c) = t.chars().find(|c| c.is_control()) {
            return Err(InputError::new(
                field,
                format!(
                    "{field} must not contain control characters (found U+{:04X})",
                    c as u32
                ),
            ));
        }
        Ok(Self(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Text {
    type Error = InputError;
    fn try_from(s: String) -> Result<Self, InputError> {
        Self::parse("text", &s)
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.0
    }
}

/// A login name on the nodes' hosts (for SSH): 1-32 letters, digits, `_`, `-`, `.`, not
/// starting with `-` (ssh would read it as an option).
pub fn ssh_user(field: &str, s: &str) -> Result<String, InputError> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && !s.starts_with(['-', '.'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(InputError::new(
            field,
            format!(
                "{field} `{}` must be 1-32 letters, digits, `_`, `-` or `.`, not starting with `-` or `.`",
                printable(s)
            ),
        ))
    }
}

/// A file on the controller named by a person (an SSH key): an absolute path of at most
/// 4096 bytes without control characters. Whether it exists is the caller's check.
pub fn controller_path(field: &str, s: &str) -> Result<String, InputError> {
    if !s.starts_with('/') || s.len() > 4096 || s.chars().any(char::is_control) {
        return Err(InputError::new(
            field,
            format!(
                "{field} `{}` must be an absolute path without control characters",
                printable(s)
            ),
        ));
    }
    Ok(s.to_string())
}

/// A node's address, `host[:port]`, with the field named in the error.
pub fn node_address(field: &str, s: &str) -> Result<Endpoint, InputError> {
    s.parse::<Endpoint>().map_err(|e| {
        let e = match e {
            crate::endpoint::EndpointError::Empty => "the node address is empty".to_string(),
            other => printable(&other.to_string()).into_owned(),
        };
        InputError::new(field, format!("{field}: {e}"))
    })
}

/// A cluster's node list: each a valid address, none twice, at most [`MAX_NODES`].
pub fn node_list<S: AsRef<str>>(field: &str, nodes: &[S]) -> Result<Vec<Endpoint>, InputError> {
    if nodes.len() > MAX_NODES {
        return Err(InputError::new(
            field,
            format!(
                "{field}: {} nodes given; a cluster may have at most {MAX_NODES}",
                nodes.len()
            ),
        ));
    }
    let mut out: Vec<Endpoint> = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let ep = node_address(&format!("{field}[{i}]"), n.as_ref())
            .map_err(|e| InputError::new(field, e.message))?;
        if out.contains(&ep) {
            return Err(InputError::new(
                field,
                format!("{field}: node {ep} is listed twice"),
            ));
        }
        out.push(ep);
    }
    Ok(out)
}

/// `s` with control characters written as escapes (`\u{1b}`), so that text a person or a
/// server supplied cannot move a terminal's cursor, clear its screen or fake a line.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        // (input, accepted)
        let cases = [
            ("shop", true),
            ("shop-1.eu_west", true),
            ("9lives", true),
            ("", false),
            (".", false),
            ("..", false),
            (".hidden", false),
            ("-x", false),
            ("a/b", false),
            ("a b", false),
            ("import", false),
            ("IMPORT", false),
            ("new", false),
            ("x#y", false),
            ("ünï", false),
        ];
        for (s, ok) in cases {
            assert_eq!(ClusterName::parse("name", s).is_ok(), ok, "{s:?}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        let e = ClusterName::parse("name", &long).unwrap_err();
        assert_eq!(e.field, "name");
        assert!(e.message.contains("1-64"), "{e}");
        let e = ClusterName::parse("name", "import").unwrap_err();
        assert!(e.message.contains("reserved"), "{e}");
    }

    #[test]
    fn account_names() {
        let cases = [
            ("dba", true),
            ("app_admin-2", true),
            ("nines_monitor", false),
            ("NINES_ADMIN", false),
            ("nines_repl", false),
            ("root", false),
            ("mysql", false),
            ("", false),
            ("a'b", false),
            ("a@b", false),
            ("x".repeat(33).leak(), false),
        ];
        for (s, ok) in cases {
            assert_eq!(
                AccountName::new_account("db_admin_user", s).is_ok(),
                ok,
                "{s:?}"
            );
        }
        // An existing account (an import's) may be any well-formed name.
        assert!(AccountName::parse("db_user", "root").is_ok());
        let e = AccountName::new_account("db_admin_user", "nines_monitor").unwrap_err();
        assert_eq!(e.field, "db_admin_user");
        assert!(e.message.contains("nines_monitor"), "{e}");
    }

    #[test]
    fn free_text() {
        assert_eq!(
            Text::parse("reason", "  disk swap ").unwrap().as_str(),
            "disk swap"
        );
        assert!(Text::parse("reason", "   ").is_err());
        assert!(Text::parse("reason", &"x".repeat(MAX_TEXT_LEN)).is_ok());
        let e = Text::parse("reason", &"x".repeat(MAX_TEXT_LEN + 1)).unwrap_err();
        assert!(e.message.contains("1024"), "{e}");
        let e = Text::parse("reason", "ok\u{1b}[2Jgone").unwrap_err();
        assert!(e.message.contains("U+001B"), "{e}");
        assert!(Text::parse("reason", "line\nbreak").is_err());
        assert!(Text::parse("reason", "ünïcödé ✓").is_ok());
    }

    #[test]
    fn node_addresses_and_lists() {
        let cases = [
            ("127.0.0.1", true),
            ("127.0.0.1:3307", true),
            ("db-1.example.com:3306", true),
            ("[::1]:3306", true),
            ("..", false),
            (".", false),
            ("", false),
            ("a/b", false),
            ("..:3399", false),
            ("a..b", false),
            ("-oProxyCommand=x", false),
            ("host:0", false),
            ("host:65536", false),
            ("x#y", false),
        ];
        for (s, ok) in cases {
            let r = node_address("node", s);
            assert_eq!(r.is_ok(), ok, "{s:?}: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.field, "node");
                assert!(e.message.contains("address"), "{e}");
                assert!(e.message.starts_with("node: "), "{e}");
            }
        }
        assert!(node_list("nodes", &["127.0.0.1", "127.0.0.1:3306"]).is_err());
        let many: Vec<String> = (0..=MAX_NODES).map(|i| format!("10.0.0.{i}")).collect();
        let e = node_list("nodes", &many).unwrap_err();
        assert!(e.message.contains("at most 64"), "{e}");
    }

    #[test]
    fn ssh_users_and_paths() {
        for (s, ok) in [
            ("root", true),
            ("deploy_1", true),
            ("-oProxyCommand=x", false),
            ("a b", false),
            ("", false),
            ("x@y", false),
        ] {
            assert_eq!(ssh_user("ssh.user", s).is_ok(), ok, "{s:?}");
        }
        assert!(controller_path("ssh.key_path", "/root/.ssh/id").is_ok());
        assert!(controller_path("ssh.key_path", "id_rsa").is_err());
        assert!(controller_path("ssh.key_path", "/a\nb").is_err());
    }

    #[test]
    fn printable_escapes_controls_only() {
        assert_eq!(printable("plain ✓"), "plain ✓");
        assert_eq!(printable("a\u{1b}[2Jb\n"), "a\\u{1b}[2Jb\\n");
        assert!(matches!(printable("x"), Cow::Borrowed(_)));
    }
}
