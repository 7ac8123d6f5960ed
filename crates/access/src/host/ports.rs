//! Which TCP ports are taken on a host: [`listening`] lists the listening sockets from
//! `ss -Hltn` (parsed by [`parse_ss_listening`]), and [`port_taken`] decides whether a
//! server could bind an address and port, before a deploy picks them.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use super::HostAccess;
use super::command::HostCommand;
use super::error::HostError;

/// One listening TCP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The local address as `ss` prints it, without brackets or interface: `127.0.0.1`,
    /// `0.0.0.0`, `::`, `::1`, `::ffff:127.0.0.1`, or `*` (an IPv6 socket that also
    /// accepts IPv4).
    pub address: String,
    /// The interface the socket is bound to (`%lo` in ss's output), if any.
    pub interface: Option<String>,
    /// The local port.
    pub port: u16,
}

impl Listener {
    /// The address as an IP (an IPv4-mapped IPv6 address as IPv4); None for `*`.
    pub fn ip(&self) -> Option<IpAddr> {
        parse_ip(&self.address)
    }

    /// Listening on every address: `*`, `0.0.0.0` or `::`.
    pub fn is_wildcard(&self) -> bool {
        self.address == "*" || self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// `127.0.0.1:3306`, `[::1]:3306`, `*:3306`, `0.0.0.0%lo:3306`.
impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.address.contains(':') {
            write!(f, "[{}]", self.address)?;
        } else {
            f.write_str(&self.address)?;
        }
        if let Some(interface) = &self.interface {
            write!(f, "%{interface}")?;
        }
        write!(f, ":{}", self.port)
    }
}

/// The TCP sockets listening on a host (`ss -Hltn`; no root needed).
pub async fn listening(h: &dyn HostAccess, timeout: Duration) -> Result<Vec<Listener>, HostError> {
    let cmd = HostCommand::new("ss").arg("-Hltn");
    let out = h.run(&cmd, timeout).await?.check()?;
    parse_ss_listening(&out.stdout_text()).map_err(|detail| HostError::UnexpectedOutput {
        host: h.describe(),
        what: "ss -Hltn".to_owned(),
        detail,
    })
}

/// Parse `ss -Hltn` output: `State Recv-Q Send-Q Local:Port Peer:Port [Process]` rows.
pub fn parse_ss_listening(text: &str) -> Result<Vec<Listener>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() < 5 {
                return Err(format!("unrecognised ss line {line:?}"));
            }
            parse_local(words[3]).ok_or_else(|| format!("bad local address in ss line {line:?}"))
        })
        .collect()
}

/// `127.0.0.1:3306`, `[::]:22`, `*:22`, `0.0.0.0%lo:53`, `[fe80::1]%eth0:22`, `*%lo:80`.
fn parse_local(word: &str) -> Option<Listener> {
    let (host, port) = word.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let (address, interface) = match host.split_once('%') {
        Some((a, i)) => (a, Some(i.trim_end_matches(']'))),
        None => (host, None),
    };
    let address = address.trim_start_matches('[').trim_end_matches(']');
    if address.is_empty() || interface.is_some_and(str::is_empty) {
        return None;
    }
    if address != "*" && address.parse::<IpAddr>().is_err() {
        return None;
    }
    Some(Listener {
        address: address.to_owned(),
        interface: interface.map(str::to_owned),
        port,
    })
}

/// An IP address from text (brackets allowed), IPv4-mapped IPv6 turned into IPv4.
fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = text.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

/// The listener that keeps a server from binding `addr:port`, if any: one on that exact
/// address (IPv4-mapped IPv6 compared as IPv4), or a wildcard (`0.0.0.0`, `::`, `*`) on
/// that port. Conservative: a wildcard of either family counts, although an IPv6-only
/// `[::]` socket would not conflict with an IPv4 bind. When `addr` is itself a wildcard
/// anything on the port counts. An `addr` that is not an IP is compared as text.
pub fn port_taken(listeners: &[Listener], addr: &str, port: u16) -> Option<Listener> {
    let want = parse_ip(addr);
    let want_wildcard = addr == "*" || want.is_some_and(|ip| ip.is_unspecified());
    listeners
        .iter()
        .filter(|l| l.port == port)
        .find(|l| {
            want_wildcard
                || l.is_wildcard()
                || match want {
                    Some(ip) => l.ip() == Some(ip),
                    None => l.address == addr,
                }
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured on this kind of machine (Debian 12, iproute2 6.1.0) with listeners on
    /// 127.0.0.251:3306, 0.0.0.0, dual-stack `::`, IPv6-only `::`, ::1, an IPv4-mapped
    /// address, and sockets bound to `lo` (SO_BINDTODEVICE).
    const SS_OUTPUT: &str = "\
LISTEN 0      128          127.0.0.253%lo:14572 0.0.0.0:*
LISTEN 0      128                 0.0.0.0:2024  0.0.0.0:*
LISTEN 0      128             127.0.0.251:3306  0.0.0.0:*
LISTEN 0      128              0.0.0.0%lo:14573 0.0.0.0:*
LISTEN 0      128                 0.0.0.0:14567 0.0.0.0:*
LISTEN 0      128                   [::1]:14570    [::]:*
LISTEN 0      128    [::ffff:127.0.0.252]:14571       *:*
LISTEN 0      128                    *%lo:14574       *:*
LISTEN 0      128                    [::]:14569    [::]:*
LISTEN 0      128                       *:14568       *:*
";

    fn l(address: &str, interface: Option<&str>, port: u16) -> Listener {
        Listener {
            address: address.into(),
            interface: interface.map(Into::into),
            port,
        }
    }

    #[test]
    fn parses_real_ss_output() {
        let got = parse_ss_listening(SS_OUTPUT).expect("parse");
        assert_eq!(
            got,
            vec![
                l("127.0.0.253", Some("lo"), 14572),
                l("0.0.0.0", None, 2024),
                l("127.0.0.251", None, 3306),
                l("0.0.0.0", Some("lo"), 14573),
                l("0.0.0.0", None, 14567),
                l("::1", None, 14570),
                l("::ffff:127.0.0.252", None, 14571),
                l("*", Some("lo"), 14574),
                l("::", None, 14569),
                l("*", None, 14568),
            ]
        );
        assert!(parse_ss_listening("").expect("empty").is_empty());
    }

    #[test]
    fn parses_scoped_ipv6_and_process_column() {
        let got = parse_ss_listening(
            "LISTEN 0 128 [fe80::1]%eth0:22 [::]:* users:((\"sshd\",pid=1,fd=3))\n",
        )
        .expect("parse");
        assert_eq!(got, vec![l("fe80::1", Some("eth0"), 22)]);
        assert_eq!(got[0].to_string(), "[fe80::1]%eth0:22");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_ss_listening("LISTEN 0 128\n").is_err());
        assert!(parse_ss_listening("LISTEN 0 128 127.0.0.1:http 0.0.0.0:*\n").is_err());
        assert!(parse_ss_listening("LISTEN 0 128 localhost:80 0.0.0.0:*\n").is_err());
        assert!(parse_ss_listening("LISTEN 0 128 :80 0.0.0.0:*\n").is_err());
    }

    #[test]
    fn wildcards_and_mapped_addresses() {
        let ls = parse_ss_listening(SS_OUTPUT).expect("parse");
        let wild: Vec<String> = ls
            .iter()
            .filter(|l| l.is_wildcard())
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            wild,
            [
                "0.0.0.0:2024",
                "0.0.0.0%lo:14573",
                "0.0.0.0:14567",
                "*%lo:14574",
                "[::]:14569",
                "*:14568"
            ]
        );
        assert_eq!(
            ls[6].ip(),
            Some(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 252)))
        );
    }

    #[test]
    fn port_taken_decisions() {
        let ls = parse_ss_listening(SS_OUTPUT).expect("parse");
        // Exact address.
        assert_eq!(port_taken(&ls, "127.0.0.251", 3306), Some(ls[2].clone()));
        // Same port, other address: free.
        assert_eq!(port_taken(&ls, "127.0.0.252", 3306), None);
        // IPv4-mapped listener blocks the IPv4 address, and the other way round.
        assert_eq!(port_taken(&ls, "127.0.0.252", 14571), Some(ls[6].clone()));
        assert_eq!(
            port_taken(&ls, "::ffff:127.0.0.251", 3306),
            Some(ls[2].clone())
        );
        assert_eq!(port_taken(&ls, "127.0.0.1", 14571), None);
        // Wildcards of every spelling block any address.
        for port in [2024, 14573, 14567, 14574, 14569, 14568] {
            assert!(port_taken(&ls, "127.0.0.9", port).is_some(), "{port}");
        }
        // Asking about a wildcard: anything on the port counts.
        assert_eq!(port_taken(&ls, "0.0.0.0", 3306), Some(ls[2].clone()));
        assert_eq!(port_taken(&ls, "::", 14570), Some(ls[5].clone()));
        assert_eq!(port_taken(&ls, "[::1]", 14570), Some(ls[5].clone()));
        // Nothing on the port at all.
        assert_eq!(port_taken(&ls, "0.0.0.0", 4567), None);
        assert_eq!(port_taken(&[], "127.0.0.1", 3306), None);
    }
}
