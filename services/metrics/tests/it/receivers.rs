//! Local receivers for notifications: an HTTP server that records what it
//! is sent (and can fail on purpose), and a minimal SMTP server.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One request the HTTP receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Inbox {
    received: Arc<Mutex<Vec<Received>>>,
    /// Answers to give before 200s, in order.
    failures: Arc<Mutex<Vec<StatusCode>>>,
}

pub struct HttpReceiver {
    pub url: String,
    inbox: Inbox,
}

impl HttpReceiver {
    /// Answers each of `failures` in turn, then 200.
    pub async fn start(failures: &[StatusCode]) -> HttpReceiver {
        let inbox = Inbox {
            failures: Arc::new(Mutex::new(failures.iter().rev().copied().collect())),
            ..Inbox::default()
        };
        let app =
            axum::Router::new()
                .route(
                    "/{*path}",
                    post(
                        |State(inbox): State<Inbox>,
                         headers: HeaderMap,
                         body: axum::body::Bytes| async move {
                            inbox.received.lock().unwrap().push(Received {
                                headers,
                                body: body.to_vec(),
                            });
                            inbox
                                .failures
                                .lock()
                                .unwrap()
                                .pop()
                                .unwrap_or(StatusCode::OK)
                        },
                    ),
                )
                .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        HttpReceiver { url, inbox }
    }

    pub fn received(&self) -> Vec<Received> {
        self.inbox.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..400 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the receiver got {} of {n} requests", self.received().len());
    }
}

/// A minimal SMTP server: accepts every message and keeps its DATA.
pub struct SmtpReceiver {
    pub url: String,
    messages: Arc<Mutex<Vec<String>>>,
}

impl SmtpReceiver {
    pub async fn start() -> SmtpReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let messages: Arc<Mutex<Vec<String>>> = Arc::default();
        let inbox = messages.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inbox = inbox.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 test ESMTP\r\n").await;
                    let mut data: Option<String> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(message) = data.as_mut() {
                            if line == "." {
                                inbox.lock().unwrap().push(std::mem::take(message));
                                data = None;
                                let _ = write.write_all(b"250 queued\r\n").await;
                            } else {
                                message.push_str(&line);
                                message.push('\n');
                            }
                            continue;
                        }
                        let verb = line.split_whitespace().next().unwrap_or("").to_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250 test\r\n",
                            "DATA" => {
                                data = Some(String::new());
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                break;
                            }
                            _ => b"250 ok\r\n",
                        };
                        let _ = write.write_all(reply).await;
                    }
                });
            }
        });
        SmtpReceiver { url, messages }
    }

    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..400 {
            let got = self.messages.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the SMTP server got fewer than {n} messages");
    }
}
