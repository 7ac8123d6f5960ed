//! Human tables and JSON output.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

use crate::Format;

/// `s` for a person's terminal: control characters other than line breaks are written as
/// escapes, so text a user or a server supplied (an event, a reason, a server's error)
/// cannot move the cursor, clear the screen or recolour what follows.
pub fn terminal(s: &str) -> String {
    s.split('\n')
        .map(|line| nines_model::input::printable(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `println!` through [`terminal`].
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => {
        println!("{}", $crate::output::terminal(&format!($($t)*)))
    };
}

/// `eprintln!` through [`terminal`].
#[macro_export]
macro_rules! esay {
    ($($t:tt)*) => {
        eprintln!("{}", $crate::output::terminal(&format!($($t)*)))
    };
}

/// Prints `value` as JSON, or as a table built by `table` from it.
pub fn print<T: Serialize>(
    format: Format,
    value: &T,
    table: impl FnOnce(&T) -> Table,
) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Format::Table => crate::say!("{}", table(value)),
    }
    Ok(())
}

/// A table with a header row and the project's look.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header(header.iter().copied());
    t
}

pub fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "-".into())
}

pub fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_keeps_lines_and_escapes_the_rest() {
        assert_eq!(terminal("a\nb"), "a\nb");
        assert_eq!(
            terminal("reason \u{1b}[2J\u{7}\r"),
            "reason \\u{1b}[2J\\u{7}\\r"
        );
        assert_eq!(terminal("ünï ✓"), "ünï ✓");
    }
}
