//! Sending one delivery: a signed webhook POST or an e-mail over SMTP.
//!
//! Webhooks carry `X-KMT-Signature: sha256=<hex HMAC-SHA256(secret,
//! timestamp + "." + body)>`, `X-KMT-Timestamp` (Unix seconds, so
//! receivers can refuse replays) and `X-KMT-Delivery` (the delivery id,
//! the same on every retry, so receivers can deduplicate). Any 2xx answer
//! is a success; anything else, or no answer within the timeout, fails the
//! attempt.

use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::model::Delivery;

/// The signature header's value for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs the delivery's payload to its target, signed with `secret`.
pub async fn webhook(
    http: &reqwest::Client,
    d: &Delivery,
    secret: &str,
    timestamp: i64,
) -> Result<()> {
    let body = serde_json::to_vec(&d.payload)
        .map_err(|e| Error::Delivery(format!("encoding the payload: {e}")))?;
    let response = http
        .post(&d.target)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-KMT-Signature", signature(secret, timestamp, &body))
        .header("X-KMT-Timestamp", timestamp.to_string())
        .header("X-KMT-Delivery", d.id.to_string())
        .body(body)
        .send()
        .await
        .map_err(|e| Error::Delivery(format!("webhook request failed: {e}")))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(Error::Delivery(format!("webhook answered {status}")))
    }
}

/// An SMTP connection setting: the transport and the sender.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    /// A mailer for `url` (`smtp://host:port` plain, `smtp://…?tls=required`
    /// for STARTTLS, `smtps://…` for TLS; user and password in the URL)
    /// sending as `from`.
    pub fn new(url: &str, from: &str, timeout: Duration) -> Result<Mailer> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| Error::Delivery(format!("bad SMTP URL: {e}")))?
            .timeout(Some(timeout))
            .build();
        let from = from
            .parse()
            .map_err(|e| Error::Delivery(format!("bad sender address {from:?}: {e}")))?;
        Ok(Mailer { transport, from })
    }

    /// Sends the delivery's notification to its target address.
    pub async fn send(&self, d: &Delivery) -> Result<()> {
        let to: Mailbox = d
            .target
            .parse()
            .map_err(|e| Error::Delivery(format!("bad recipient address: {e}")))?;
        let text = d.payload["message"].as_str().unwrap_or("");
        let subject: String = format!("KMT: {text}").chars().take(150).collect();
        let mut body = format!("{text}\n");
        if let Some(step) = d.payload["step"].as_i64() {
            body.push_str(&format!("\nEscalation step: {step}\n"));
        }
        if let Some(a) = d.payload["article_id"].as_i64() {
            body.push_str(&format!("\nArticle: /v1/articles/{a}\n"));
        }
        body.push_str("\nYour notifications: /v1/notifications\n");
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            // The same id on every retry, so mail systems can drop repeats.
            .message_id(Some(format!("<delivery-{}@kmt>", d.id)))
            .body(body)
            .map_err(|e| Error::Delivery(format!("building the message: {e}")))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| Error::Delivery(format!("smtp: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog")
        // with the message split as timestamp "." body is not a standard
        // vector, so check the construction against a direct computation.
        let direct = {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
            mac.update(b"12.{}");
            hex::encode(mac.finalize().into_bytes())
        };
        assert_eq!(signature("k", 12, b"{}"), format!("sha256={direct}"));
    }
}
