//! The Prometheus text exposition format (version 0.0.4) of a registry.
//!
//! In: the declared families. Out: text a Prometheus server scrapes. Counters become
//! `<namespace>_<name>_total`; a timing becomes a histogram in seconds,
//! `<namespace>_<name>_seconds` (`_bucket`, `_sum`, `_count`), plus a counter of failures,
//! `<namespace>_<name>_failures_total`. Every declared family is present from the start:
//! its `# HELP` and `# TYPE` lines always, and for a family without labels its samples at
//! zero (Qdrant's `/metrics` shows a family only after its first sample). Anonymized, label
//! values go through their declared kinds and sums are rounded; counts stay exact.
//!
//! ```
//! let usage = telemetry_core::usage::Usage::standalone("my-app", "1.0");
//! usage.counter("starts").help("Process starts").build().unwrap();
//! let text = usage.prometheus(false);
//! assert!(text.contains("# TYPE my_app_starts_total counter\nmy_app_starts_total 0\n"));
//! ```

use std::fmt::Write as _;

use super::timing::TimingSnapshot;
use super::{CounterData, Label, TimingData, UsageShared};
use crate::anonymize::{self, Anonymizer, LocalNames};

/// A name Prometheus accepts: `[a-zA-Z_:][a-zA-Z0-9_:]*`, other characters become `_`.
pub fn sanitize_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text with `\` and newlines escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: integers plainly, floats in Rust's shortest form.
fn float(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

struct Writer<'a> {
    out: String,
    anonymizer: Option<&'a Anonymizer>,
    precision: u32,
}

impl Writer<'_> {
    /// `{a="x",b="y"` without the closing brace (an `le` may follow), or empty.
    fn label_text(&self, declared: &[Label], values: &[String]) -> String {
        let mut t = String::new();
        for (i, (label, value)) in declared.iter().zip(values).enumerate() {
            let shown = match self.anonymizer {
                Some(a) => {
                    match a.value(Some(label.kind), serde_json::Value::String(value.clone())) {
                        Some(serde_json::Value::String(s)) => s,
                        Some(other) => other.to_string(),
                        None => String::new(),
                    }
                }
                None => value.clone(),
            };
            t.push(if i == 0 { '{' } else { ',' });
            let _ = write!(t, "{}=\"{}\"", label.name, escape_value(&shown));
        }
        t
    }

    fn close(labels: &str) -> String {
        if labels.is_empty() {
            String::new()
        } else {
            format!("{labels}}}")
        }
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn counter(&mut self, ns: &str, family: &CounterData) {
        use std::sync::atomic::Ordering::Relaxed;
        let name = format!("{ns}_{}_total", family.shape.name);
        let help = if family.shape.help.is_empty() {
            &family.shape.name
        } else {
            &family.shape.help
        };
        self.header(&name, help, "counter");
        if family.shape.labels.is_empty() {
            let _ = writeln!(self.out, "{name} {}", family.single.load(Relaxed));
            return;
        }
        let mut rows: Vec<(String, u64)> = family
            .table
            .entries()
            .map(|k| {
                (
                    Self::close(&self.label_text(&family.shape.labels, &k.values)),
                    k.cell.load(Relaxed),
                )
            })
            .collect();
        rows.sort();
        for (labels, value) in rows {
            let _ = writeln!(self.out, "{name}{labels} {value}");
        }
    }

    fn timing(&mut self, ns: &str, family: &TimingData) {
        let base = format!("{ns}_{}", family.shape.name);
        let help = if family.shape.help.is_empty() {
            &family.shape.name
        } else {
            &family.shape.help
        };
        let n = family.bounds.len();
        let mut rows: Vec<(String, TimingSnapshot)> = if family.shape.labels.is_empty() {
            vec![(String::new(), family.single.snapshot(n))]
        } else {
            family
                .table
                .entries()
                .map(|k| {
                    (
                        self.label_text(&family.shape.labels, &k.values),
                        k.cell.snapshot(n),
                    )
                })
                .collect()
        };
        rows.sort_by(|a, b| a.0.cmp(&b.0));

        let hist = format!("{base}_seconds");
        self.header(&hist, help, "histogram");
        for (labels, s) in &rows {
            let sep = if labels.is_empty() { "{" } else { "," };
            for (bound, count) in family.bounds.iter().zip(&s.cumulative) {
                let le = float(*bound as f64 / 1e9);
                let _ = writeln!(self.out, "{hist}_bucket{labels}{sep}le=\"{le}\"}} {count}");
            }
            let _ = writeln!(
                self.out,
                "{hist}_bucket{labels}{sep}le=\"+Inf\"}} {}",
                s.count
            );
            let seconds = s.total_nanos as f64 / 1e9;
            let sum = match self.anonymizer {
                Some(_) => anonymize::round_f64(seconds, self.precision)
                    .as_f64()
                    .unwrap_or(0.0),
                None => seconds,
            };
            let closed = Self::close(labels);
            let _ = writeln!(self.out, "{hist}_sum{closed} {}", float(sum));
            let _ = writeln!(self.out, "{hist}_count{closed} {}", s.count);
        }
        let fails = format!("{base}_failures_total");
        self.header(
            &fails,
            &format!(
                "Failed operations of {} (counted, not timed)",
                family.shape.name
            ),
            "counter",
        );
        for (labels, s) in &rows {
            let _ = writeln!(self.out, "{fails}{} {}", Self::close(labels), s.fail_count);
        }
    }
}

/// Renders every declared family of `shared`.
pub(crate) fn render(shared: &UsageShared, anonymize: bool) -> String {
    let anonymizer = anonymize.then(|| {
        Anonymizer::new(*shared.identity().secret(), shared.precision)
            .with_local_names(LocalNames::detect(&crate::env::ProcessEnvironment))
    });
    let mut w = Writer {
        out: String::new(),
        anonymizer: anonymizer.as_ref(),
        precision: shared.precision,
    };
    let counters: Vec<_> = shared
        .counters
        .read()
        .map(|c| c.values().cloned().collect())
        .unwrap_or_default();
    for family in counters {
        w.counter(&shared.namespace, &family);
    }
    let timings: Vec<_> = shared
        .timings
        .read()
        .map(|t| t.values().cloned().collect())
        .unwrap_or_default();
    for family in timings {
        w.timing(&shared.namespace, &family);
    }
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_made_safe_for_the_format() {
        assert_eq!(sanitize_name("My-App 2"), "my_app_2");
        assert_eq!(sanitize_name("9lives"), "_9lives");
        assert_eq!(escape_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(float(0.001), "0.001");
        assert_eq!(float(50.0), "50");
    }
}
