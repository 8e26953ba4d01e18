//! An OpenAI-compatible `/v1/embeddings` client.
//!
//! Works with any server speaking that API (OpenAI, vLLM, llama.cpp's
//! server, Ollama, text-embeddings-inference, LiteLLM...). Requests carry at
//! most [`MAX_BATCH`] inputs; a failed request is retried once when the
//! failure is likely transient (a 5xx status, a refused or broken
//! connection, a timeout), never when the server rejected the request (4xx).
//! Vectors are checked against the configured dimension and re-normalised,
//! since not every server returns unit vectors.

use std::time::Duration;

use reqwest::blocking::Client;
use serde::Deserialize;

use super::{normalize, Embedder};
use crate::error::{Error, Result};

/// Most inputs in one request. OpenAI accepts more, but self-hosted servers
/// often cap a batch lower, and smaller requests bound the work lost to a
/// timeout.
pub const MAX_BATCH: usize = 64;
/// Wait before the one retry of a transient failure.
const RETRY_BACKOFF: Duration = Duration::from_millis(250);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request may take: a CPU-only server embedding 64 long
/// passages can need tens of seconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Characters of an error body quoted in an error message.
const BODY_QUOTE: usize = 300;

/// Embeds texts by calling a remote OpenAI-compatible server.
///
/// Blocking: call it from a blocking thread in async code (as for every
/// [`Embedder`]).
pub struct RemoteEmbedder {
    client: Client,
    endpoint: String,
    model: String,
    model_id: String,
    api_key: Option<String>,
    dim: usize,
}

impl std::fmt::Debug for RemoteEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The API key is deliberately left out: this ends up in logs.
        f.debug_struct("RemoteEmbedder")
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

impl RemoteEmbedder {
    /// A client of the server at `url` (its base, e.g.
    /// `https://api.openai.com`, to which `/v1/embeddings` is appended, or
    /// the full endpoint if it already ends in `/embeddings`), asking for
    /// `model`, whose vectors have `dim` floats. `api_key` is sent as a
    /// bearer token.
    pub fn new(
        url: &str,
        model: &str,
        api_key: Option<String>,
        dim: usize,
    ) -> Result<RemoteEmbedder> {
        let endpoint = endpoint(url)?;
        if model.trim().is_empty() {
            return Err(Error::Embedding(
                "remote embedding model name is empty".into(),
            ));
        }
        if dim == 0 {
            return Err(Error::Embedding(
                "remote embedding dimension must be positive".into(),
            ));
        }
        let client = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::Embedding(format!("cannot build http client: {e}")))?;
        Ok(RemoteEmbedder {
            client,
            endpoint,
            model: model.to_string(),
            model_id: format!("remote:{model}"),
            api_key: api_key.filter(|k| !k.is_empty()),
            dim,
        })
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// One request, retried once on a transient failure.
    fn request(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        match self.try_request(texts) {
            Ok(v) => Ok(v),
            Err(Failure::Transient(_)) => {
                std::thread::sleep(RETRY_BACKOFF);
                self.try_request(texts).map_err(|f| match f {
                    Failure::Transient(m) => Error::Embedding(format!("{m} (after one retry)")),
                    Failure::Permanent(m) => Error::Embedding(m),
                })
            }
            Err(Failure::Permanent(m)) => Err(Error::Embedding(m)),
        }
    }

    fn try_request(&self, texts: &[&str]) -> std::result::Result<Vec<Vec<f32>>, Failure> {
        let body = serde_json::json!({ "model": self.model, "input": texts });
        let mut req = self.client.post(&self.endpoint).json(&body);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().map_err(|e| {
            let m = format!("request to {} failed: {}", self.endpoint, error_chain(&e));
            // A request that never got an answer may succeed a second time;
            // one that could not even be built will not.
            if e.is_connect() || e.is_timeout() || e.is_request() {
                Failure::Transient(m)
            } else {
                Failure::Permanent(m)
            }
        })?;
        let status = resp.status();
        let text = resp.text().map_err(|e| {
            Failure::Transient(format!(
                "reading the answer of {} ({status}) failed: {}",
                self.endpoint,
                error_chain(&e)
            ))
        })?;
        if !status.is_success() {
            let m = format!("{} answered {status}: {}", self.endpoint, quote(&text));
            return Err(if status.is_server_error() {
                Failure::Transient(m)
            } else {
                Failure::Permanent(m)
            });
        }
        self.parse(&text, texts.len()).map_err(Failure::Permanent)
    }

    /// The vectors of an answer to a request of `n` inputs, in input order.
    fn parse(&self, text: &str, n: usize) -> std::result::Result<Vec<Vec<f32>>, String> {
        let answer: Answer = serde_json::from_str(text).map_err(|e| {
            format!(
                "{} sent an answer that is not an embeddings response ({e}): {}",
                self.endpoint,
                quote(text)
            )
        })?;
        if answer.data.len() != n {
            return Err(format!(
                "{} returned {} embeddings for {n} inputs",
                self.endpoint,
                answer.data.len()
            ));
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; n];
        for item in answer.data {
            if item.embedding.len() != self.dim {
                return Err(format!(
                    "{} returned a vector of dimension {}, expected {} for model {}",
                    self.endpoint,
                    item.embedding.len(),
                    self.dim,
                    self.model
                ));
            }
            if item.embedding.iter().any(|x| !x.is_finite()) {
                return Err(format!(
                    "{} returned a vector with non-finite values",
                    self.endpoint
                ));
            }
            let slot = out.get_mut(item.index).ok_or_else(|| {
                format!(
                    "{} returned embedding index {} for {n} inputs",
                    self.endpoint, item.index
                )
            })?;
            if slot.is_some() {
                return Err(format!(
                    "{} returned embedding index {} twice",
                    self.endpoint, item.index
                ));
            }
            let mut v = item.embedding;
            normalize(&mut v);
            *slot = Some(v);
        }
        // n items, all indices distinct and below n: every slot is filled.
        Ok(out.into_iter().flatten().collect())
    }
}

impl Embedder for RemoteEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(MAX_BATCH) {
            out.extend(self.request(chunk)?);
        }
        Ok(out)
    }
}

/// Why a request failed: worth one retry or not.
enum Failure {
    Transient(String),
    Permanent(String),
}

/// The body of a `/v1/embeddings` answer (fields we do not need are
/// ignored).
#[derive(Deserialize)]
struct Answer {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    index: usize,
    embedding: Vec<f32>,
}

/// The endpoint for a configured URL.
fn endpoint(url: &str) -> Result<String> {
    let base = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(base)
        .map_err(|e| Error::Embedding(format!("bad embedding server url {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Embedding(format!(
            "embedding server url {url:?} must be http or https"
        )));
    }
    Ok(if base.ends_with("/embeddings") {
        base.to_string()
    } else if base.ends_with("/v1") {
        // A base that already names the API version (a common way to
        // configure OpenAI clients) must not get a second `/v1`.
        format!("{base}/embeddings")
    } else {
        format!("{base}/v1/embeddings")
    })
}

/// A body shortened for an error message.
fn quote(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return "(empty body)".into();
    }
    match body.char_indices().nth(BODY_QUOTE) {
        Some((cut, _)) => format!("{}...", &body[..cut]),
        None => body.to_string(),
    }
}

/// An error with its causes: reqwest's own message rarely says what
/// actually went wrong ("error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms() {
        assert_eq!(
            endpoint("http://h:8000").unwrap(),
            "http://h:8000/v1/embeddings"
        );
        assert_eq!(
            endpoint("http://h:8000/").unwrap(),
            "http://h:8000/v1/embeddings"
        );
        assert_eq!(endpoint("https://h/v1").unwrap(), "https://h/v1/embeddings");
        assert_eq!(
            endpoint("https://h/openai/embeddings").unwrap(),
            "https://h/openai/embeddings"
        );
        assert!(endpoint("not a url").is_err());
        assert!(endpoint("ftp://h").is_err());
    }

    #[test]
    fn quote_cuts_long_bodies() {
        assert_eq!(quote(""), "(empty body)");
        let long = "é".repeat(1000);
        assert!(quote(&long).ends_with("..."));
        assert!(quote(&long).chars().count() <= BODY_QUOTE + 3);
    }
}
