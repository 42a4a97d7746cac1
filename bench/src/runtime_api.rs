//! A local stand-in for the Lambda Runtime API, for lambda-bench only: enough HTTP/1.1
//! (keep-alive, Content-Length and chunked bodies) for the Rust `lambda_runtime` client (hyper)
//! and for Python's urllib, and one process run against it with its timings.
//!
//! One [`run_once`]: a fresh listener on 127.0.0.1, the process started with
//! `AWS_LAMBDA_RUNTIME_API` pointing at it; its first `GET .../invocation/next` gets the event
//! (with the `Lambda-Runtime-*` headers a real Runtime API sends), its response or error is
//! acknowledged, and its next poll is held while `VmHWM` is read; then the process is killed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A process to run as a Lambda function.
#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub event: String,
    /// Where its stdout and stderr go (appended).
    pub log: PathBuf,
    /// The cgroup it runs in, for the runs at a memory setting.
    pub sandbox: Option<Arc<crate::sandbox::Sandbox>>,
}

/// How an invocation ended.
pub enum Outcome {
    /// The response was POSTed; its `statusCode` if it is an API Gateway answer.
    Response(Option<u64>),
    /// `POST .../error`, with the errorType.
    Error(String),
    /// `POST /runtime/init/error`, with the errorType.
    InitError(String),
    /// The process ended on its own, with this exit status.
    Exited(String),
    TimedOut(&'static str),
}

/// One run's figures.
pub struct Run {
    pub cold: Option<Duration>,
    pub invoke: Option<Duration>,
    pub hwm_kb: Option<u64>,
    pub outcome: Outcome,
    pub response: Option<String>,
}

impl Run {
    pub fn cold_ms(&self) -> Option<f64> {
        self.cold.map(|d| d.as_secs_f64() * 1000.0)
    }

    /// Only for invocations that answered (a response or a handled error).
    pub fn invoke_ms(&self) -> Option<f64> {
        self.invoke.map(|d| d.as_secs_f64() * 1000.0)
    }
}

/// One request, as the connection thread read it, with the way to answer it.
struct Request {
    /// When its request line was read.
    at: Instant,
    method: String,
    path: String,
    body: Vec<u8>,
    reply: Sender<Vec<u8>>,
}

/// Runs `target` once on `event`.
pub fn run_once(target: &Target, event: &str) -> Run {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Runtime API stand-in");
    let addr = listener.local_addr().expect("local address");
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let acceptor = {
        let stop = stop.clone();
        std::thread::spawn(move || accept(listener, tx, stop))
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&target.log)
        .expect("open the function's log");
    let mut cmd = Command::new(&target.program);
    cmd.args(&target.args)
        .env_clear()
        .envs(target.env.iter().map(|(k, v)| (k, v)))
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    if let Some(sandbox) = &target.sandbox {
        sandbox.enter(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", target.program.display()));
    let run = drive(target, event, &mut child, &rx, started);
    let _ = child.kill();
    let _ = child.wait();
    stop.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect(addr); // wakes the acceptor, which then sees `stop`
    let _ = acceptor.join();
    run
}

fn drive(target: &Target, event: &str, child: &mut Child, rx: &Receiver<Request>, started: Instant) -> Run {
    let mut run = Run {
        cold: None,
        invoke: None,
        hwm_kb: None,
        outcome: Outcome::TimedOut("init"),
        response: None,
    };
    // Init: until the first poll.
    let first = loop {
        match next_request(rx, child, started + INIT_TIMEOUT) {
            Err(outcome) => {
                run.outcome = outcome;
                return run;
            }
            Ok(req) if req.method == "GET" && req.path.ends_with("/invocation/next") => break req,
            Ok(req) if req.path.ends_with("/init/error") => {
                run.outcome = Outcome::InitError(error_type(&req.body));
                let _ = req.reply.send(accepted());
                return run;
            }
            Ok(req) => {
                let _ = req.reply.send(not_found());
            }
        }
    };
    run.cold = Some(first.at - started);
    let handed_over = Instant::now();
    let _ = first.reply.send(invocation(target, event));
    // The invocation: until its response or error.
    run.outcome = Outcome::TimedOut("invocation");
    let mut held = Vec::new();
    loop {
        match next_request(rx, child, handed_over + INVOKE_TIMEOUT) {
            Err(outcome) => {
                run.outcome = outcome;
                return run;
            }
            Ok(req) if req.method == "POST" && req.path.ends_with("/response") => {
                run.invoke = Some(req.at - handed_over);
                let text = String::from_utf8_lossy(&req.body).into_owned();
                let status = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["statusCode"].as_u64());
                run.outcome = Outcome::Response(status);
                run.response = Some(text);
                let _ = req.reply.send(accepted());
                break;
            }
            Ok(req) if req.method == "POST" && req.path.ends_with("/error") => {
                run.invoke = Some(req.at - handed_over);
                run.outcome = Outcome::Error(error_type(&req.body));
                run.response = Some(String::from_utf8_lossy(&req.body).into_owned());
                let _ = req.reply.send(accepted());
                break;
            }
            Ok(req) if req.path.ends_with("/invocation/next") => held.push(req),
            Ok(req) => {
                let _ = req.reply.send(not_found());
            }
        }
    }
    // The next poll says the invocation is over: read the peak then, holding the poll.
    let deadline = Instant::now() + NEXT_TIMEOUT;
    while let Ok(req) = next_request(rx, child, deadline) {
        let done = req.path.ends_with("/invocation/next");
        held.push(req);
        if done {
            break;
        }
    }
    run.hwm_kb = vm_hwm_kb(child.id());
    drop(held);
    run
}

fn next_request(rx: &Receiver<Request>, child: &mut Child, deadline: Instant) -> Result<Request, Outcome> {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(Outcome::TimedOut("waiting for the function"));
        }
        match rx.recv_timeout((deadline - now).min(Duration::from_millis(20))) {
            Ok(req) => return Ok(req),
            Err(RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Outcome::Exited(status.to_string()));
                }
            }
            Err(RecvTimeoutError::Disconnected) => return Err(Outcome::TimedOut("acceptor gone")),
        }
    }
}

fn error_type(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["errorType"].as_str().map(String::from))
        .unwrap_or_else(|| "?".into())
}

/// The answer to the first poll: the event and the headers the real Runtime API sends.
fn invocation(target: &Target, event: &str) -> Vec<u8> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let id = format!("{:08x}-bench-{:x}", now.subsec_nanos(), now.as_secs());
    let deadline_ms = now.as_millis() + 300_000;
    let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{}", target.name);
    let trace = format!(
        "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
        now.as_secs(),
        now.as_nanos(),
        now.subsec_nanos()
    );
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: {id}\r\n\
         lambda-runtime-deadline-ms: {deadline_ms}\r\nlambda-runtime-invoked-function-arn: {arn}\r\n\
         lambda-runtime-trace-id: {trace}\r\ncontent-length: {}\r\n\r\n{event}",
        event.len()
    )
    .into_bytes()
}

fn accepted() -> Vec<u8> {
    let body = r#"{"status":"OK"}"#;
    format!(
        "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn not_found() -> Vec<u8> {
    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec()
}

/// `VmHWM` of a live process, in KiB.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn accept(listener: TcpListener, tx: Sender<Request>, stop: Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let tx = tx.clone();
        std::thread::spawn(move || serve(stream, tx));
    }
}

/// Serves one connection: each request goes to the bench, which answers it (or never does, for
/// a held poll: the connection then ends when the process is killed).
fn serve(stream: TcpStream, tx: Sender<Request>) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let at = Instant::now();
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let (mut length, mut chunked, mut close) = (0usize, false, false);
        loop {
            let mut header = String::new();
            match reader.read_line(&mut header) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
                match k.as_str() {
                    "content-length" => length = v.parse().unwrap_or(0),
                    "transfer-encoding" => chunked = v.contains("chunked"),
                    "connection" => close = v == "close",
                    _ => {}
                }
            }
        }
        let body = if chunked {
            match read_chunked(&mut reader) {
                Some(b) => b,
                None => return,
            }
        } else {
            let mut b = vec![0; length];
            if reader.read_exact(&mut b).is_err() {
                return;
            }
            b
        };
        let (reply, answer) = mpsc::channel();
        if tx
            .send(Request {
                at,
                method,
                path,
                body,
                reply,
            })
            .is_err()
        {
            return;
        }
        let Ok(bytes) = answer.recv() else {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        };
        if writer.write_all(&bytes).is_err() || close {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?.trim(), 16).ok()?;
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        if size == 0 {
            // The last chunk; trailers are not expected. `chunk` held the final CRLF.
            return Some(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

const INIT_TIMEOUT: Duration = super::INIT_TIMEOUT;
const INVOKE_TIMEOUT: Duration = super::INVOKE_TIMEOUT;
const NEXT_TIMEOUT: Duration = super::NEXT_TIMEOUT;
