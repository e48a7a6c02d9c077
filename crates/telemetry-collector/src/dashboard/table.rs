//! Tables: what every chart shows in text, what the page lists and what the
//! CSV downloads hold — one definition for all three.
//!
//! CSV follows RFC 4180 (quotes doubled, CRLF line ends). A text cell that a
//! spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a
//! tab or a carriage return) is prefixed with `'`, as OWASP advises: senders
//! choose every stored string, and a download must not run their formula in
//! the integrator's spreadsheet. Numbers are written as numbers.
//!
//! ```
//! use telemetry_collector::dashboard::table::{Cell, Table};
//! let mut t = Table::new("versions-now", &["version", "installs"]);
//! t.push(vec![Cell::text("=HYPERLINK(\"x\")"), Cell::int(3)]);
//! assert_eq!(t.to_csv(), "version,installs\r\n\"'=HYPERLINK(\"\"x\"\")\",3\r\n");
//! ```

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text, escaped in HTML and neutralised in CSV.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A number with a fraction, and how the page shows it.
    Float(f64, Unit),
}

/// How the page shows a [`Cell::Float`] (the CSV and `data-value` keep the raw number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Plain, two decimals at most.
    Plain,
    /// A ratio shown as a percentage.
    Percent,
    /// Microseconds.
    Micros,
}

impl Cell {
    /// A text cell.
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    /// A whole-number cell.
    pub fn int(n: impl TryInto<i64>) -> Cell {
        Cell::Int(n.try_into().unwrap_or(i64::MAX))
    }

    /// The raw value as text: what CSV and `data-value` hold.
    pub fn raw(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Float(f, _) => float_text(*f),
        }
    }

    /// The value as the page shows it.
    pub fn display(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => group_digits(*n),
            Cell::Float(f, Unit::Plain) => float_text((f * 100.0).round() / 100.0),
            Cell::Float(f, Unit::Percent) => format!("{:.2} %", f * 100.0),
            Cell::Float(f, Unit::Micros) => format!("{} µs", group_digits(f.round() as i64)),
        }
    }

    /// Whether the cell holds a number (right-aligned, `data-value`).
    pub fn is_number(&self) -> bool {
        !matches!(self, Cell::Text(_))
    }
}

fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// `1234567` as `1,234,567`.
pub fn group_digits(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A named table: its columns and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The name in `data-table`, in `?table=` of the CSV link, and in the file name.
    pub name: &'static str,
    /// Column names (the CSV header row; the JSON's field names).
    pub columns: Vec<&'static str>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table.
    pub fn new(name: &'static str, columns: &[&'static str]) -> Table {
        Table {
            name,
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len(), "{}", self.name);
        self.rows.push(row);
    }

    /// The table as CSV, header row first.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = String>| {
            let mut first = true;
            for cell in cells {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&csv_field(&cell));
            }
            out.push_str("\r\n");
        };
        line(&mut out, &mut self.columns.iter().map(|c| c.to_string()));
        for row in &self.rows {
            line(
                &mut out,
                &mut row.iter().map(|c| match c {
                    Cell::Text(s) => neutralise(s),
                    number => number.raw(),
                }),
            );
        }
        out
    }
}

/// A text cell made safe for spreadsheets: formula starters get a leading `'`.
pub fn neutralise(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

/// One CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        let mut quoted = String::with_capacity(s.len() + 2);
        quoted.push('"');
        for c in s.chars() {
            if c == '"' {
                quoted.push('"');
            }
            quoted.push(c);
        }
        quoted.push('"');
        quoted
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starters_are_neutralised_in_text_only() {
        let mut t = Table::new("t", &["name", "n"]);
        for s in [
            "=1+1",
            "+1",
            "-1",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "plain",
            "a,b",
            "say \"hi\"",
        ] {
            t.push(vec![Cell::text(s), Cell::int(-5)]);
        }
        let csv = t.to_csv();
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[1], "'=1+1,-5");
        assert_eq!(lines[2], "'+1,-5");
        assert_eq!(lines[3], "'-1,-5");
        assert_eq!(lines[4], "'@SUM(A1),-5");
        assert_eq!(lines[5], "'\tx,-5");
        assert_eq!(lines[7], "plain,-5");
        assert_eq!(lines[8], "\"a,b\",-5");
        assert_eq!(lines[9], "\"say \"\"hi\"\"\",-5");
        assert!(csv.contains("\"'\rx\",-5"));
    }

    #[test]
    fn numbers_show_grouped_and_keep_raw() {
        assert_eq!(group_digits(1_234_567), "1,234,567");
        assert_eq!(group_digits(-1000), "-1,000");
        assert_eq!(group_digits(999), "999");
        assert_eq!(Cell::Float(0.01234, Unit::Percent).display(), "1.23 %");
        assert_eq!(Cell::Float(1234.4, Unit::Micros).display(), "1,234 µs");
        assert_eq!(Cell::Float(2.0, Unit::Plain).raw(), "2");
        assert_eq!(Cell::Float(2.5, Unit::Plain).raw(), "2.5");
    }
}
