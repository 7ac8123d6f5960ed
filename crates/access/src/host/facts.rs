//! Host facts: what a machine is (OS, kernel, CPUs, memory, disk, package manager,
//! init system, hostname), gathered in one round trip by a small POSIX shell script that
//! prints `@@nines:` sections, and parsed by pure functions. Used when a host is added
//! and before operations that depend on the platform (installing packages, services).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::HostAccess;
use super::command::HostCommand;
use super::error::HostError;
use super::parse::{
    DF_FUNCTION, DiskUsage, parse_df, parse_meminfo, require_end, section, split_sections,
};

/// The probe; `$1` is the path whose file system is measured.
const FACTS_SCRIPT: &str = r#"echo '@@nines:os-release'
cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
echo '@@nines:kernel'
uname -r
echo '@@nines:hostname'
uname -n
echo '@@nines:nproc'
nproc 2>/dev/null || grep -c '^processor' /proc/cpuinfo
echo '@@nines:meminfo'
cat /proc/meminfo
echo '@@nines:df'
nines_df "$1"
echo '@@nines:pkg'
for p in apt-get dnf yum zypper; do
  if command -v "$p" >/dev/null 2>&1; then echo "$p"; fi
done
echo '@@nines:systemd'
if [ -d /run/systemd/system ]; then echo yes; else echo no; fi
echo '@@nines:end'
"#;

/// The distribution, from `/etc/os-release`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`, `rocky`, `ubuntu`.
    pub id: String,
    /// `ID_LIKE`, e.g. `rhel centos fedora` (empty when absent).
    pub id_like: String,
    /// `VERSION_ID`, e.g. `12`, `9.3`.
    pub version_id: String,
    /// `PRETTY_NAME`, e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub pretty_name: String,
}

/// The system package manager, by its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageManager {
    /// Debian, Ubuntu (`apt-get`).
    Apt,
    /// Fedora, RHEL 8+ and rebuilds.
    Dnf,
    /// RHEL/CentOS 7.
    Yum,
    /// SUSE.
    Zypper,
}

/// What a host is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// `uname -n`.
    pub hostname: String,
    /// The distribution.
    pub os: OsRelease,
    /// `uname -r`.
    pub kernel: String,
    /// CPUs available to processes (`nproc`).
    pub cpu_count: u32,
    /// MemTotal in bytes.
    pub memory_total_bytes: u64,
    /// SwapTotal in bytes.
    pub swap_total_bytes: u64,
    /// The file system of the path asked about; None when df printed nothing usable.
    pub disk: Option<DiskUsage>,
    /// The first of apt-get, dnf, yum, zypper found in `PATH`.
    pub package_manager: Option<PackageManager>,
    /// Whether systemd is the init system (`/run/systemd/system` exists).
    pub systemd: bool,
}

/// Gather a host's facts in one round trip; `disk_path` is the directory whose file
/// system to measure (e.g. the datadir; its nearest existing ancestor if missing).
pub async fn host_facts(
    h: &dyn HostAccess,
    disk_path: &str,
    timeout: Duration,
) -> Result<HostFacts, HostError> {
    let script = format!("{DF_FUNCTION}{FACTS_SCRIPT}");
    let cmd = HostCommand::shell(script).arg(disk_path);
    let out = h.run(&cmd, timeout).await?.check()?;
    parse_facts_output(&out.stdout_text(), disk_path).map_err(|detail| {
        HostError::UnexpectedOutput {
            host: h.describe(),
            what: "the host facts probe".to_owned(),
            detail,
        }
    })
}

/// Parse the output of the facts probe.
pub fn parse_facts_output(output: &str, disk_path: &str) -> Result<HostFacts, String> {
    let sections = split_sections(output);
    require_end(&sections)?;
    let need = |name: &str| section(&sections, name).ok_or(format!("no `{name}` section"));
    let first_line = |name: &str| -> Result<String, String> {
        Ok(need(name)?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned())
    };
    let nproc = first_line("nproc")?;
    let cpu_count: u32 = nproc
        .parse()
        .map_err(|_| format!("bad CPU count {nproc:?}"))?;
    if cpu_count == 0 {
        return Err("CPU count is 0".to_owned());
    }
    let mem = parse_meminfo(need("meminfo")?)?;
    let df = need("df")?;
    let disk = if df.trim().is_empty() {
        None
    } else {
        Some(parse_df(disk_path, df)?)
    };
    let package_manager = need("pkg")?.lines().find_map(|l| match l.trim() {
        "apt-get" => Some(PackageManager::Apt),
        "dnf" => Some(PackageManager::Dnf),
        "yum" => Some(PackageManager::Yum),
        "zypper" => Some(PackageManager::Zypper),
        _ => None,
    });
    let systemd = match first_line("systemd")?.as_str() {
        "yes" => true,
        "no" => false,
        other => return Err(format!("bad systemd answer {other:?}")),
    };
    let kernel = first_line("kernel")?;
    if kernel.is_empty() {
        return Err("empty kernel release".to_owned());
    }
    Ok(HostFacts {
        hostname: first_line("hostname")?,
        os: parse_os_release(need("os-release")?),
        kernel,
        cpu_count,
        memory_total_bytes: mem.total_bytes,
        swap_total_bytes: mem.swap_total_bytes,
        disk,
        package_manager,
        systemd,
    })
}

/// Parse os-release (`KEY=value` lines, values optionally quoted); missing keys are empty.
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut os = OsRelease::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim() {
            "ID" => os.id = value,
            "ID_LIKE" => os.id_like = value,
            "VERSION_ID" => os.version_id = value,
            "PRETTY_NAME" => os.pretty_name = value,
            _ => {}
        }
    }
    os
}

/// Undo os-release quoting: `"…"` with backslash escapes, or `'…'` taken literally.
fn unquote(v: &str) -> String {
    if let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some(n @ ('"' | '\\' | '$' | '`')) => out.push(n),
                    Some(n) => {
                        out.push('\\');
                        out.push(n);
                    }
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        out
    } else if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        inner.to_owned()
    } else {
        v.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "@@nines:os-release
PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"
NAME=\"Debian GNU/Linux\"
VERSION_ID=\"12\"
ID=debian
@@nines:kernel
6.1.0-18-amd64
@@nines:hostname
db1
@@nines:nproc
4
@@nines:meminfo
MemTotal:        8000000 kB
MemAvailable:    4000000 kB
SwapTotal:       1000 kB
SwapFree:        1000 kB
@@nines:df
/dev/vda1 100000 40000 60000 40% /
@@nines:pkg
apt-get
@@nines:systemd
yes
@@nines:end
";

    #[test]
    fn parses_a_debian_host() {
        let f = parse_facts_output(DEBIAN, "/var/lib/mysql").expect("parse");
        assert_eq!(f.hostname, "db1");
        assert_eq!(f.os.id, "debian");
        assert_eq!(f.os.version_id, "12");
        assert_eq!(f.os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(f.kernel, "6.1.0-18-amd64");
        assert_eq!(f.cpu_count, 4);
        assert_eq!(f.memory_total_bytes, 8000000 * 1024);
        assert_eq!(f.swap_total_bytes, 1000 * 1024);
        let disk = f.disk.expect("disk");
        assert_eq!(disk.path, "/var/lib/mysql");
        assert_eq!(disk.available_bytes, 60000);
        assert_eq!(f.package_manager, Some(PackageManager::Apt));
        assert!(f.systemd);
    }

    #[test]
    fn rhel_with_dnf_and_yum_prefers_dnf_and_no_systemd() {
        let out = DEBIAN
            .replace("apt-get\n", "dnf\nyum\n")
            .replace("@@nines:systemd\nyes", "@@nines:systemd\nno")
            .replace("/dev/vda1 100000 40000 60000 40% /\n", "");
        let f = parse_facts_output(&out, "/data").expect("parse");
        assert_eq!(f.package_manager, Some(PackageManager::Dnf));
        assert!(!f.systemd);
        assert_eq!(f.disk, None);
    }

    #[test]
    fn rejects_truncated_or_broken_output() {
        let cut = &DEBIAN[..DEBIAN.find("@@nines:end").expect("end")];
        assert!(parse_facts_output(cut, "/").is_err());
        assert!(parse_facts_output(&DEBIAN.replace("\n4\n", "\nfour\n"), "/").is_err());
        assert!(parse_facts_output(&DEBIAN.replace("\n4\n", "\n0\n"), "/").is_err());
        assert!(parse_facts_output(&DEBIAN.replace("MemTotal", "MemTotl"), "/").is_err());
        assert!(parse_facts_output(&DEBIAN.replace("@@nines:kernel\n", ""), "/").is_err());
        assert!(parse_facts_output("", "/").is_err());
    }

    #[test]
    fn os_release_quoting() {
        let os = parse_os_release(
            "# comment\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID='9.3'\nPRETTY_NAME=\"Say \\\"hi\\\" \\$x\"\nBOGUS\n",
        );
        assert_eq!(os.id, "rocky");
        assert_eq!(os.id_like, "rhel centos fedora");
        assert_eq!(os.version_id, "9.3");
        assert_eq!(os.pretty_name, "Say \"hi\" $x");
        assert_eq!(parse_os_release(""), OsRelease::default());
    }

    #[test]
    fn facts_serialize_as_json() {
        let f = parse_facts_output(DEBIAN, "/").expect("parse");
        let json = serde_json::to_value(&f).expect("json");
        assert_eq!(json["package_manager"], "apt");
        assert_eq!(json["os"]["id"], "debian");
        let back: HostFacts = serde_json::from_value(json).expect("back");
        assert_eq!(back, f);
    }
}
