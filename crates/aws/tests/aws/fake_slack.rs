//! A local HTTP server standing in for Slack (its Web API, an incoming webhook): it keeps each
//! request and answers as a test tells it. Shared by the bot and webhook tests.

use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub authorization: String,
    pub body: Value,
    pub at: Instant,
}

/// An answer: status, extra header lines (each ending `\r\n`), body.
pub type Answer = (u16, &'static str, &'static str);

/// Serves on a free port: `http://127.0.0.1:PORT{path}` (returned), answering with `answers` in
/// turn, then `otherwise`, and keeping each request.
pub async fn serve(path: &str, answers: Vec<Answer>, otherwise: Answer) -> (String, Arc<Mutex<Vec<Got>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Got>>> = Arc::default();
    let keep = got.clone();
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            if let Some(r) = read_request(&mut s).await {
                keep.lock().unwrap().push(r);
            }
            let (status, headers, body) = answers.lock().unwrap().pop_front().unwrap_or(otherwise);
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(answer.as_bytes()).await;
        }
    });
    (url, got)
}

/// Reads the head, then as many body bytes as Content-Length says.
async fn read_request(s: &mut tokio::net::TcpStream) -> Option<Got> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let len: usize = header("content-length").parse().unwrap_or(0);
        if body.len() >= len {
            return Some(Got {
                path: head.split_whitespace().nth(1).unwrap_or_default().to_string(),
                authorization: header("authorization"),
                body: serde_json::from_str(body).unwrap_or(Value::Null),
                at: Instant::now(),
            });
        }
    }
}
