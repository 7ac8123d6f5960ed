//! Pieces shared by the facts and metrics probes: the section format of their one-shot
//! shell scripts, the shell snippet and parser for `df -P -B1`, and the `/proc/meminfo`
//! parser. All parsers are pure and tested on literal text.

use serde::{Deserialize, Serialize};

/// Each section of a probe script's output starts with a line `@@nines:<name>`.
pub(crate) const SECTION_MARKER: &str = "@@nines:";

/// The last section of every probe script; its absence means the output was cut short.
pub(crate) const END_SECTION: &str = "end";

/// A shell function `nines_df PATH` printing the `df -P -B1` data row of the file system
/// holding PATH, or of its nearest existing ancestor when PATH does not exist yet.
pub(crate) const DF_FUNCTION: &str = r#"nines_df() {
  d=$1
  while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done
  df -P -B1 -- "$d" 2>/dev/null | sed 1d
}
"#;

/// Split probe output into `(name, body)` sections, in order. Text before the first
/// marker is ignored.
pub(crate) fn split_sections(output: &str) -> Vec<(&str, &str)> {
    let mut sections = Vec::new();
    let mut current: Option<(&str, usize)> = None;
    let mut offset = 0;
    for line in output.split_inclusive('\n') {
        if let Some(name) = line.strip_prefix(SECTION_MARKER) {
            if let Some((prev, start)) = current.take() {
                sections.push((prev, &output[start..offset]));
            }
            current = Some((name.trim_end_matches(['\n', '\r']), offset + line.len()));
        }
        offset += line.len();
    }
    if let Some((name, start)) = current {
        sections.push((name, &output[start..]));
    }
    sections
}

/// The body of the first section called `name`.
pub(crate) fn section<'a>(sections: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    sections
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, body)| *body)
}

/// Require the end marker, so truncated output is not mistaken for missing data.
pub(crate) fn require_end(sections: &[(&str, &str)]) -> Result<(), String> {
    if sections.iter().any(|(n, _)| *n == END_SECTION) {
        Ok(())
    } else {
        Err("output ended before the end marker".to_owned())
    }
}

/// Memory figures from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemInfo {
    /// MemTotal.
    pub total_bytes: u64,
    /// MemAvailable (MemFree + Buffers + Cached on kernels without it).
    pub available_bytes: u64,
    /// SwapTotal (0 without swap).
    pub swap_total_bytes: u64,
    /// SwapFree.
    pub swap_free_bytes: u64,
}

/// Parse `/proc/meminfo` (values in kB, reported here in bytes). MemTotal is required.
pub fn parse_meminfo(text: &str) -> Result<MemInfo, String> {
    let field = |key: &str| -> Option<u64> {
        text.lines().find_map(|line| {
            let (k, rest) = line.split_once(':')?;
            if k.trim() != key {
                return None;
            }
            let mut words = rest.split_whitespace();
            let value: u64 = words.next()?.parse().ok()?;
            let factor = match words.next() {
                Some("kB") => 1024,
                None => 1,
                Some(_) => return None,
            };
            value.checked_mul(factor)
        })
    };
    let total = field("MemTotal").ok_or("no MemTotal in /proc/meminfo")?;
    let available = field("MemAvailable").unwrap_or_else(|| {
        field("MemFree").unwrap_or(0) + field("Buffers").unwrap_or(0) + field("Cached").unwrap_or(0)
    });
    Ok(MemInfo {
        total_bytes: total,
        available_bytes: available,
        swap_total_bytes: field("SwapTotal").unwrap_or(0),
        swap_free_bytes: field("SwapFree").unwrap_or(0),
    })
}

/// Size and use of the file system holding a path, from `df -P -B1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskUsage {
    /// The path asked about (it may not exist yet; then its nearest existing ancestor was measured).
    pub path: String,
    /// The file system (device) name.
    pub filesystem: String,
    /// Where that file system is mounted.
    pub mount_point: String,
    /// Size of the file system.
    pub total_bytes: u64,
    /// Bytes in use.
    pub used_bytes: u64,
    /// Bytes available to unprivileged users.
    pub available_bytes: u64,
}

/// Parse the output of `df -P -B1` for `path` (the header line is optional): the first
/// data row. File system and mount point names may contain spaces.
pub fn parse_df(path: &str, text: &str) -> Result<DiskUsage, String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("Filesystem "))
        .ok_or_else(|| format!("no df output for {path}"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    // Capacity is the first word from index 4 on that is `NN%` or `-`, preceded by
    // three numbers: size, used, available.
    let cap = (4..words.len())
        .find(|&i| {
            let w = words[i];
            let is_capacity = w == "-"
                || w.strip_suffix('%')
                    .is_some_and(|n| n.parse::<u64>().is_ok());
            is_capacity && words[i - 3..i].iter().all(|n| n.parse::<u64>().is_ok())
        })
        .ok_or_else(|| format!("unrecognised df line for {path}: {line:?}"))?;
    let number = |i: usize| words[i].parse::<u64>().map_err(|e| e.to_string());
    Ok(DiskUsage {
        path: path.to_owned(),
        filesystem: words[..cap - 3].join(" "),
        mount_point: words[cap + 1..].join(" "),
        total_bytes: number(cap - 3)?,
        used_bytes: number(cap - 2)?,
        available_bytes: number(cap - 1)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sections_in_order() {
        let out = "noise\n@@nines:a\n1\n2\n@@nines:df /x y\n@@nines:end\n";
        let s = split_sections(out);
        assert_eq!(s, vec![("a", "1\n2\n"), ("df /x y", ""), ("end", "")]);
        assert_eq!(section(&s, "a"), Some("1\n2\n"));
        assert_eq!(section(&s, "b"), None);
        assert!(require_end(&s).is_ok());
        assert!(require_end(&split_sections("@@nines:a\n1\n")).is_err());
    }

    #[test]
    fn parses_meminfo() {
        let text = "MemTotal:       24684092 kB\nMemFree:  100 kB\nMemAvailable:   23718444 kB\nSwapTotal:  2048 kB\nSwapFree: 1024 kB\nHugePages_Total:       0\n";
        let m = parse_meminfo(text).expect("parse");
        assert_eq!(m.total_bytes, 24684092 * 1024);
        assert_eq!(m.available_bytes, 23718444 * 1024);
        assert_eq!(m.swap_total_bytes, 2048 * 1024);
        assert_eq!(m.swap_free_bytes, 1024 * 1024);
    }

    #[test]
    fn meminfo_falls_back_without_memavailable_and_needs_total() {
        let old = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 20 kB\n";
        let m = parse_meminfo(old).expect("parse");
        assert_eq!(m.available_bytes, 130 * 1024);
        assert_eq!(m.swap_total_bytes, 0);
        assert!(parse_meminfo("MemFree: 1 kB\n").is_err());
        assert!(parse_meminfo("MemTotal: lots kB\n").is_err());
    }

    #[test]
    fn parses_df_rows() {
        let text = "Filesystem         1-blocks        Used   Available Capacity Mounted on\n/dev/vda       270553174016 14643810304 82928939008      16% /\n";
        let d = parse_df("/var/lib/mysql", text).expect("parse");
        assert_eq!(
            d,
            DiskUsage {
                path: "/var/lib/mysql".into(),
                filesystem: "/dev/vda".into(),
                mount_point: "/".into(),
                total_bytes: 270553174016,
                used_bytes: 14643810304,
                available_bytes: 82928939008,
            }
        );
        let spaced = "map auto home 100 40 60 40% /mnt/my disk\n";
        let d = parse_df("/mnt/my disk/x", spaced).expect("parse");
        assert_eq!(d.filesystem, "map auto home");
        assert_eq!(d.mount_point, "/mnt/my disk");
        assert_eq!(d.used_bytes, 40);
        let proc_fs = "proc 0 0 0 - /proc\n";
        assert_eq!(parse_df("/proc", proc_fs).expect("parse").total_bytes, 0);
    }

    #[test]
    fn df_rejects_garbage() {
        assert!(parse_df("/", "").is_err());
        assert!(
            parse_df(
                "/",
                "Filesystem 1-blocks Used Available Capacity Mounted on\n"
            )
            .is_err()
        );
        assert!(parse_df("/", "df: /x: No such file or directory\n").is_err());
    }

    #[test]
    fn df_function_measures_nearest_existing_ancestor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("not/yet/there");
        let script = format!("{DF_FUNCTION}nines_df \"$1\"");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&missing)
            .output()
            .expect("run sh");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let d = parse_df("x", &text).expect("parse");
        assert!(d.total_bytes > 0);
    }
}
