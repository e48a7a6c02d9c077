//! The HTTP/1.1 wire format: reading one request, writing one response.
//!
//! Hand-written rather than tiny_http because the collector must stay up on any
//! input: tiny_http 0.12 drains an unread body on drop by allocating a buffer of
//! the *declared* `Content-Length`, so one `Content-Length: 4611686018427387904`
//! header aborts the process, and it has no read timeouts, so a client that stops
//! half-way pins a worker forever. Here every read is bounded (line length,
//! header count, body size) and the caller sets socket timeouts.
//!
//! Only what PostHog senders use is supported: `Content-Length` and chunked
//! bodies, `Expect: 100-continue`, keep-alive. No pipelining tricks, no TLS.

use std::io::{self, BufRead, Read, Write};

use serde::Serialize;

/// Longest request line or header line accepted.
const MAX_LINE: u64 = 8 * 1024;
/// Most header lines accepted in one request.
const MAX_HEADERS: usize = 100;

/// One parsed request with its whole body.
#[derive(Debug)]
pub(crate) struct Request {
    /// `GET`, `POST`, ... as sent (methods are case-sensitive).
    pub method: String,
    /// Path part of the target, still percent-encoded.
    pub path: String,
    /// Query string after `?`, still percent-encoded; empty when absent.
    pub query: String,
    /// Header names lowercased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked but not decompressed.
    pub body: Vec<u8>,
    /// Whether the client is willing to send another request on this connection.
    pub keep_alive: bool,
}

impl Request {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A complete response, written with `Content-Length` (never chunked).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Extra headers, e.g. `Allow` on a 405.
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    /// `status` with `value` serialised as the JSON body.
    pub fn json(status: u16, value: &impl Serialize) -> Response {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
        Response {
            status,
            content_type: "application/json",
            body,
            headers: Vec::new(),
        }
    }

    /// `status` with body `{"error": message}`.
    pub fn error(status: u16, message: impl Into<String>) -> Response {
        Response::json(status, &serde_json::json!({ "error": message.into() }))
    }

    /// `status` with a plain-text body.
    pub fn text(status: u16, text: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: text.as_bytes().to_vec(),
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The client closed, timed out or broke the connection: nothing to answer.
    Closed,
    /// The request is unacceptable: answer this, then close the connection
    /// (where the next request would start is unknown).
    Reject(Response),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Closed
    }
}

fn bad_request(message: impl Into<String>) -> ReadError {
    ReadError::Reject(Response::error(400, message))
}

/// Reads one line (without CRLF) of at most [`MAX_LINE`] bytes.
fn read_line(reader: &mut impl BufRead) -> Result<String, ReadError> {
    let mut buf = Vec::new();
    let n = reader.take(MAX_LINE + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(ReadError::Closed);
    }
    if !buf.ends_with(b"\n") {
        if buf.len() as u64 > MAX_LINE {
            return Err(ReadError::Reject(Response::error(
                431,
                "header line too long",
            )));
        }
        return Err(ReadError::Closed); // EOF in the middle of a line
    }
    buf.pop();
    if buf.ends_with(b"\r") {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| bad_request("request head is not valid UTF-8"))
}

/// Reads one request. `writer` is only used for `100 Continue`.
///
/// A body larger than `max_body` is refused with 413 before any of it is read
/// when its length is declared, and as soon as the limit is crossed when chunked.
pub(crate) fn read_request(
    reader: &mut impl BufRead,
    writer: &mut impl Write,
    max_body: usize,
) -> Result<Request, ReadError> {
    // RFC 9112 2.2: ignore empty lines before the request line.
    let mut line = read_line(reader)?;
    while line.is_empty() {
        line = read_line(reader)?;
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad_request("malformed request line"));
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => {
            return Err(ReadError::Reject(Response::error(
                505,
                "only HTTP/1.0 and HTTP/1.1 are supported",
            )))
        }
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(bad_request("malformed request method"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if !path.starts_with('/') {
        return Err(bad_request("request target must be a path"));
    }

    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(ReadError::Reject(Response::error(431, "too many headers")));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad_request("malformed header line"));
        };
        if name.is_empty() || name.ends_with(' ') || name.starts_with([' ', '\t']) {
            return Err(bad_request("malformed header name"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }

    let mut request = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        keep_alive: false,
        headers,
        body: Vec::new(),
    };
    let connection = request
        .header("connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    request.keep_alive = if http11 {
        !connection.contains("close")
    } else {
        connection.contains("keep-alive")
    };

    let too_large = || {
        ReadError::Reject(Response::error(
            413,
            format!("request body larger than {max_body} bytes"),
        ))
    };
    let chunked = match request.header("transfer-encoding") {
        None => false,
        Some(te) if te.to_ascii_lowercase().trim_end().ends_with("chunked") => true,
        Some(_) => return Err(bad_request("unsupported Transfer-Encoding")),
    };
    let length = if chunked {
        None
    } else {
        let mut lengths = request
            .headers
            .iter()
            .filter(|(n, _)| n == "content-length");
        match (lengths.next(), lengths.next()) {
            (None, _) => Some(0),
            (Some((_, v)), None) => match v.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => return Err(bad_request("invalid Content-Length")),
            },
            (Some(_), Some(_)) => return Err(bad_request("more than one Content-Length")),
        }
    };
    if let Some(n) = length {
        if n > max_body as u64 {
            return Err(too_large());
        }
    }

    let expects_body = chunked || length.is_some_and(|n| n > 0);
    if expects_body
        && request
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        writer.flush()?;
    }

    match length {
        Some(n) => {
            let mut body = Vec::with_capacity(n as usize);
            reader.take(n).read_to_end(&mut body)?;
            if body.len() as u64 != n {
                return Err(ReadError::Closed); // client went away mid-body
            }
            request.body = body;
        }
        None => {
            request.body = read_chunked(reader, max_body).map_err(|e| match e {
                ChunkError::TooLarge => too_large(),
                ChunkError::Read(e) => e,
            })?
        }
    }
    Ok(request)
}

enum ChunkError {
    TooLarge,
    Read(ReadError),
}

impl From<ReadError> for ChunkError {
    fn from(e: ReadError) -> Self {
        ChunkError::Read(e)
    }
}

impl From<io::Error> for ChunkError {
    fn from(e: io::Error) -> Self {
        ChunkError::Read(e.into())
    }
}

fn read_chunked(reader: &mut impl BufRead, max_body: usize) -> Result<Vec<u8>, ChunkError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| ChunkError::Read(bad_request("malformed chunk size")))?;
        if size == 0 {
            // Trailer fields, ignored, up to the final empty line.
            for _ in 0..=MAX_HEADERS {
                if read_line(reader)?.is_empty() {
                    return Ok(body);
                }
            }
            return Err(ChunkError::Read(bad_request("too many trailer lines")));
        }
        if size > max_body - body.len() {
            return Err(ChunkError::TooLarge);
        }
        let before = body.len();
        reader.take(size as u64).read_to_end(&mut body)?;
        if body.len() - before != size {
            return Err(ChunkError::Read(ReadError::Closed));
        }
        if !read_line(reader)?.is_empty() {
            return Err(ChunkError::Read(bad_request("chunk not followed by CRLF")));
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Writes `response` in one `write_all`, so a response is never half-sent
/// because of buffering, and flushes.
pub(crate) fn write_response(
    writer: &mut impl Write,
    response: &Response,
    keep_alive: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    for (name, value) in &response.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&response.body);
    writer.write_all(&bytes)?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &[u8]) -> Result<Request, ReadError> {
        read_request(&mut &raw[..], &mut Vec::new(), 64)
    }

    #[test]
    fn chunked_body_is_joined() {
        let r = read(b"POST /batch/?a=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!((r.path.as_str(), r.query.as_str()), ("/batch/", "a=1"));
        assert_eq!(r.body, b"abcde");
        assert!(r.keep_alive);
    }

    #[test]
    fn declared_and_chunked_oversize_are_413() {
        let declared = read(b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n");
        assert!(matches!(declared, Err(ReadError::Reject(r)) if r.status == 413));
        let chunked =
            read(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n");
        assert!(matches!(chunked, Err(ReadError::Reject(r)) if r.status == 413));
    }

    #[test]
    fn garbage_is_400_and_eof_is_closed() {
        assert!(matches!(read(b"hello\r\n\r\n"), Err(ReadError::Reject(r)) if r.status == 400));
        assert!(matches!(read(b""), Err(ReadError::Closed)));
        assert!(matches!(
            read(b"GET / HTTP/1.1\r\nHost"),
            Err(ReadError::Closed)
        ));
    }
}
