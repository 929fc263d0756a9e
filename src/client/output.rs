//! How client commands print: aligned tables, colours on a terminal only, JSON for scripts.
//!
//! Output is written with [`line`] and fails rather than panics: a reader that goes away
//! (`| head`) ends the command quietly (see `cli::run`). Everything goes through `anstream`, which drops ANSI escapes when stdout is not a terminal
//! or `NO_COLOR` is set (and keeps them with `CLICOLOR_FORCE`), so a command never has to ask
//! where its output goes. Padding is computed on the plain text before a colour wraps it, so
//! columns line up whether or not the escapes are there.

use anstyle::{AnsiColor, Style};
use serde_json::Value;

pub const GOOD: Style = AnsiColor::Green.on_default();
pub const WARN: Style = AnsiColor::Yellow.on_default();
pub const BAD: Style = AnsiColor::Red.on_default();
pub const DIM: Style = Style::new().dimmed();
pub const HEADER: Style = Style::new().bold();

/// The colour of a breaker state: closed green, half-open yellow, open red; the forced states
/// in bold so an operator's override stands out from the policy's own decision.
pub fn state_style(state: &str) -> Style {
    match state {
        "closed" => GOOD,
        "half_open" => WARN,
        "open" => BAD,
        "forced_open" => BAD.bold(),
        "forced_closed" => GOOD.bold(),
        _ => DIM,
    }
}

/// One table cell: its text and how it is coloured.
pub struct Cell {
    text: String,
    style: Style,
}

pub fn cell(text: impl Into<String>) -> Cell {
    styled(text, Style::new())
}

pub fn styled(text: impl Into<String>, style: Style) -> Cell {
    Cell {
        text: text.into(),
        style,
    }
}

/// A table printed with each column as wide as its widest cell.
pub struct Table {
    headers: Vec<&'static str>,
    right_aligned: Vec<usize>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            right_aligned: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Right-aligns these columns (numbers).
    pub fn right(mut self, columns: &[usize]) -> Self {
        self.right_aligned = columns.to_vec();
        self
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    pub fn print(&self) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(i) {
                    *width = (*width).max(cell.text.chars().count());
                }
            }
        }
        let header: Vec<Cell> = self.headers.iter().map(|h| styled(*h, HEADER)).collect();
        self.print_row(&header, &widths)?;
        for row in &self.rows {
            self.print_row(row, &widths)?;
        }
        Ok(())
    }

    fn print_row(&self, cells: &[Cell], widths: &[usize]) -> std::io::Result<()> {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            let last = i + 1 == cells.len();
            let padded = if self.right_aligned.contains(&i) {
                format!("{:>width$}", cell.text)
            } else if last {
                // No trailing spaces after the last column.
                cell.text.clone()
            } else {
                format!("{:<width$}", cell.text)
            };
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(&paint(&padded, cell.style));
        }
        self::line(line)
    }
}

/// Writes one line to stdout, dropping colour escapes when colour is off.
pub fn line(text: impl std::fmt::Display) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(anstream::stdout(), "{text}")
}

/// `text` in `style`; the escapes are stripped on the way out when colour is off.
pub fn paint(text: &str, style: Style) -> String {
    if style == Style::new() {
        text.to_string()
    } else {
        format!("{style}{text}{style:#}")
    }
}

/// The server's JSON as is, for scripts.
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    Ok(line(serde_json::to_string_pretty(value)?)?)
}

/// A JSON value as a short cell: strings bare, `null` as `-`.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
