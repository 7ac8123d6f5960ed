//! Directory probes and changes on a host, for preparing a node's directories (datadir,
//! logs, run files) before a deploy: [`probe_dir`] says in one round trip whether a
//! path exists, whether it is an empty directory, and whether root could create it
//! (by really creating and removing a directory in its nearest existing ancestor, since
//! `test -w` lies for root on file systems like /proc); [`ensure_dir`], [`remove_tree`]
//! (which refuses system directories) and [`file_exists`] change or test one path.
//! Everything runs as root (`sudo -n` unless the transport user is root).

use std::time::Duration;

use super::HostAccess;
use super::command::HostCommand;
use super::error::HostError;
use super::parse::{parse_df, require_end, section, split_sections};

/// What a directory path looks like on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirProbe {
    /// The path asked about.
    pub path: String,
    /// Something (file, directory, symlink, even a dangling one) exists at the path.
    pub exists: bool,
    /// The path is a directory (or a symlink to one).
    pub is_dir: bool,
    /// The path is absent, or an existing directory with no entries. False for a file
    /// and for a directory that could not be listed.
    pub empty: bool,
    /// The deepest existing directory among the path and its ancestors: the path itself
    /// when it is a directory, else where `mkdir -p` would start.
    pub nearest_existing_ancestor: String,
    /// Root could create (and did create and remove) a directory in
    /// `nearest_existing_ancestor`.
    pub ancestor_writable: bool,
    /// Bytes available on the file system of `nearest_existing_ancestor` (`df -P -B1`);
    /// None when df printed nothing usable.
    pub free_bytes: Option<u64>,
}

/// The probe; `$1` is the (absolute, validated) path.
const PROBE_SCRIPT: &str = r#"p=$1
echo '@@nines:exists'
if [ -e "$p" ] || [ -L "$p" ]; then echo yes; else echo no; fi
echo '@@nines:is-dir'
if [ -d "$p" ]; then echo yes; else echo no; fi
echo '@@nines:empty'
if [ -d "$p" ]; then
  if first=$(find "$p" -mindepth 1 -maxdepth 1 -print -quit 2>/dev/null); then
    if [ -z "$first" ]; then echo yes; else echo no; fi
  else
    echo unreadable
  fi
elif [ -e "$p" ] || [ -L "$p" ]; then
  echo no
else
  echo yes
fi
a=$p
while [ ! -d "$a" ]; do a=$(dirname -- "$a"); done
echo '@@nines:ancestor'
printf '%s\n' "$a"
echo '@@nines:writable'
if t=$(mktemp -d "${a%/}/.nines-probe.XXXXXX" 2>/dev/null); then
  if rmdir -- "$t" 2>/dev/null; then echo yes; else printf 'leftover %s\n' "$t"; fi
else
  echo no
fi
echo '@@nines:df'
df -P -B1 -- "$a" 2>/dev/null | sed 1d
echo '@@nines:end'
"#;

/// Probe a directory path in one round trip (as root): existence, emptiness, the
/// nearest existing ancestor, whether root can create directories there (tested by
/// creating and removing `<ancestor>/.nines-probe.XXXXXX`), and free space.
pub async fn probe_dir(
    h: &dyn HostAccess,
    path: &str,
    timeout: Duration,
) -> Result<DirProbe, HostError> {
    let path = check_path(h, path)?;
    let cmd = HostCommand::shell(PROBE_SCRIPT).arg(&path).sudo(true);
    let out = h.run(&cmd, timeout).await?.check()?;
    parse_probe_output(&path, &out.stdout_text()).map_err(|detail| HostError::UnexpectedOutput {
        host: h.describe(),
        what: format!("the directory probe of {path}"),
        detail,
    })
}

/// Parse the output of the directory probe for `path`.
pub fn parse_probe_output(path: &str, output: &str) -> Result<DirProbe, String> {
    let sections = split_sections(output);
    require_end(&sections)?;
    let first_line = |name: &str| -> Result<&str, String> {
        let body = section(&sections, name).ok_or(format!("no `{name}` section"))?;
        Ok(body
            .lines()
            .next()
            .unwrap_or_default()
            .trim_end_matches('\r'))
    };
    let yes_no = |name: &str| -> Result<bool, String> {
        match first_line(name)? {
            "yes" => Ok(true),
            "no" => Ok(false),
            other => Err(format!("bad `{name}` answer {other:?}")),
        }
    };
    let exists = yes_no("exists")?;
    let is_dir = yes_no("is-dir")?;
    let empty = match first_line("empty")? {
        "yes" => true,
        "no" | "unreadable" => false,
        other => return Err(format!("bad `empty` answer {other:?}")),
    };
    let ancestor = first_line("ancestor")?;
    if !ancestor.starts_with('/') {
        return Err(format!("bad nearest existing ancestor {ancestor:?}"));
    }
    let ancestor_writable = match first_line("writable")? {
        "yes" => true,
        "no" => false,
        other => match other.strip_prefix("leftover ") {
            Some(left) => return Err(format!("the probe could not remove {left}")),
            None => return Err(format!("bad `writable` answer {other:?}")),
        },
    };
    let df = section(&sections, "df").ok_or("no `df` section")?;
    let free_bytes = if df.trim().is_empty() {
        None
    } else {
        Some(parse_df(ancestor, df)?.available_bytes)
    };
    Ok(DirProbe {
        path: path.to_owned(),
        exists,
        is_dir,
        empty: empty || !exists,
        nearest_existing_ancestor: ancestor.to_owned(),
        ancestor_writable,
        free_bytes,
    })
}

/// Create a directory (and missing parents, which get root's default mode), then give
/// the directory itself `owner` (`user` or `user:group`, e.g. `mysql:mysql`) and `mode`
/// (e.g. `0o750`). Idempotent; fails when the path exists and is not a directory.
pub async fn ensure_dir(
    h: &dyn HostAccess,
    path: &str,
    owner: Option<&str>,
    mode: u32,
    timeout: Duration,
) -> Result<(), HostError> {
    let path = check_path(h, path)?;
    if let Some(owner) = owner {
        check_owner(owner).map_err(|detail| invalid_input(h, format!("ensure {path}"), detail))?;
    }
    let script = r#"set -e
mkdir -p -- "$1"
if [ -n "$3" ]; then chown -- "$3" "$1"; fi
chmod -- "$2" "$1""#;
    let cmd = HostCommand::shell(script)
        .arg(&path)
        .arg(format!("{:o}", mode & 0o7777))
        .arg(owner.unwrap_or_default())
        .sudo(true);
    h.run(&cmd, timeout).await?.check()?;
    Ok(())
}

/// Directories [`remove_tree`] never removes, whatever the caller says.
pub const PROTECTED_DIRS: &[&str] = &[
    "/", "/etc", "/usr", "/var", "/var/lib", "/home", "/root", "/boot", "/bin", "/sbin", "/lib",
    "/opt", "/srv", "/tmp", "/proc", "/sys", "/dev", "/run",
];

/// Remove a directory tree (`rm -rf --one-file-system`, as root); absent is fine. Refuses
/// (with an `InvalidInput` I/O error, before running anything) relative paths, paths
/// with `.` or `..` components, paths of fewer than two components and
/// [`PROTECTED_DIRS`].
pub async fn remove_tree(
    h: &dyn HostAccess,
    path: &str,
    timeout: Duration,
) -> Result<(), HostError> {
    let path = check_removable(path)
        .map_err(|detail| invalid_input(h, format!("refusing to remove {path:?}"), detail))?;
    let cmd = HostCommand::new("rm")
        .args(["-rf", "--one-file-system", "--"])
        .arg(&path)
        .sudo(true);
    h.run(&cmd, timeout).await?.check()?;
    Ok(())
}

/// Whether `path` may be removed by [`remove_tree`]; the normalised path (no trailing or
/// doubled slashes) when it may, else why not.
pub fn check_removable(path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err("the path is empty".to_owned());
    }
    if !path.starts_with('/') {
        return Err("the path is not absolute".to_owned());
    }
    if path.contains(['\n', '\0']) {
        return Err("the path contains a newline or NUL".to_owned());
    }
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if components.iter().any(|c| *c == "." || *c == "..") {
        return Err("the path has `.` or `..` components".to_owned());
    }
    let normalised = format!("/{}", components.join("/"));
    if PROTECTED_DIRS.contains(&normalised.as_str()) {
        return Err(format!("{normalised} is a system directory"));
    }
    if components.len() < 2 {
        return Err(format!("{normalised} has fewer than two path components"));
    }
    Ok(normalised)
}

/// Whether something exists at `path` (`test -e`, as root; a dangling symlink does not).
pub async fn file_exists(
    h: &dyn HostAccess,
    path: &str,
    timeout: Duration,
) -> Result<bool, HostError> {
    let path = check_path(h, path)?;
    let cmd = HostCommand::shell(r#"if [ -e "$1" ]; then echo yes; else echo no; fi"#)
        .arg(&path)
        .sudo(true);
    let out = h.run(&cmd, timeout).await?.check()?;
    match out.stdout_text().trim() {
        "yes" => Ok(true),
        "no" => Ok(false),
        other => Err(HostError::UnexpectedOutput {
            host: h.describe(),
            what: format!("test -e {path}"),
            detail: format!("{other:?}"),
        }),
    }
}

/// An `InvalidInput` I/O error on host `h`: a request refused before anything ran.
pub(crate) fn invalid_input(
    h: &dyn HostAccess,
    what: impl Into<String>,
    detail: impl Into<String>,
) -> HostError {
    HostError::Io {
        host: h.describe(),
        what: what.into(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, detail.into()),
    }
}

/// An absolute path without newlines or NUL bytes (scripts handle paths line by line),
/// with trailing slashes removed (`/` stays `/`).
pub(crate) fn check_path(h: &dyn HostAccess, path: &str) -> Result<String, HostError> {
    let bad = |detail: &str| invalid_input(h, format!("invalid path {path:?}"), detail);
    if !path.starts_with('/') {
        return Err(bad("not an absolute path"));
    }
    if path.contains(['\n', '\r', '\0']) {
        return Err(bad("contains a newline or NUL"));
    }
    let trimmed = path.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_owned())
}

/// `user` or `user:group`, each a plain name (letters, digits, `._-`, not starting with `-`).
fn check_owner(owner: &str) -> Result<(), String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && !n.starts_with('-')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    let ok = match owner.split_once(':') {
        Some((user, group)) => name_ok(user) && name_ok(group),
        None => name_ok(owner),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("invalid owner {owner:?} (want user or user:group)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABSENT: &str = "@@nines:exists\nno\n@@nines:is-dir\nno\n@@nines:empty\nyes\n\
        @@nines:ancestor\n/tmp/x\n@@nines:writable\nyes\n@@nines:df\n\
        overlay 270553174016 14643810304 82928939008 16% /\n@@nines:end\n";

    #[test]
    fn parses_an_absent_path() {
        let p = parse_probe_output("/tmp/x/a/b", ABSENT).expect("parse");
        assert_eq!(
            p,
            DirProbe {
                path: "/tmp/x/a/b".into(),
                exists: false,
                is_dir: false,
                empty: true,
                nearest_existing_ancestor: "/tmp/x".into(),
                ancestor_writable: true,
                free_bytes: Some(82928939008),
            }
        );
    }

    #[test]
    fn parses_existing_and_unwritable_cases() {
        let out = ABSENT
            .replace("exists\nno", "exists\nyes")
            .replace("is-dir\nno", "is-dir\nyes")
            .replace("empty\nyes", "empty\nunreadable")
            .replace("writable\nyes", "writable\nno")
            .replace("overlay 270553174016 14643810304 82928939008 16% /\n", "");
        let p = parse_probe_output("/tmp/x", &out).expect("parse");
        assert!(p.exists && p.is_dir && !p.empty && !p.ancestor_writable);
        assert_eq!(p.free_bytes, None);
    }

    #[test]
    fn probe_parser_rejects_broken_output() {
        let cut = &ABSENT[..ABSENT.find("@@nines:end").expect("end")];
        assert!(parse_probe_output("/x", cut).is_err());
        assert!(parse_probe_output("/x", &ABSENT.replace("exists\nno", "exists\nmaybe")).is_err());
        assert!(parse_probe_output("/x", &ABSENT.replace("\n/tmp/x\n", "\nx\n")).is_err());
        let left = ABSENT.replace("writable\nyes", "writable\nleftover /tmp/x/.nines-probe.a");
        let err = parse_probe_output("/x", &left).expect_err("leftover");
        assert!(err.contains("/tmp/x/.nines-probe.a"), "{err}");
        assert!(parse_probe_output("/x", "").is_err());
    }

    #[test]
    fn removable_paths() {
        assert_eq!(
            check_removable("/srv/nines/db1").as_deref(),
            Ok("/srv/nines/db1")
        );
        assert_eq!(check_removable("/data/x//y/").as_deref(), Ok("/data/x/y"));
        assert_eq!(
            check_removable("/var/lib/mysql").as_deref(),
            Ok("/var/lib/mysql")
        );
        for bad in [
            "",
            "/",
            "//",
            "/srv",
            "/srv/",
            "/data",
            "relative/path",
            "/var/lib/",
            "/var//lib",
            "/usr",
            "/etc/",
            "/tmp",
            "/run",
            "/a/../etc",
            "/a/./b",
            "/a/b\n",
        ] {
            assert!(check_removable(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(
            check_removable("/var/lib")
                .expect_err("refused")
                .contains("system directory")
        );
    }

    #[test]
    fn owners() {
        assert!(check_owner("mysql").is_ok());
        assert!(check_owner("mysql:mysql").is_ok());
        assert!(check_owner("my_user.1:grp-2").is_ok());
        for bad in ["", ":", "mysql:", "-x", "a b", "a;b", "a:b:c", "a:-b"] {
            assert!(check_owner(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_must_be_absolute_single_line() {
        let h = super::super::LocalHost::new();
        assert_eq!(check_path(&h, "/a/b/").expect("ok"), "/a/b");
        assert_eq!(check_path(&h, "///").expect("ok"), "/");
        assert!(check_path(&h, "a/b").is_err());
        assert!(check_path(&h, "/a\nb").is_err());
        let e = check_path(&h, "").expect_err("empty");
        assert!(e.to_string().starts_with("local: "), "{e}");
    }

    #[test]
    fn probe_script_runs_in_a_real_shell() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a/b");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(PROBE_SCRIPT)
            .arg("sh")
            .arg(&p)
            .output()
            .expect("run sh");
        assert!(out.status.success());
        let path = p.to_str().expect("utf8");
        let probe = parse_probe_output(path, &String::from_utf8_lossy(&out.stdout)).expect("parse");
        assert!(!probe.exists);
        assert_eq!(
            probe.nearest_existing_ancestor,
            dir.path().to_str().expect("utf8")
        );
        assert!(probe.ancestor_writable);
        assert!(probe.free_bytes.is_some_and(|b| b > 0));
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }
}
