//! The text tree of traces people read in the demo and in failing tests.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use crate::ReceivedSpan;

const MAX_INDENT: usize = 40;

/// Prints each trace as an indented tree of span names with their durations, children
/// ordered by start time, traces in the order they started. A span's `service.name`
/// stands in parentheses on roots and wherever it changes from the parent's, which is
/// where a trace crosses from one process to another.
///
/// ```
/// use otlp_receiver::{render_tree, ReceivedSpan};
/// let span = |id: &str, parent: &str, name: &str, service: &str, start: u64, end: u64| {
///     let mut s = ReceivedSpan {
///         trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
///         span_id: id.into(), parent_span_id: parent.into(), name: name.into(),
///         start_time_unix_nano: start, end_time_unix_nano: end, ..Default::default()
///     };
///     s.resource.insert("service.name".into(), service.into());
///     s
/// };
/// let spans = [
///     span("c", "b", "db.query", "python-server", 5_000_000, 7_000_000),
///     span("a", "", "GET /items", "go-client", 0, 12_300_000),
///     span("b", "a", "GET /items", "python-server", 1_000_000, 11_100_000),
/// ];
/// assert_eq!(render_tree(&spans), "\
/// trace 4bf92f3577b34da6a3ce929d0e0e4736
///   GET /items (go-client) 12.3 ms
///     GET /items (python-server) 10.1 ms
///       db.query 2.0 ms
/// ");
/// ```
///
/// A span whose parent was not received (a remote parent, or one still in flight) is
/// shown as a root with `(parent <id> not received)`, so a broken link is visible rather
/// than hidden. Duplicate ids and cycles in hostile input print each span once.
pub fn render_tree(spans: &[ReceivedSpan]) -> String {
    let mut traces: Vec<&str> = Vec::new();
    let mut by_trace: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, span) in spans.iter().enumerate() {
        by_trace
            .entry(span.trace_id.as_str())
            .or_insert_with(|| {
                traces.push(span.trace_id.as_str());
                Vec::new()
            })
            .push(i);
    }
    let trace_start = |trace: &str| {
        by_trace[trace]
            .iter()
            .map(|&i| spans[i].start_time_unix_nano)
            .min()
            .unwrap_or(0)
    };
    traces.sort_by_key(|trace| trace_start(trace));

    let mut out = String::new();
    for trace in traces {
        let members = &by_trace[trace];
        let ids: HashSet<&str> = members.iter().map(|&i| spans[i].span_id.as_str()).collect();
        let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut roots = Vec::new();
        for &i in members {
            let parent = spans[i].parent_span_id.as_str();
            if parent.is_empty() || !ids.contains(parent) {
                roots.push(i);
            } else {
                children.entry(parent).or_default().push(i);
            }
        }
        let by_start = |list: &mut Vec<usize>| {
            list.sort_by_key(|&i| (spans[i].start_time_unix_nano, i));
        };
        by_start(&mut roots);
        for list in children.values_mut() {
            by_start(list);
        }

        let _ = writeln!(out, "trace {trace}");
        let mut printed = vec![false; spans.len()];
        // Roots first; then whatever a cycle kept unreachable, so nothing is lost.
        let mut starts = roots.clone();
        let mut rest: Vec<usize> = members.clone();
        by_start(&mut rest);
        starts.extend(rest);
        for start in starts {
            if printed[start] {
                continue;
            }
            // Depth-first with an explicit stack: a hostile chain of a million spans
            // must not overflow the thread's stack.
            let mut stack = vec![(start, 1usize, None::<usize>)];
            while let Some((i, depth, parent)) = stack.pop() {
                if printed[i] {
                    continue;
                }
                printed[i] = true;
                let span = &spans[i];
                let service = span.service_name();
                let show_service = match parent {
                    None => true,
                    Some(p) => spans[p].service_name() != service,
                };
                // Indentation stops at MAX_INDENT levels (the depth is printed past it):
                // a deep hostile chain would otherwise make the text quadratic in size.
                if depth > MAX_INDENT {
                    let _ = write!(out, "{}[depth {depth}] ", "  ".repeat(MAX_INDENT));
                } else {
                    out.push_str(&"  ".repeat(depth));
                }
                out.push_str(&display_name(&span.name));
                if show_service {
                    if let Some(service) = service {
                        let _ = write!(out, " ({service})");
                    }
                }
                let _ = write!(out, " {:.1} ms", span.duration_ms());
                if parent.is_none() && !span.parent_span_id.is_empty() {
                    let why = if ids.contains(span.parent_span_id.as_str()) {
                        "in a cycle"
                    } else {
                        "not received"
                    };
                    let _ = write!(out, " (parent {} {why})", span.parent_span_id);
                }
                out.push('\n');
                if let Some(kids) = children.get(span.span_id.as_str()) {
                    for &kid in kids.iter().rev() {
                        if !printed[kid] {
                            stack.push((kid, depth + 1, Some(i)));
                        }
                    }
                }
            }
        }
    }
    out
}

/// Span names come from clients; control characters would break the tree's lines.
fn display_name(name: &str) -> String {
    if name.is_empty() {
        return "(unnamed)".into();
    }
    name.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}
