//! Problem answers for requests too malformed to reach the router.
//!
//! hyper answers a request it cannot parse (a request line or URI with
//! characters that must be percent-encoded, such as `"` or a space; a bad
//! header; an over-long URI or header block) on its own, with an empty 400,
//! 414 or 431 and `connection: close`. [`ProblemOnParseError`] wraps a
//! connection and replaces exactly those automatic answers with
//! problem+json, so every error a client sees has a `code`.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use serde_json::Map;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::error::Problem;
use crate::service::ErrorCode;

/// A connection whose automatic parse-error answers become problem+json.
pub struct ProblemOnParseError<T> {
    inner: T,
    /// A replacement answer and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> ProblemOnParseError<T> {
    pub fn new(inner: T) -> Self {
        ProblemOnParseError {
            inner,
            pending: None,
        }
    }
}

/// The problem+json answer replacing `head`, when `head` is one of hyper's
/// automatic parse-error answers: a whole response head, status 400, 414 or
/// 431, an empty body and no `content-type` (every answer of the router has one).
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    if head.len() > 512 {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let (status_line, headers) = text.split_once("\r\n")?;
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse()
        .ok()?;
    let headers = headers.to_ascii_lowercase();
    let automatic = headers.ends_with("\r\n\r\n")
        && headers.contains("content-length: 0\r\n")
        && !headers.contains("content-type:");
    if !automatic {
        return None;
    }
    let (title, code, detail) = match status {
        400 => (
            "Bad Request",
            ErrorCode::MalformedRequest,
            "the request line or a header is not valid HTTP: characters such as \
             `\"`, `<`, `>`, `\\`, `^`, `` ` ``, `|` or spaces in the path or query \
             must be percent-encoded (curl: use --url-query, or -g with encoded values)",
        ),
        414 => (
            "URI Too Long",
            ErrorCode::UriTooLong,
            "the request URI is longer than the server reads; send large inputs in the body",
        ),
        431 => (
            "Request Header Fields Too Large",
            ErrorCode::HeadersTooLarge,
            "the request headers are larger than the server reads",
        ),
        _ => return None,
    };
    let problem = Problem {
        problem_type: format!("urn:myelin:problem:{}", code.as_str()),
        title: title.into(),
        status,
        detail: detail.into(),
        code: code.as_str().into(),
        extra: Map::new(),
    };
    let body = serde_json::to_vec(&problem).ok()?;
    let mut answer = format!(
        "{status_line}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}

impl<T: AsyncWrite + Unpin> ProblemOnParseError<T> {
    /// Writes what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemOnParseError<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemOnParseError<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(answer) = replacement(buf) {
            self.pending = Some((answer, 0));
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next()) {
            if let Some(answer) = replacement(only) {
                self.pending = Some((answer, 0));
                let _ = self.poll_pending(cx)?;
                return Poll::Ready(Ok(only.len()));
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_automatic_empty_answer_is_replaced() {
        let automatic = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 07 Dec 2026 14:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(replacement(automatic).unwrap()).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(answer.contains("content-type: application/problem+json\r\n"));
        assert!(
            answer.ends_with("\"code\":\"malformed_request\"}"),
            "{answer}"
        );
        let routed = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n";
        assert!(replacement(routed).is_none());
        let other = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        assert!(replacement(other).is_none());
    }
}
