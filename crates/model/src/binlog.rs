//! Reading MariaDB binary log bytes as far as archiving needs: where the last complete
//! event ends (only whole events are archived), and the GTIDs and times of the
//! transactions in between. A binlog file is the magic `\xfebin` followed by events, each
//! with a 19-byte header: timestamp (u32), type (u8), server id (u32), event size (u32,
//! header and checksum included), next position (u32), flags (u16), all little-endian. A
//! MariaDB GTID event (type 162) starts its body with the sequence number (u64) and the
//! domain id (u32); the GTID is `domain-server-sequence`.

use chrono::{DateTime, TimeZone, Utc};

/// The four bytes every binlog file starts with.
pub const MAGIC: &[u8; 4] = b"\xfebin";
const HEADER: usize = 19;
const GTID_EVENT: u8 = 162;

/// What a run of events holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scan {
    /// Bytes from the start of the run to the end of its last complete event.
    pub complete: usize,
    /// Complete events seen.
    pub events: usize,
    pub first_gtid: Option<String>,
    pub last_gtid: Option<String>,
    /// Time of the first and last complete events (whole seconds, as binlogs keep them).
    pub first_time: Option<DateTime<Utc>>,
    pub last_time: Option<DateTime<Utc>>,
}

/// Scans `bytes`, which start at `offset` in their file (0: the magic comes first; else
/// an event boundary). An error when the bytes are not a binlog (bad magic, an event
/// smaller than its header).
pub fn scan(bytes: &[u8], offset: u64) -> Result<Scan, String> {
    let mut at = 0usize;
    if offset == 0 {
        if bytes.len() < MAGIC.len() {
            return Ok(Scan::default());
        }
        if &bytes[..4] != MAGIC {
            return Err("not a binary log (bad magic)".into());
        }
        at = 4;
    }
    let mut s = Scan {
        complete: at,
        ..Scan::default()
    };
    while bytes.len() - at >= HEADER {
        let h = &bytes[at..at + HEADER];
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let timestamp = u32_at(0);
        let kind = h[4];
        let server_id = u32_at(5);
        let size = u32_at(9) as usize;
        if size < HEADER {
            return Err(format!(
                "event at offset {} claims {size} bytes, less than its header",
                offset + at as u64
            ));
        }
        if bytes.len() - at < size {
            break;
        }
        if kind == GTID_EVENT && size >= HEADER + 12 {
            let b = &bytes[at + HEADER..at + HEADER + 12];
            let seq = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            let domain = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
            let gtid = format!("{domain}-{server_id}-{seq}");
            if s.first_gtid.is_none() {
                s.first_gtid = Some(gtid.clone());
            }
            s.last_gtid = Some(gtid);
        }
        if timestamp != 0 {
            let t = Utc.timestamp_opt(i64::from(timestamp), 0).single();
            if s.first_time.is_none() {
                s.first_time = t;
            }
            s.last_time = t.or(s.last_time);
        }
        at += size;
        s.complete = at;
        s.events += 1;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event of `kind` with `body`, as the server writes it (no checksum here).
    fn event(ts: u32, kind: u8, server: u32, body: &[u8]) -> Vec<u8> {
        let size = (HEADER + body.len()) as u32;
        let mut e = Vec::new();
        e.extend_from_slice(&ts.to_le_bytes());
        e.push(kind);
        e.extend_from_slice(&server.to_le_bytes());
        e.extend_from_slice(&size.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(body);
        e
    }

    fn gtid(ts: u32, server: u32, domain: u32, seq: u64) -> Vec<u8> {
        let mut body = seq.to_le_bytes().to_vec();
        body.extend_from_slice(&domain.to_le_bytes());
        body.push(0);
        event(ts, GTID_EVENT, server, &body)
    }

    #[test]
    fn whole_events_gtids_and_times() {
        let mut file = MAGIC.to_vec();
        file.extend(event(1_764_000_000, 15, 1, &[0; 40])); // format description
        file.extend(gtid(1_764_000_010, 1, 0, 5));
        file.extend(event(1_764_000_010, 2, 1, b"insert"));
        file.extend(gtid(1_764_000_020, 7, 0, 6));
        let whole = file.len();
        file.extend(&event(1_764_000_030, 2, 7, b"partial")[..10]);
        let s = scan(&file, 0).unwrap();
        assert_eq!(s.complete, whole);
        assert_eq!(s.events, 4);
        assert_eq!(s.first_gtid.as_deref(), Some("0-1-5"));
        assert_eq!(s.last_gtid.as_deref(), Some("0-7-6"));
        assert_eq!(s.first_time.unwrap().timestamp(), 1_764_000_000);
        assert_eq!(s.last_time.unwrap().timestamp(), 1_764_000_020);

        // A run that starts at an event boundary further in the file.
        let tail = &file[4 + 59..];
        let s = scan(tail, 63).unwrap();
        assert_eq!(s.first_gtid.as_deref(), Some("0-1-5"));
        assert_eq!(s.complete, whole - 63);

        // Nothing complete yet; not a binlog; a corrupt size.
        assert_eq!(scan(&file[..20], 0).unwrap().complete, 4);
        assert!(scan(b"GIF89a-not-a-binlog-at-all", 0).is_err());
        let mut bad = MAGIC.to_vec();
        bad.extend(event(1, 2, 1, b""));
        bad[4 + 9] = 3;
        assert!(scan(&bad, 0).is_err());
    }
}
