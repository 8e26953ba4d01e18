//! Request guards applied to every route before any handler runs, and the
//! rule that every error answer is a problem document.
//!
//! - Query strings longer than [`MAX_QUERY_BYTES`] get 414: the longest
//!   legitimate one (a search with every parameter and a 1 KiB query,
//!   percent-encoded) is far shorter, and parsing a huge one costs memory
//!   per request.
//! - A query string that is not well-formed (bad `%` escapes, bytes that
//!   are not UTF-8, NUL) gets 400 on every route, read or not.
//! - A path holding an encoded NUL (`%00`) gets 400: no id, slug or name
//!   may contain one, and PostgreSQL refuses NUL in text, which would turn
//!   a bad request into a 500.
//! - A body sent to an endpoint that takes none (`submit`, `retire`,
//!   `DELETE`s, `reindex`, …: every write whose OpenAPI operation has no
//!   request body) gets 400 rather than being ignored: the client meant
//!   something the server would not do, and acting anyway hides the
//!   mistake. An empty JSON value (`null`, `{}`) is let through.
//! - Error answers produced outside our handlers — the router's 405, the
//!   body limit's 413, the timeout's 503, axum's path rejections — carry
//!   plain text or nothing; they are rewritten as problem+json with the
//!   same status and headers, so clients need one error format.

use std::collections::HashSet;
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::problem;

/// Longest accepted query string, in bytes (before decoding).
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// Longest body read to tell an empty JSON value from a real payload.
const EMPTY_BODY_BYTES: usize = 64;

/// Most bytes of a non-problem error body quoted as the problem's detail.
const MAX_DETAIL_BYTES: usize = 1024;

/// The guard middleware (`axum::middleware::from_fn`).
pub async fn guard(req: Request, next: Next) -> Response {
    let uri = req.uri();
    if uri.query().is_some_and(|q| q.len() > MAX_QUERY_BYTES) {
        return problem(
            StatusCode::URI_TOO_LONG,
            format!("the query string is longer than {MAX_QUERY_BYTES} bytes"),
            None,
        );
    }
    // Every route, whether it reads its query string or not, refuses one
    // that is not well-formed (bad escapes, non-UTF-8, NUL).
    if let Some(q) = uri.query() {
        for part in q.split(['&', '=']) {
            if let Err(why) = decode_component(part) {
                return problem(
                    StatusCode::BAD_REQUEST,
                    format!("the query string is {why}"),
                    Some("query".into()),
                );
            }
        }
    }
    if uri.path().contains("%00") {
        return problem(
            StatusCode::BAD_REQUEST,
            "the path contains a NUL character (%00)".into(),
            None,
        );
    }
    let mut req = req;
    if has_body(&req) && !takes_body(req.method(), req.extensions().get::<MatchedPath>()) {
        // Clients that send `null` or `{}` out of habit mean nothing by it.
        match empty_json(req).await {
            Ok(same) => req = same,
            Err(refused) => return refused,
        }
    }
    as_problem(next.run(req).await).await
}

/// Passes on a request whose body is an empty JSON value (`null`, `{}`,
/// blanks), put back as it was; refuses any other body.
async fn empty_json(req: Request) -> Result<Request, Response> {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(String::new(), |m| m.as_str().to_string());
    let refuse = |method: &Method| {
        problem(
            StatusCode::BAD_REQUEST,
            format!("{method} {route} takes no request body"),
            None,
        )
    };
    // A longer announced body is refused unread; a streamed one is read
    // only this far, and not waited for long (this runs outside the
    // request timeout).
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > EMPTY_BODY_BYTES as u64) {
        return Err(refuse(req.method()));
    }
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, EMPTY_BODY_BYTES);
    let Ok(Ok(bytes)) = tokio::time::timeout(std::time::Duration::from_secs(5), read).await else {
        return Err(refuse(&parts.method));
    };
    let text = String::from_utf8_lossy(&bytes);
    if !matches!(text.trim(), "" | "null" | "{}") {
        return Err(refuse(&parts.method));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Whether the request carries a non-empty body.
fn has_body(req: &Request) -> bool {
    let h = req.headers();
    if h.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    h.get(header::CONTENT_LENGTH).is_some_and(|v| {
        v.to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_none_or(|n| n > 0)
    })
}

/// Whether a write route accepts a body: its OpenAPI operation declares
/// one. Reads (and unmatched paths, which get 404) are not checked.
fn takes_body(method: &Method, route: Option<&MatchedPath>) -> bool {
    static WITH_BODY: OnceLock<HashSet<(String, String)>> = OnceLock::new();
    if !matches!(
        *method,
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    ) {
        return true;
    }
    let Some(route) = route else { return true };
    let set = WITH_BODY.get_or_init(|| {
        use utoipa::OpenApi;
        let doc = crate::app::ApiDoc::openapi();
        let mut set = HashSet::new();
        for (path, item) in &doc.paths.paths {
            for (m, op) in [
                ("POST", &item.post),
                ("PUT", &item.put),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
            ] {
                if op.as_ref().is_some_and(|op| op.request_body.is_some()) {
                    set.insert((m.to_string(), path.clone()));
                }
            }
        }
        set
    });
    set.contains(&(method.as_str().to_string(), route.as_str().to_string()))
}

/// Rewrites an error response that is not problem+json as one.
async fn as_problem(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || !is_bare(&res) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // These bodies are short texts ("length limit exceeded", axum's
    // rejection messages) or empty; anything long is cut, not buffered.
    let text = match axum::body::to_bytes(body, MAX_DETAIL_BYTES).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let detail = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase()
    } else {
        text
    };
    let fresh = problem(status, detail, None);
    // Keep what the original said beyond its body (Allow on 405,
    // Retry-After, WWW-Authenticate), with the problem's content type.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    let (fresh_parts, fresh_body) = fresh.into_parts();
    for (name, value) in &fresh_parts.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, Body::new(fresh_body))
}

/// Whether an answer is bare: no body type or plain text (what the
/// framework's and middleware's own refusals carry). Deliberate answers —
/// problem documents, `/readyz`'s JSON status — are left alone.
fn is_bare(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"))
}

/// Whether a request's `Content-Type` is JSON (`application/json` or
/// `application/…+json`, parameters allowed).
pub fn is_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(v) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Whether JSON text holds a NUL character: an escaped `\u0000` (raw
/// control characters are invalid JSON anyway). An escape is a backslash
/// preceded by an even number of backslashes, so `\\u0000` (a backslash
/// followed by the letters `u0000`) is not one.
pub fn json_has_nul(bytes: &[u8]) -> bool {
    let pat = b"\\u0000";
    let mut i = 0;
    while i + pat.len() <= bytes.len() {
        if bytes[i..].starts_with(pat) {
            let run = bytes[..i].iter().rev().take_while(|b| **b == b'\\').count();
            if run % 2 == 0 {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// Decodes one `application/x-www-form-urlencoded` component strictly:
/// `+` is a space, `%XX` a byte; a malformed escape or bytes that are not
/// UTF-8 are errors rather than silently replaced (a lossy decode would
/// search for, or store, text the client never sent).
pub fn decode_component(s: &str) -> Result<String, &'static str> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b.get(i + 1).and_then(|c| hex(*c)),
                    b.get(i + 2).and_then(|c| hex(*c)),
                ) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => return Err("malformed percent-encoding"),
                }
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    let text = String::from_utf8(out).map_err(|_| "not valid UTF-8 once decoded")?;
    if text.contains('\0') {
        return Err("contains a NUL character");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_decode_strictly() {
        assert_eq!(decode_component("a+b%20c%C3%A9").unwrap(), "a b cé");
        assert_eq!(decode_component("").unwrap(), "");
        assert!(decode_component("%").is_err());
        assert!(decode_component("%4").is_err());
        assert!(decode_component("%zz").is_err());
        assert!(decode_component("%ff").is_err());
        assert!(decode_component("a%00b").is_err());
    }

    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not() {
        assert!(json_has_nul(br#"{"a":"x\u0000"}"#));
        assert!(json_has_nul(br#"{"a":"\\\u0000"}"#));
        assert!(!json_has_nul(br#"{"a":"\\u0000"}"#));
        assert!(!json_has_nul(br#"{"a":"u0000"}"#));
    }

    #[test]
    fn json_content_types() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert!(is_json(Some(&h("application/json"))));
        assert!(is_json(Some(&h("Application/JSON; charset=utf-8"))));
        assert!(is_json(Some(&h("application/merge-patch+json"))));
        assert!(!is_json(Some(&h("text/plain"))));
        assert!(!is_json(None));
    }
}
