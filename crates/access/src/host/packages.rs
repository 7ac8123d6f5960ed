//! Package management on a host, for installing MariaDB and Galera before a deploy:
//! [`installed`] (dpkg / rpm), [`installable`] (the version the package manager would
//! install, without changing anything) and [`install`]. Debian and Ubuntu (apt) are
//! tested for real; the RHEL family (dnf, yum) is written to the tools' documentation
//! but untested here; zypper is refused.
//!
//! An apt install keeps the distribution's `mariadb` service from starting (a temporary
//! `/usr/sbin/policy-rc.d` that answers 101), because nines runs its own instances on
//! its own addresses; and when apt cannot find a package or gets 404s (stale package
//! lists), it runs `apt-get update` and tries once more.

use std::time::{Duration, Instant};

use super::HostAccess;
use super::PackageManager;
use super::command::HostCommand;
use super::error::HostError;
use super::fs::invalid_input;
use super::parse::{require_end, split_sections};

/// Which of `packages` are installed, in the order asked (`dpkg-query -W` / `rpm -q`).
/// One round trip; as the transport user.
pub async fn installed(
    h: &dyn HostAccess,
    pm: PackageManager,
    packages: &[&str],
    timeout: Duration,
) -> Result<Vec<(String, bool)>, HostError> {
    check_names(h, packages, false)?;
    if packages.is_empty() {
        return Ok(Vec::new());
    }
    let script = match pm {
        PackageManager::Apt => DPKG_INSTALLED_SCRIPT,
        PackageManager::Dnf | PackageManager::Yum => RPM_INSTALLED_SCRIPT,
        PackageManager::Zypper => return Err(unsupported(h, pm)),
    };
    let cmd = HostCommand::shell(script)
        .args(packages.iter().copied())
        .env("LC_ALL", "C");
    let out = h.run(&cmd, timeout).await?.check()?;
    parse_installed_output(packages, &out.stdout_text()).map_err(|detail| {
        HostError::UnexpectedOutput {
            host: h.describe(),
            what: "the installed-packages query".to_owned(),
            detail,
        }
    })
}

/// For each of `packages`, the version the package manager would install (apt's
/// candidate; the newest in dnf/yum's repositories), or None when it knows no such
/// package. Changes nothing on apt hosts (no `apt-get update`: stale lists give stale
/// answers); dnf may refresh its metadata cache, as any dnf query does.
pub async fn installable(
    h: &dyn HostAccess,
    pm: PackageManager,
    packages: &[&str],
    timeout: Duration,
) -> Result<Vec<(String, Option<String>)>, HostError> {
    check_names(h, packages, false)?;
    if packages.is_empty() {
        return Ok(Vec::new());
    }
    // A real tab and newline: dnf's query format takes them literally.
    let qf_evr = "%{name}\t%{evr}\n";
    let qf_yum = "%{name}\t%{epoch}:%{version}-%{release}\n";
    let cmd = match pm {
        PackageManager::Apt => HostCommand::new("apt-cache").arg("policy"),
        PackageManager::Dnf => {
            HostCommand::new("dnf").args(["-q", "repoquery", "--latest-limit=1", "--qf", qf_evr])
        }
        // repoquery from yum-utils.
        PackageManager::Yum => HostCommand::new("repoquery").args(["-q", "--qf", qf_yum]),
        PackageManager::Zypper => return Err(unsupported(h, pm)),
    }
    .arg("--")
    .args(packages.iter().copied())
    .env("LC_ALL", "C");
    let out = h.run(&cmd, timeout).await?.check()?;
    let text = out.stdout_text();
    Ok(match pm {
        PackageManager::Apt => parse_apt_policy(packages, &text),
        _ => parse_name_version_lines(packages, &text),
    })
}

/// Install `packages` (as root), without starting any service they bring on apt hosts
/// (see the module docs). On apt, a first attempt failing for stale package lists
/// ([`apt_needs_update`]) is followed by `apt-get update` and one more attempt, both
/// within the same `timeout`. A failure is [`HostError::CommandFailed`] with the
/// package manager's stderr.
pub async fn install(
    h: &dyn HostAccess,
    pm: PackageManager,
    packages: &[&str],
    timeout: Duration,
) -> Result<(), HostError> {
    check_names(h, packages, true)?;
    if packages.is_empty() {
        return Ok(());
    }
    let cmd = |update: bool| -> Result<HostCommand, HostError> {
        Ok(match pm {
            PackageManager::Apt => HostCommand::shell(APT_INSTALL_SCRIPT)
                .arg(if update { "update" } else { "no-update" })
                .arg(POLICY_RC_D)
                .args(packages.iter().copied()),
            PackageManager::Dnf | PackageManager::Yum => {
                let program = if pm == PackageManager::Dnf {
                    "dnf"
                } else {
                    "yum"
                };
                HostCommand::new(program)
                    .args(["-y", "-q", "install", "--"])
                    .args(packages.iter().copied())
            }
            PackageManager::Zypper => return Err(unsupported(h, pm)),
        }
        .env("LC_ALL", "C")
        .sudo(true))
    };
    let started = Instant::now();
    let first = h.run(&cmd(false)?, timeout).await?;
    if first.success() {
        return Ok(());
    }
    let retry = pm == PackageManager::Apt
        && apt_needs_update(&format!("{}{}", first.stdout_text(), first.stderr_text()));
    let remaining = timeout.saturating_sub(started.elapsed());
    if !retry || remaining.is_zero() {
        first.check()?;
        return Ok(());
    }
    tracing::info!(host = %h.describe(), ?packages, "apt install failed on stale lists; updating and retrying");
    h.run(&cmd(true)?, remaining).await?.check()?;
    Ok(())
}

/// Whether a failed `apt-get install` looks like stale package lists, worth an
/// `apt-get update` and another try.
pub fn apt_needs_update(output: &str) -> bool {
    [
        "Unable to locate package",
        "has no installation candidate",
        "404  Not Found",
        "404 Not Found",
    ]
    .iter()
    .any(|needle| output.contains(needle))
}

/// Per package (`$@`), a section `@@nines:pkg <name>` with its `${Status}` lines (none
/// when unknown). dpkg-query exits 1 for an unknown package, more for a real failure.
const DPKG_INSTALLED_SCRIPT: &str = r#"for p; do
  printf '@@nines:pkg %s\n' "$p"
  dpkg-query -W -f='${Status}\n' -- "$p" 2>/dev/null
  rc=$?
  if [ "$rc" -gt 1 ]; then echo "dpkg-query failed for $p (status $rc)" >&2; exit "$rc"; fi
done
echo '@@nines:end'
"#;

/// Per package, a section `@@nines:pkg <name>` saying `installed` or `absent`.
const RPM_INSTALLED_SCRIPT: &str = r#"for p; do
  printf '@@nines:pkg %s\n' "$p"
  if rpm -q --quiet -- "$p"; then echo installed; else echo absent; fi
done
echo '@@nines:end'
"#;

/// Where Debian's invoke-rc.d and deb-systemd-invoke look for a policy.
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// `$1` is `update` or `no-update`, `$2` the policy-rc.d path, the rest are packages.
/// Keeps services from starting with a policy-rc.d made only when there is none (or
/// one left by a nines install that no longer runs), removed on exit, also on failure
/// or SIGTERM (not on SIGKILL: the next install takes such a leftover over).
const APT_INSTALL_SCRIPT: &str = r#"set -u
update=$1 prc=$2
shift 2
marker='# nines: keep services from starting during a package install'
ours=
claim() {
  printf '#!/bin/sh\n%s (pid %s)\nexit 101\n' "$marker" "$$" > "$prc.nines-tmp.$$" &&
    chmod 755 "$prc.nines-tmp.$$" && mv -f -- "$prc.nines-tmp.$$" "$prc" && ours=1
}
if [ ! -e "$prc" ]; then
  claim
elif grep -qF -- "$marker" "$prc" 2>/dev/null; then
  owner=$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' "$prc")
  if [ -z "$owner" ] || ! kill -0 "$owner" 2>/dev/null; then claim; fi
fi
cleanup() { if [ -n "$ours" ]; then rm -f -- "$prc"; fi; rm -f -- "$prc.nines-tmp.$$"; }
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
export DEBIAN_FRONTEND=noninteractive
if [ "$update" = update ]; then apt-get -q update || exit $?; fi
apt-get install -y -q --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -- "$@"
"#;

/// Parse the installed-packages query (either script) for `packages`, in their order.
pub fn parse_installed_output(
    packages: &[&str],
    output: &str,
) -> Result<Vec<(String, bool)>, String> {
    let sections = split_sections(output);
    require_end(&sections)?;
    packages
        .iter()
        .map(|p| {
            let body = sections
                .iter()
                .find(|(name, _)| name.strip_prefix("pkg ") == Some(*p))
                .map(|(_, body)| *body)
                .ok_or_else(|| format!("no answer for package {p}"))?;
            // dpkg: `want flag status` per instance (`install ok installed`, `deinstall ok
            // config-files`, …); rpm script: `installed` / `absent`.
            let yes = body.lines().any(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                words == ["installed"] || words.get(2) == Some(&"installed")
            });
            Ok(((*p).to_owned(), yes))
        })
        .collect()
}

/// Parse `apt-cache policy` output: a `name:` header per known package, then
/// `  Candidate: <version>` (`(none)` when nothing is installable). Unknown packages
/// print nothing. Results follow `packages`.
pub fn parse_apt_policy(packages: &[&str], text: &str) -> Vec<(String, Option<String>)> {
    let mut candidates: Vec<(&str, Option<&str>)> = Vec::new();
    let mut current: Option<&str> = None;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            current = line.trim_end().strip_suffix(':');
            continue;
        }
        if let (Some(name), Some(version)) = (current, line.trim().strip_prefix("Candidate:")) {
            let version = version.trim();
            let version = (!version.is_empty() && version != "(none)").then_some(version);
            candidates.push((name, version));
        }
    }
    packages
        .iter()
        .map(|p| {
            let found = candidates
                .iter()
                .find(|(n, _)| n == p)
                .and_then(|(_, v)| *v);
            ((*p).to_owned(), found.map(str::to_owned))
        })
        .collect()
}

/// Parse `name<TAB>version` lines (dnf/yum repoquery); the first line per name wins,
/// an epoch of 0 or `(none)` is left out. Results follow `packages`.
pub fn parse_name_version_lines(packages: &[&str], text: &str) -> Vec<(String, Option<String>)> {
    let lines: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .collect();
    packages
        .iter()
        .map(|p| {
            let version = lines.iter().find(|(n, _)| n == p).map(|(_, v)| {
                let v = v.strip_prefix("0:").unwrap_or(v);
                v.strip_prefix("(none):").unwrap_or(v).to_owned()
            });
            ((*p).to_owned(), version)
        })
        .collect()
}

/// Package names as Debian and RPM spell them (letters, digits, `+-._:~`, starting with
/// a letter or digit); `=` (apt's `name=version`) only for installs.
fn check_names(
    h: &dyn HostAccess,
    packages: &[&str],
    allow_version: bool,
) -> Result<(), HostError> {
    for p in packages {
        let ok = p.starts_with(|c: char| c.is_ascii_alphanumeric())
            && p.chars().all(|c| {
                c.is_ascii_alphanumeric() || "+-._:~".contains(c) || (allow_version && c == '=')
            });
        if !ok {
            return Err(invalid_input(
                h,
                format!("invalid package name {p:?}"),
                "package names are letters, digits and +-._:~",
            ));
        }
    }
    Ok(())
}

fn unsupported(h: &dyn HostAccess, pm: PackageManager) -> HostError {
    HostError::Io {
        host: h.describe(),
        what: format!("package management with {pm:?}"),
        source: std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "not supported by nines (apt, dnf and yum are)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dpkg_and_rpm_answers() {
        let out = "@@nines:pkg mariadb-server\ninstall ok installed\n\
                   @@nines:pkg galera-4\ndeinstall ok config-files\n\
                   @@nines:pkg libc6:i386\nunknown ok not-installed\nhold ok installed\n\
                   @@nines:pkg nope\n\
                   @@nines:end\n";
        let got =
            parse_installed_output(&["mariadb-server", "galera-4", "libc6:i386", "nope"], out)
                .expect("parse");
        assert_eq!(
            got,
            vec![
                ("mariadb-server".into(), true),
                ("galera-4".into(), false),
                ("libc6:i386".into(), true),
                ("nope".into(), false),
            ]
        );
        let rpm =
            "@@nines:pkg MariaDB-server\ninstalled\n@@nines:pkg galera\nabsent\n@@nines:end\n";
        assert_eq!(
            parse_installed_output(&["MariaDB-server", "galera"], rpm).expect("parse"),
            vec![("MariaDB-server".into(), true), ("galera".into(), false)]
        );
    }

    #[test]
    fn installed_parser_rejects_cut_output() {
        let out = "@@nines:pkg a\ninstall ok installed\n";
        assert!(parse_installed_output(&["a"], out).is_err());
        let out = "@@nines:pkg a\ninstall ok installed\n@@nines:end\n";
        assert!(parse_installed_output(&["a", "b"], out).is_err());
    }

    /// `apt-cache policy mariadb-server mysql-server nosuch` on Debian 12 (nosuch prints
    /// nothing at all).
    const POLICY: &str = "mariadb-server:
  Installed: 1:10.11.19-0+deb12u1
  Candidate: 1:10.11.19-0+deb12u1
  Version table:
 *** 1:10.11.19-0+deb12u1 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
        100 /var/lib/dpkg/status
     1:10.11.18-0+deb12u1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
mysql-server:
  Installed: (none)
  Candidate: (none)
  Version table:
";

    #[test]
    fn parses_apt_policy() {
        let got = parse_apt_policy(&["mariadb-server", "mysql-server", "nosuch"], POLICY);
        assert_eq!(
            got,
            vec![
                ("mariadb-server".into(), Some("1:10.11.19-0+deb12u1".into())),
                ("mysql-server".into(), None),
                ("nosuch".into(), None),
            ]
        );
        let multiarch = "libc6:i386:\n  Installed: (none)\n  Candidate: 2.36-9\n";
        assert_eq!(
            parse_apt_policy(&["libc6:i386"], multiarch),
            vec![("libc6:i386".into(), Some("2.36-9".into()))]
        );
        assert_eq!(parse_apt_policy(&["x"], ""), vec![("x".into(), None)]);
    }

    #[test]
    fn parses_repoquery_lines() {
        let text = "MariaDB-server\t0:10.11.9-1.el9\n\ngalera-4\t26.4.20-1.el9\n\
                    galera-4\t26.4.19-1.el9\nboost\t(none):1.75-1\n";
        let got = parse_name_version_lines(&["MariaDB-server", "galera-4", "boost", "nope"], text);
        assert_eq!(
            got,
            vec![
                ("MariaDB-server".into(), Some("10.11.9-1.el9".into())),
                ("galera-4".into(), Some("26.4.20-1.el9".into())),
                ("boost".into(), Some("1.75-1".into())),
                ("nope".into(), None),
            ]
        );
    }

    #[test]
    fn stale_list_detection() {
        assert!(apt_needs_update(
            "E: Unable to locate package mariadb-server\n"
        ));
        assert!(apt_needs_update(
            "E: Failed to fetch http://deb.debian.org/debian/pool/main/m/mariadb/x.deb  404  Not Found [IP: 1.2.3.4 80]\n"
        ));
        assert!(apt_needs_update(
            "E: Package 'galera-4' has no installation candidate\n"
        ));
        assert!(!apt_needs_update(
            "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 12 (apt-get)\n"
        ));
        assert!(!apt_needs_update(""));
    }

    #[test]
    fn package_names_are_checked() {
        let h = super::super::LocalHost::new();
        assert!(
            check_names(
                &h,
                &["mariadb-server", "galera-4", "libc6:i386", "g++"],
                false
            )
            .is_ok()
        );
        assert!(check_names(&h, &["mariadb-server=1:10.11.19-0+deb12u1"], true).is_ok());
        for bad in ["", "-y", "a b", "a;b", "x=1", "*", "$(id)"] {
            assert!(check_names(&h, &[bad], false).is_err(), "{bad:?}");
        }
        assert!(check_names(&h, &["-o"], true).is_err());
    }

    /// Runs the apt install script with a fake `apt-get` that records its arguments,
    /// its environment and what the policy-rc.d in force answers.
    fn run_apt_script(
        dir: &std::path::Path,
        update: &str,
        fake_rc: i32,
    ) -> (std::process::ExitStatus, String) {
        use std::os::unix::fs::PermissionsExt;
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        let fake = bin.join("apt-get");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho \"apt-get $* [$DEBIAN_FRONTEND]\" >> \"$LOG\"\n\
             if [ -x \"$PRC\" ]; then \"$PRC\" mariadb start; echo \"policy $?\" >> \"$LOG\"; \
             else echo 'policy none' >> \"$LOG\"; fi\n\
             exit \"$FAKE_RC\"\n",
        )
        .expect("write fake");
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let log = dir.join("log");
        let _ = std::fs::remove_file(&log);
        let prc = dir.join("policy-rc.d");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let status = std::process::Command::new("sh")
            .args(["-c", APT_INSTALL_SCRIPT, "sh", update])
            .arg(&prc)
            .args(["mariadb-server", "galera-4"])
            .env("PATH", path)
            .env("LOG", &log)
            .env("PRC", &prc)
            .env("FAKE_RC", fake_rc.to_string())
            .status()
            .expect("run sh");
        (status, std::fs::read_to_string(&log).unwrap_or_default())
    }

    #[test]
    fn apt_install_script_keeps_services_down_and_cleans_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prc = dir.path().join("policy-rc.d");

        // No policy before: one is in force during the install, gone after.
        let (status, log) = run_apt_script(dir.path(), "no-update", 0);
        assert!(status.success());
        assert_eq!(
            log,
            "apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef \
             -o Dpkg::Options::=--force-confold -- mariadb-server galera-4 [noninteractive]\n\
             policy 101\n"
        );
        assert!(!prc.exists());

        // A failing install also removes it, and passes the status on.
        let (status, log) = run_apt_script(dir.path(), "update", 100);
        assert_eq!(status.code(), Some(100));
        assert!(
            log.starts_with("apt-get -q update [noninteractive]\npolicy 101\n"),
            "{log}"
        );
        assert!(!prc.exists());

        // Someone else's policy is left alone (and is what applies).
        std::fs::write(&prc, "#!/bin/sh\nexit 0\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&prc, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let (status, log) = run_apt_script(dir.path(), "no-update", 0);
        assert!(status.success());
        assert!(log.ends_with("policy 0\n"), "{log}");
        assert_eq!(
            std::fs::read_to_string(&prc).expect("read"),
            "#!/bin/sh\nexit 0\n"
        );

        // A leftover of a killed nines install (its pid is gone) is taken over and removed.
        std::fs::write(
            &prc,
            "#!/bin/sh\n# nines: keep services from starting during a package install (pid 999999999)\nexit 101\n",
        )
        .expect("write");
        let (status, log) = run_apt_script(dir.path(), "no-update", 0);
        assert!(status.success());
        assert!(log.ends_with("policy 101\n"), "{log}");
        assert!(!prc.exists());
    }

    #[test]
    fn apt_script_is_valid_shell() {
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(APT_INSTALL_SCRIPT)
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
