//! What commands print: a buffered stdout where a closed pipe (`| head`)
//! is not an error ([`outln!`], [`out!`], [`emit`]), left-aligned text
//! tables that count East Asian wide characters as two columns. Progress
//! on stderr is `progress`'s.

use crate::broadcast::Target;

/// Appends a line to the output buffer `o` (printed once by [`emit`]).
macro_rules! outln {
    ($o:ident) => {
        $o.push('\n')
    };
    ($o:ident, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}

/// Appends to the output buffer `o`.
macro_rules! out {
    ($o:ident, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($o, $($t)*);
    }};
}

pub(super) use {out, outln};

/// Writes the output; a closed pipe (`| head`) is not an error.
pub(super) fn emit(o: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(o.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Targets as written in a timetable: `all,village:V01`.
pub(super) fn targets_text(t: &[Target]) -> String {
    t.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Terminal columns of a string: East Asian wide characters (Han, kana,
/// Hangul, full-width forms) take two.
fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        })
        .sum()
}

/// Left-aligned columns, two spaces apart; `(none)` without rows.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "  (none)\n".into();
    }
    let mut width: Vec<usize> = header.iter().map(|h| display_width(h)).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(display_width(c));
        }
    }
    let mut out = String::new();
    let head: Vec<String> = header.iter().map(ToString::to_string).collect();
    for r in std::iter::once(&head).chain(rows) {
        let mut line = String::new();
        for (c, w) in r.iter().zip(&width) {
            line.push_str(c);
            line.push_str(&" ".repeat(w.saturating_sub(display_width(c)) + 2));
        }
        out.push_str("  ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_wide_characters_as_two_columns() {
        let rows = vec![
            vec!["定时".to_string(), "x".to_string()],
            vec!["ab".to_string(), "y".to_string()],
        ];
        assert_eq!(
            table(&["id", "v"], &rows),
            "  id    v\n  定时  x\n  ab    y\n"
        );
        assert_eq!(table(&["id"], &[]), "  (none)\n");
    }
}
