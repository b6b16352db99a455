//! Sending one notice through one channel: a JSON webhook signed with
//! HMAC-SHA256, a Slack-compatible incoming webhook, or email over SMTP.

use std::time::Duration;

use bytes::Bytes;
use hmac::{KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Channel, Notice};

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an attempt failed, and whether another may succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    /// The HTTP status or SMTP reply code, when there was one.
    pub code: i32,
    /// False when retrying cannot help (a 4xx answer, a bad address).
    pub retry: bool,
}

impl Failure {
    fn retry(message: impl Into<String>, code: i32) -> Self {
        Failure {
            message: message.into(),
            code,
            retry: true,
        }
    }

    fn permanent(message: impl Into<String>, code: i32) -> Self {
        Failure {
            message: message.into(),
            code,
            retry: false,
        }
    }
}

/// The outcome of one attempt: the response code on success.
pub type Sent = Result<i32, Failure>;

/// Reads a secret from its reference: "env:NAME" or "file:/path".
pub fn resolve_secret(reference: &str) -> Result<Vec<u8>, String> {
    if let Some(name) = reference.strip_prefix("env:") {
        return std::env::var(name)
            .map(String::into_bytes)
            .map_err(|_| format!("environment variable {name} is not set"));
    }
    if let Some(path) = reference.strip_prefix("file:") {
        return std::fs::read(path)
            .map(|b| b.trim_ascii().to_vec())
            .map_err(|e| format!("cannot read {path}: {e}"));
    }
    Err(format!(
        "{reference:?} is neither \"env:NAME\" nor \"file:/path\""
    ))
}

/// "sha256=<hex>" of `body` under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What sends notices; one per process, shared by attempts.
#[derive(Clone)]
pub struct Channels {
    http: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Option<Mailbox>,
}

impl Channels {
    /// `smtp_url`: "smtp://host:25", "smtp://host:587?tls=required" or
    /// "smtps://user:password@host:465"; none disables email.
    pub fn new(smtp_url: Option<&str>, smtp_from: &str) -> Result<Channels, String> {
        // ring, named here: with aws-lc-rs also linked (the s3 feature)
        // rustls could not pick a process-wide default.
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| format!("TLS: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(TokioExecutor::new()).build(https);
        let smtp = match smtp_url.filter(|u| !u.is_empty()) {
            None => None,
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| format!("smtp_url: {e}"))?
                    .timeout(Some(ATTEMPT_TIMEOUT))
                    .build(),
            ),
        };
        let from = match smtp {
            Some(_) => Some(
                smtp_from
                    .parse::<Mailbox>()
                    .map_err(|e| format!("smtp_from {smtp_from:?}: {e}"))?,
            ),
            None => None,
        };
        Ok(Channels { http, smtp, from })
    }

    pub fn email_enabled(&self) -> bool {
        self.smtp.is_some()
    }

    pub async fn send(&self, channel: &Channel, notice: &Notice) -> Sent {
        match channel {
            Channel::Webhook { url, secret_ref } => {
                let body = serde_json::to_vec(notice).unwrap_or_default();
                let signature = if secret_ref.is_empty() {
                    None
                } else {
                    let key = resolve_secret(secret_ref).map_err(|e| Failure::retry(e, 0))?;
                    Some(signature(&key, &body))
                };
                self.post(url, body, &notice.event_id, signature).await
            }
            Channel::Slack { url } => {
                let body = serde_json::to_vec(&serde_json::json!({
                    "text": format!("*{}*\n{}", notice.title, notice.text),
                }))
                .unwrap_or_default();
                self.post(url, body, &notice.event_id, None).await
            }
            Channel::Email { to, subject_prefix } => self.email(to, subject_prefix, notice).await,
        }
    }

    async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        event_id: &str,
        signature: Option<String>,
    ) -> Sent {
        let mut request = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "conveyor-metrics")
            .header("X-Conveyor-Event-Id", event_id);
        if let Some(s) = signature {
            request = request.header("X-Conveyor-Signature", s);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::permanent(format!("bad request: {e}"), 0))?;
        let response = tokio::time::timeout(ATTEMPT_TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| Failure::retry("timed out", 0))?
            .map_err(|e| Failure::retry(format!("{e}"), 0))?;
        let status = response.status();
        let code = i32::from(status.as_u16());
        // Read (a bounded part of) the body so the connection can be reused.
        let _ = tokio::time::timeout(ATTEMPT_TIMEOUT, response.into_body().collect()).await;
        if status.is_success() {
            Ok(code)
        } else if status.is_client_error()
            && status != http::StatusCode::REQUEST_TIMEOUT
            && status != http::StatusCode::TOO_MANY_REQUESTS
        {
            Err(Failure::permanent(
                format!("the receiver answered {status}"),
                code,
            ))
        } else {
            Err(Failure::retry(
                format!("the receiver answered {status}"),
                code,
            ))
        }
    }

    async fn email(&self, to: &[String], prefix: &str, notice: &Notice) -> Sent {
        let (Some(smtp), Some(from)) = (&self.smtp, &self.from) else {
            return Err(Failure::permanent("no SMTP server is configured", 0));
        };
        let subject = if prefix.is_empty() {
            notice.title.clone()
        } else {
            format!("{prefix} {}", notice.title)
        };
        let mut message = Message::builder()
            .from(from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for address in to {
            let mailbox = address
                .parse::<Mailbox>()
                .map_err(|e| Failure::permanent(format!("{address:?}: {e}"), 0))?;
            message = message.to(mailbox);
        }
        let body = format!(
            "{}\n\nPipeline: {}\nExecution: {}\nEvent: {} ({})\n",
            notice.text, notice.pipeline, notice.execution, notice.event_type, notice.event_id
        );
        let message = message
            .body(body)
            .map_err(|e| Failure::permanent(format!("{e}"), 0))?;
        match smtp.send(message).await {
            Ok(response) => Ok(i32::from(u16::from(response.code()))),
            Err(e) if e.is_permanent() => Err(Failure::permanent(
                e.to_string(),
                e.status().map_or(0, |c| i32::from(u16::from(c))),
            )),
            Err(e) => Err(Failure::retry(
                e.to_string(),
                e.status().map_or(0, |c| i32::from(u16::from(c))),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2.
    #[test]
    fn signatures_are_hmac_sha256() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn secrets_come_from_the_environment_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(
            resolve_secret(&format!("file:{}", path.display())).unwrap(),
            b"s3cret"
        );
        assert!(resolve_secret("env:CONVEYOR_NO_SUCH_VARIABLE_SET").is_err());
        assert!(resolve_secret("vault:x").is_err());
    }
}
