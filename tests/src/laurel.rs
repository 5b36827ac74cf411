//! `laurel serve` as a real process on a free port, and an HTTP client for it.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{laurel_bin, wait_until};

/// A running `laurel serve`, killed on drop.
pub struct Laurel {
    /// `serve`, or `gateway`.
    command: &'static str,
    child: Option<Child>,
    port: u16,
    data_dir: PathBuf,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    client: Client,
}

/// An HTTP client of one Laurel address; usable while the process restarts.
#[derive(Clone)]
pub struct Client {
    port: u16,
    agent: ureq::Agent,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Response headers, lowercase names.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Null` when empty or not JSON).
    pub json: Value,
    /// The body's bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Laurel {
    /// Starts `laurel serve` on `data_dir` with `extra` arguments (e.g. `--nats URL`), and
    /// waits until it answers.
    pub fn start(data_dir: &Path, extra: &[String]) -> Self {
        Self::start_with_env(data_dir, extra, &[])
    }

    /// [`Laurel::start`] with environment variables set for the process (and its restarts).
    pub fn start_with_env(data_dir: &Path, extra: &[String], env: &[(String, String)]) -> Self {
        Self::start_command("serve", data_dir, extra, env)
    }

    /// `laurel gateway` (on NATS: `extra` names it) on `data_dir`, waited for like
    /// [`Laurel::start`].
    pub fn start_gateway(data_dir: &Path, extra: &[String]) -> Self {
        Self::start_command("gateway", data_dir, extra, &[])
    }

    fn start_command(
        command: &'static str,
        data_dir: &Path,
        extra: &[String],
        env: &[(String, String)],
    ) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        let port = crate::nats::free_port();
        let mut laurel = Self {
            command,
            child: None,
            port,
            data_dir: data_dir.to_path_buf(),
            extra: extra.to_vec(),
            env: env.to_vec(),
            client: Client {
                port,
                agent: config.into(),
            },
        };
        laurel.spawn();
        laurel
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .expect("log file");
        let child = Command::new(laurel_bin())
            .arg(self.command)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            // LAUREL_TEST_LOG raises the servers' log level when a test needs explaining.
            .env(
                "LAUREL_LOG",
                std::env::var("LAUREL_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("laurel starts");
        self.child = Some(child);
        wait_until("laurel to answer /healthz", Duration::from_secs(60), || {
            self.try_request("GET", "/healthz", None, None)
                .ok()
                .filter(|r| r.status == 200)
        });
    }

    /// A dev token (`--player ID`, `--admin` or `--server`) signed with the data dir's key.
    pub fn token(&self, who: &[&str]) -> String {
        let out = Command::new(laurel_bin())
            .arg("token")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(who)
            .output()
            .expect("laurel token runs");
        assert!(
            out.status.success(),
            "laurel token: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_string()
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process with SIGTERM and waits for it to exit; returns whether it exited 0.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        child.wait().is_ok_and(|s| s.success())
    }

    /// Sends SIGTERM and waits at most `limit` for the process to exit: `Some(exited 0)`, or
    /// `None` when it was still running (it is then killed).
    pub fn terminate_within(&mut self, limit: Duration) -> Option<bool> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status.success());
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits at most `limit` for the process to exit by itself: its status, or `None` when it
    /// is still running.
    pub fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the process again, on the same port and data dir.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// A client of this process's address.
    pub fn client(&self) -> Client {
        self.client.clone()
    }
}

/// A running Laurel is also a client of its own address.
impl std::ops::Deref for Laurel {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Client {
    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends a request; `Err` when the server could not be reached.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Reply, ureq::Error> {
        self.try_request_with(method, path, token, body, &[])
    }

    /// Sends a request with extra headers.
    pub fn try_request_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, ureq::Error> {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("http://127.0.0.1:{}{path}", self.port));
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let (content_type, bytes) = body.unwrap_or(("application/json", Vec::new()));
        let req = req
            .header("content-type", content_type)
            .body(bytes)
            .expect("valid request");
        let mut response = self.agent.run(req)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap_or_default();
        Ok(Reply {
            status,
            headers,
            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
            body,
        })
    }

    /// Opens a Server-Sent Events stream; events are read on a thread as they arrive.
    pub fn sse(&self, path: &str, token: &str) -> SseStream {
        self.sse_after(path, token, None)
    }

    /// [`Laurel::sse`] resuming after the event id `last_event_id` (`Last-Event-ID`).
    pub fn sse_after(&self, path: &str, token: &str, last_event_id: Option<&str>) -> SseStream {
        let mut req = ureq::http::Request::builder()
            .method("GET")
            .uri(format!("http://127.0.0.1:{}{path}", self.port))
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let req = req.body(()).expect("valid request");
        let response = self.agent.run(req).expect("laurel answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = response.into_body().into_reader();
        std::thread::spawn(move || {
            let mut event = String::from("message");
            let mut data = String::new();
            let mut id = None;
            for line in std::io::BufReader::new(reader).lines() {
                let Ok(line) = line else { return };
                if line.is_empty() {
                    let json = serde_json::from_str(&data).unwrap_or(Value::Null);
                    if !data.is_empty() && tx.send((event.clone(), json, id.take())).is_err() {
                        return;
                    }
                    event = "message".into();
                    data.clear();
                } else if let Some(name) = line.strip_prefix("event:") {
                    event = name.trim().to_string();
                } else if let Some(more) = line.strip_prefix("data:") {
                    data.push_str(more.trim_start());
                } else if let Some(value) = line.strip_prefix("id:") {
                    id = Some(value.trim().to_string());
                }
            }
        });
        SseStream {
            status,
            content_type,
            events: rx,
            last_id: std::cell::RefCell::new(None),
        }
    }

    /// Defines the integer stat `name`, summed, with the admin token `admin`; panics
    /// unless it is created.
    pub fn define_sum_stat(&self, admin: &str, name: &str) {
        let r = self.call(
            "PUT",
            &format!("/v1/admin/stats/{name}"),
            Some(admin),
            Some(serde_json::json!({"aggregation": "sum", "kind": "int"})),
        );
        assert_eq!(r.status, 201, "defining {name}: {:?}", r.json);
    }

    /// Sends a JSON request and expects an answer.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let body = body.map(|b| ("application/json", serde_json::to_vec(&b).expect("json")));
        self.try_request(method, path, token, body)
            .expect("laurel answers")
    }
}

/// An open Server-Sent Events stream.
pub struct SseStream {
    /// The response status.
    pub status: u16,
    /// The response's content type.
    pub content_type: String,
    events: std::sync::mpsc::Receiver<(String, Value, Option<String>)>,
    last_id: std::cell::RefCell<Option<String>>,
}

impl SseStream {
    /// The next event (name and JSON data), or `None` when none came within `timeout` or
    /// the stream ended.
    pub fn next(&self, timeout: Duration) -> Option<(String, Value)> {
        let (event, data, id) = self.events.recv_timeout(timeout).ok()?;
        if id.is_some() {
            *self.last_id.borrow_mut() = id;
        }
        Some((event, data))
    }

    /// The id of the last event read that had one (what a client sends back as
    /// `Last-Event-ID`).
    pub fn last_id(&self) -> Option<String> {
        self.last_id.borrow().clone()
    }

    /// Whether the stream ends within `timeout` (events before the end are passed over).
    pub fn ends_within(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(_) => continue,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return true,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    /// The next event named `name`, skipping others; panics after `timeout`.
    pub fn expect(&self, name: &str, timeout: Duration) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.next(left) {
                Some((event, data)) if event == name => return data,
                Some(_) => continue,
                None => panic!("no `{name}` event within {timeout:?}"),
            }
        }
    }
}

impl Drop for Laurel {
    fn drop(&mut self) {
        self.kill9();
    }
}
