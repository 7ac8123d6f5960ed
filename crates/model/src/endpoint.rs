//! `host:port` addresses of database nodes, parsed once and validated.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The MySQL protocol's default port, assumed when an address has none.
pub const DEFAULT_PORT: u16 = 3306;

/// A database node's network address: a host name or IP and a TCP port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// Why an address could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("address is empty")]
    Empty,
    #[error("address `{0}` has an invalid port (expected 1-65535)")]
    BadPort(String),
    #[error(
        "address `{0}` has an invalid host: give an IP address or a host name (labels of letters, digits, `-` and `_`, joined by single dots)"
    )]
    BadHost(String),
}

impl Endpoint {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(EndpointError::Empty);
        }
        // [v6]:port, v6 without port, host:port, host
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let Some((h, tail)) = rest.split_once(']') else {
                return Err(EndpointError::BadHost(s.to_string()));
            };
            match tail.strip_prefix(':') {
                Some(p) => (h.to_string(), Some(p)),
                None if tail.is_empty() => (h.to_string(), None),
                None => return Err(EndpointError::BadHost(s.to_string())),
            }
        } else if s.matches(':').count() > 1 {
            (s.to_string(), None)
        } else if let Some((h, p)) = s.rsplit_once(':') {
            (h.to_string(), Some(p))
        } else {
            (s.to_string(), None)
        };
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(EndpointError::BadPort(s.to_string())),
            },
        };
        if !valid_host(&host) {
            return Err(EndpointError::BadHost(s.to_string()));
        }
        Ok(Self { host, port })
    }
}

/// An IPv6 literal, or a host name / IPv4 address: dot-separated labels of 1-63 letters,
/// digits, `-` and `_` (not starting or ending with `-`), 253 characters at most. So never
/// `.`, `..`, an empty label, a path, or anything an option parser or a shell would read.
fn valid_host(h: &str) -> bool {
    if h.contains(':') {
        return h.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        })
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        assert_eq!(
            "127.0.0.11:3307".parse::<Endpoint>().unwrap(),
            Endpoint::new("127.0.0.11", 3307)
        );
        assert_eq!(
            "db1".parse::<Endpoint>().unwrap(),
            Endpoint::new("db1", 3306)
        );
        assert_eq!(
            "[::1]:3310".parse::<Endpoint>().unwrap(),
            Endpoint::new("::1", 3310)
        );
        assert_eq!(
            "::1".parse::<Endpoint>().unwrap(),
            Endpoint::new("::1", 3306)
        );
        assert_eq!(Endpoint::new("::1", 3310).to_string(), "[::1]:3310");
    }

    #[test]
    fn rejects_bad() {
        assert_eq!("".parse::<Endpoint>(), Err(EndpointError::Empty));
        assert!(matches!(
            "h:0".parse::<Endpoint>(),
            Err(EndpointError::BadPort(_))
        ));
        assert!(matches!(
            "h:99999".parse::<Endpoint>(),
            Err(EndpointError::BadPort(_))
        ));
        assert!(matches!(
            "h:x".parse::<Endpoint>(),
            Err(EndpointError::BadPort(_))
        ));
        assert!(matches!(
            "a b:1".parse::<Endpoint>(),
            Err(EndpointError::BadHost(_))
        ));
        assert!(matches!(
            ":3306".parse::<Endpoint>(),
            Err(EndpointError::BadHost(_))
        ));
    }
}
