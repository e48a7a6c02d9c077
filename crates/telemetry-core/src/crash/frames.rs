//! Rust stack frames from `std::backtrace::Backtrace`'s text, the stable way to read them.
//!
//! In: the backtrace's `Display` output (`  3: app::handler\n at ./src/main.rs:10:5`). Out:
//! frames outermost first, without the panic machinery's own frames at the inner end,
//! each marked as the host's own code or not (the standard library and crates from the
//! registry are not).
//!
//! ```
//! let text = "   0: std::panicking::begin_panic\n             at /rustc/abc/library/std/src/panicking.rs:1:1\n   1: app::parse::h0123456789abcdef\n             at ./src/parse.rs:7:9\n   2: app::main\n             at ./src/main.rs:3:5";
//! let frames = telemetry_core::crash::frames::parse(text);
//! assert_eq!(frames.len(), 2);
//! assert_eq!((frames[1].function.as_str(), frames[1].line), ("app::parse", Some(7)));
//! assert!(frames[1].in_app);
//! ```

use super::report::Frame;

/// Functions of the machinery between a panic and its hook: they say nothing about the crash.
const MACHINERY: &[&str] = &[
    "std::backtrace",
    "std::panicking::",
    "core::panicking::panic_fmt",
    "rust_begin_unwind",
    "__rustc::rust_begin_unwind",
    "telemetry_core::crash",
    "<alloc::boxed::Box<F,A> as core::ops::function::Fn<Args>>::call",
    "std::sys::backtrace::",
    "std::sys_common::backtrace::",
];

/// Where a panic enters the runtime: every frame inside these is the panic machinery.
const ENTRY: &[&str] = &[
    "core::panicking::panic_fmt",
    "core::panicking::panic_nounwind_fmt",
    "std::panicking::begin_panic",
    "rust_begin_unwind",
    "__rustc::rust_begin_unwind",
];

/// Library code: the standard library, the runtime and registry crates.
fn is_library(function: &str, file: &str) -> bool {
    let f = function.trim_start_matches('<');
    [
        "std::",
        "core::",
        "alloc::",
        "backtrace::",
        "telemetry_core::",
        "__libc",
        "_start",
        "__rust",
    ]
    .iter()
    .any(|p| f.starts_with(p))
        || file.contains("/rustc/")
        || file.contains("/.cargo/registry/")
        || file.contains("/.cargo/git/")
        || file.contains("/library/std/")
        || file.contains("/library/core/")
}

/// `name::h0123456789abcdef` without its hash.
fn without_hash(name: &str) -> &str {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => name,
    }
}

/// `path:line:col` from an `at` line.
fn location(at: &str) -> (String, Option<u32>, Option<u32>) {
    let mut parts = at.rsplitn(3, ':');
    let (a, b, rest) = (parts.next(), parts.next(), parts.next());
    match (
        a.and_then(|c| c.parse().ok()),
        b.and_then(|l| l.parse().ok()),
        rest,
    ) {
        (Some(col), Some(line), Some(path)) => (path.to_string(), Some(line), Some(col)),
        _ => match at.rsplit_once(':') {
            Some((path, line)) if line.parse::<u32>().is_ok() => {
                (path.to_string(), line.parse().ok(), None)
            }
            _ => (at.to_string(), None, None),
        },
    }
}

/// Parses a backtrace's text; see the module documentation. Never panics.
pub fn parse(text: &str) -> Vec<Frame> {
    // Innermost first, as the backtrace prints them.
    let mut frames: Vec<Frame> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(at) = trimmed.strip_prefix("at ") {
            if let Some(last) = frames.last_mut() {
                if last.file.is_empty() {
                    let (file, l, c) = location(at);
                    last.in_app =
                        last.function.contains("::") && !is_library(&last.function, &file);
                    last.file = file;
                    last.line = l;
                    last.column = c;
                }
            }
            continue;
        }
        let Some((index, name)) = trimmed.split_once(": ") else {
            continue;
        };
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let function = without_hash(name.trim()).to_string();
        // A symbol outside any module and without a file is the runtime's (`main`, `_start`)
        // until an `at` line says otherwise.
        let in_app = function.contains("::") && !is_library(&function, "");
        frames.push(Frame {
            function,
            file: String::new(),
            line: None,
            column: None,
            in_app,
        });
    }
    // Drop the machinery at the inner end: everything up to the panic's entry point
    // (`panic_fmt`, `begin_panic`), whose names appear nowhere else; without one, the run of
    // machinery frames the backtrace starts with. Outer frames such as the
    // `catch_unwind` around `main` stay.
    let cut = frames
        .iter()
        .rposition(|f| ENTRY.iter().any(|e| f.function.starts_with(e)))
        .map(|i| i + 1)
        .unwrap_or_else(|| {
            frames
                .iter()
                .position(|f| !MACHINERY.iter().any(|m| f.function.starts_with(m)))
                .unwrap_or(frames.len())
        });
    let mut outer_first: Vec<Frame> = frames.into_iter().skip(cut).collect();
    outer_first.reverse();
    outer_first
}
