//! One error report: what crashed (or failed), where, and the causes behind it, scrubbed
//! and fingerprinted, shaped as PostHog's `$exception` event.
//!
//! In: a type, a message, frames and causes from any language (a Rust panic, a Python
//! traceback, a Go panic, JSON over the C ABI). Out: [`ErrorReport::scrub`] (messages
//! through the free-text scrubber, file names without their directories), a fingerprint,
//! and [`ErrorReport::to_event`], the `$exception` event with `$exception_list` and
//! `$exception_fingerprint` that PostHog's error tracking reads.
//!
//! ```
//! use telemetry_core::crash::{ErrorReport, Frame};
//! let report = ErrorReport::new("ConnectionRefusedError", "connect to db01.internal:5432 failed")
//!     .frame(Frame::new("connect", "/srv/app/db.py", 42).in_app(true));
//! let scrubbed = report.scrub(&telemetry_core::crash::scrubber());
//! assert_eq!(scrubbed.frames[0].file, "db.py");
//! assert_eq!(scrubbed.fingerprint().len(), 16);
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::anonymize::Anonymizer;
use crate::event::Event;

/// The event name PostHog's error tracking reads.
pub const EXCEPTION_EVENT: &str = "$exception";

/// How many frames, from the innermost, make the fingerprint.
pub const FINGERPRINT_FRAMES: usize = 5;

/// Frames kept per exception (the innermost ones).
pub const MAX_FRAMES: usize = 64;

/// Causes kept behind the exception.
pub const MAX_CAUSES: usize = 8;

/// One stack frame: code, never data. The innermost frame is the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frame {
    /// The function (`db.connect`, `app::handler`, `main.(*Server).handle`).
    pub function: String,
    /// The file name, without directories once scrubbed.
    #[serde(default)]
    pub file: String,
    /// The line, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The column, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// The host's own code (not the standard library's or a dependency's).
    #[serde(default)]
    pub in_app: bool,
}

impl Frame {
    /// A frame of `function` in `file` at `line`.
    pub fn new(function: impl Into<String>, file: impl Into<String>, line: u32) -> Frame {
        Frame {
            function: function.into(),
            file: file.into(),
            line: (line > 0).then_some(line),
            column: None,
            in_app: false,
        }
    }

    /// Marks the frame as the host's own code, or not.
    pub fn in_app(mut self, yes: bool) -> Frame {
        self.in_app = yes;
        self
    }

    /// Sets the column.
    pub fn column(mut self, column: u32) -> Frame {
        self.column = (column > 0).then_some(column);
        self
    }
}

/// One exception of a chain: the reported one or a cause behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// The type (`ValueError`, `*url.Error`, `panic`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The message.
    #[serde(default)]
    pub message: String,
    /// Frames, outermost first.
    #[serde(default)]
    pub frames: Vec<Frame>,
}

/// A report of one error or crash, with its causes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorReport {
    /// The type of the reported exception.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its message.
    #[serde(default)]
    pub message: String,
    /// Its frames, outermost first (the innermost, where it was raised, last).
    #[serde(default)]
    pub frames: Vec<Frame>,
    /// What caused it, nearest cause first (Python's `__cause__`, Rust's `source()`, Go's
    /// wrapped errors).
    #[serde(default)]
    pub causes: Vec<Exception>,
    /// Whether the host caught it (false for a crash; true when not said).
    #[serde(default = "handled_by_default")]
    pub handled: bool,
    /// The language runtime (`rust`, `python`, `go`, ...), PostHog's frame platform.
    #[serde(default)]
    pub platform: String,
}

impl ErrorReport {
    /// A report of an error of `kind` with `message`, handled, without frames yet.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> ErrorReport {
        ErrorReport {
            kind: kind.into(),
            message: message.into(),
            frames: Vec::new(),
            causes: Vec::new(),
            handled: true,
            platform: "custom".into(),
        }
    }

    /// Adds a frame (call outermost first).
    pub fn frame(mut self, frame: Frame) -> ErrorReport {
        self.frames.push(frame);
        self
    }

    /// Adds a cause behind the error.
    pub fn cause(mut self, kind: impl Into<String>, message: impl Into<String>) -> ErrorReport {
        self.causes.push(Exception {
            kind: kind.into(),
            message: message.into(),
            frames: Vec::new(),
        });
        self
    }

    /// Marks the report as a crash (unhandled) or a handled error.
    pub fn handled(mut self, handled: bool) -> ErrorReport {
        self.handled = handled;
        self
    }

    /// Sets the platform (`rust`, `python`, `go`).
    pub fn platform(mut self, platform: impl Into<String>) -> ErrorReport {
        self.platform = platform.into();
        self
    }

    /// Parses the JSON form bindings send: `{"type", "message", "frames": [{"function",
    /// "file", "line", "column", "in_app"}], "causes": [...], "handled", "platform"}`.
    pub fn from_json(text: &str) -> Result<ErrorReport, String> {
        let report: ErrorReport =
            serde_json::from_str(text).map_err(|e| format!("invalid error report JSON: {e}"))?;
        if report.kind.trim().is_empty() {
            return Err("the error report's type is empty".into());
        }
        Ok(report)
    }

    /// Only the frames scrubbed (type and frames, what the fingerprint reads); the
    /// messages stay as they are.
    pub fn scrub_frames(&self, scrubber: &Anonymizer) -> ErrorReport {
        ErrorReport {
            kind: scrubber.scrub_text(&self.kind),
            message: String::new(),
            frames: scrub_frames(scrubber, &self.frames),
            causes: Vec::new(),
            handled: self.handled,
            platform: self.platform.clone(),
        }
    }

    /// The report as it may leave the machine: messages scrubbed, file names without their
    /// directories (then scrubbed too), function names kept (they are code, but a scrubbed
    /// copy replaces one that carries a path or an address), frames and causes bounded.
    pub fn scrub(&self, scrubber: &Anonymizer) -> ErrorReport {
        let frames = |frames: &[Frame]| scrub_frames(scrubber, frames);
        ErrorReport {
            kind: scrubber.scrub_text(&self.kind),
            message: scrubber.scrub_text(&self.message),
            frames: frames(&self.frames),
            causes: self
                .causes
                .iter()
                .take(MAX_CAUSES)
                .map(|c| Exception {
                    kind: scrubber.scrub_text(&c.kind),
                    message: scrubber.scrub_text(&c.message),
                    frames: frames(&c.frames),
                })
                .collect(),
            handled: self.handled,
            platform: self.platform.clone(),
        }
    }

    /// An unkeyed hash of the type and the innermost frames' function and file name
    /// (the host's own frames when there are any), without lines or messages: the same
    /// crash groups together across installs and versions. 16 hex characters.
    pub fn fingerprint(&self) -> String {
        let own: Vec<&Frame> = self.frames.iter().filter(|f| f.in_app).collect();
        let chosen: Vec<&Frame> = if own.is_empty() {
            self.frames.iter().collect()
        } else {
            own
        };
        let mut h = Sha256::new();
        h.update(self.kind.as_bytes());
        for f in chosen.iter().rev().take(FINGERPRINT_FRAMES) {
            h.update(b"\n");
            h.update(f.function.as_bytes());
            h.update(b"\x1f");
            h.update(file_name(&f.file).as_bytes());
        }
        let digest = h.finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The `$exception` event (call on a scrubbed report): `$exception_list` holds the
    /// exception then its causes, PostHog's shape; `suppressed` counts the reports of this
    /// process that the rate limits held back since the last one sent.
    pub fn to_event(&self, suppressed: u64) -> Event {
        let platform = if self.platform.is_empty() {
            "custom"
        } else {
            &self.platform
        };
        let entry = |kind: &str, message: &str, frames: &[Frame], handled: bool| {
            let frames: Vec<Value> = frames
                .iter()
                .map(|f| {
                    json!({"platform": platform, "function": f.function, "filename": f.file,
                           "lineno": f.line, "colno": f.column, "in_app": f.in_app})
                })
                .collect();
            json!({"type": kind, "value": message,
                   "mechanism": {"handled": handled, "synthetic": false, "type": "generic"},
                   "stacktrace": {"type": "raw", "frames": frames}})
        };
        let mut list = vec![entry(&self.kind, &self.message, &self.frames, self.handled)];
        for c in &self.causes {
            list.push(entry(&c.kind, &c.message, &c.frames, true));
        }
        // Already scrubbed: sent as they are.
        Event::new(EXCEPTION_EVENT)
            .safe("$exception_list", Value::Array(list))
            .safe("$exception_fingerprint", self.fingerprint())
            .safe(
                "$exception_level",
                if self.handled { "error" } else { "fatal" },
            )
            .safe("$exception_handled", self.handled)
            .exact("$exception_suppressed", suppressed)
    }
}

/// The innermost [`MAX_FRAMES`] frames, function names scrubbed, file names reduced to
/// their last component and scrubbed.
fn scrub_frames(scrubber: &Anonymizer, frames: &[Frame]) -> Vec<Frame> {
    let skip = frames.len().saturating_sub(MAX_FRAMES);
    frames[skip..]
        .iter()
        .map(|f| Frame {
            function: scrubber.scrub_text(&f.function),
            file: scrubber.scrub_text(file_name(&f.file)),
            line: f.line,
            column: f.column,
            in_app: f.in_app,
        })
        .collect()
}

fn handled_by_default() -> bool {
    true
}

/// The last component of a path in either separator style.
pub fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_key_is_refused_not_silently_dropped() {
        // `mesage` would otherwise lose the message without a word.
        let bad = serde_json::from_str::<ErrorReport>(r#"{"type": "E", "mesage": "x"}"#);
        assert!(bad.unwrap_err().to_string().contains("mesage"));
        let frame = r#"{"type": "E", "frames": [{"function": "f", "lineno": 1}]}"#;
        assert!(serde_json::from_str::<ErrorReport>(frame).is_err());
        let ok = r#"{"type": "E", "message": "x", "handled": false, "platform": "go"}"#;
        assert!(serde_json::from_str::<ErrorReport>(ok).is_ok());
    }

    #[test]
    fn the_fingerprint_ignores_lines_messages_and_directories() {
        let a = ErrorReport::new("KeyError", "'alice'")
            .frame(Frame::new("main", "/srv/a/app.py", 3).in_app(true))
            .frame(Frame::new("lookup", "/srv/a/db.py", 10).in_app(true));
        let b = ErrorReport::new("KeyError", "'bob'")
            .frame(Frame::new("main", "C:\\b\\app.py", 7).in_app(true))
            .frame(Frame::new("lookup", "/opt/db.py", 99).in_app(true));
        assert_eq!(a.fingerprint(), b.fingerprint());
        let c = ErrorReport::new("ValueError", "'alice'").frame(Frame::new("lookup", "db.py", 10));
        assert_ne!(a.fingerprint(), c.fingerprint());
        // Library frames do not change it when the host's own frames are there.
        let d = a.clone().frame(Frame::new("get", "dict.py", 1));
        assert_eq!(a.fingerprint(), d.fingerprint());
    }

    #[test]
    fn the_event_has_posthogs_shape() {
        let r = ErrorReport::new("panic", "boom")
            .frame(Frame::new("app::run", "main.rs", 10).column(5).in_app(true))
            .cause("io::Error", "refused")
            .handled(false)
            .platform("rust");
        let e = r.to_event(3);
        assert_eq!(e.name, EXCEPTION_EVENT);
        let list = e.properties["$exception_list"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["type"], "panic");
        assert_eq!(list[0]["mechanism"]["handled"], false);
        assert_eq!(list[0]["stacktrace"]["frames"][0]["colno"], 5);
        assert_eq!(list[1]["value"], "refused");
        assert_eq!(e.properties["$exception_level"], "fatal");
        assert_eq!(e.properties["$exception_suppressed"], 3);
    }

    #[test]
    fn bad_json_is_a_clear_error() {
        assert!(ErrorReport::from_json("{").unwrap_err().contains("invalid"));
        assert!(ErrorReport::from_json(r#"{"type": " "}"#)
            .unwrap_err()
            .contains("empty"));
        let r = ErrorReport::from_json(r#"{"type": "E", "frames": [{"function": "f"}]}"#).unwrap();
        assert_eq!(r.frames[0].file, "");
    }
}
