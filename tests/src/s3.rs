//! A real S3-compatible server (moto's, from PyPI) on a free port, for one test.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::nats::free_port;
use crate::wait_until;

/// A running `moto_server`, killed on drop. It keeps buckets in memory and takes any
/// credentials; requests are signed all the same (SigV4), as against AWS.
pub struct S3Server {
    child: Child,
    port: u16,
}

/// `$MOTO_SERVER`, else `moto_server` on the `PATH`.
fn moto_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "moto_server is not installed: the S3 tests need an S3-compatible server \
                 (pip install 'moto[server]', or set MOTO_SERVER; .ci/run installs it)"
            )
        })
}

/// A client that reads any status as an answer.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

impl S3Server {
    /// Starts a server and waits until it answers.
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new(moto_server_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let server = Self { child, port };
        let agent = agent();
        wait_until("the S3 server to answer", Duration::from_secs(60), || {
            agent.get(&server.url()).call().ok().map(|_| ())
        });
        server
    }

    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment an S3 client (Laurel's `--icons-store s3://...`) needs to use it.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.url()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Creates a bucket (moto takes an unsigned request for it).
    pub fn create_bucket(&self, name: &str) {
        let agent = agent();
        let response = agent
            .put(&format!("{}/{name}", self.url()))
            .send_empty()
            .expect("the S3 server answers");
        assert!(
            response.status().is_success(),
            "creating bucket {name}: {}",
            response.status()
        );
    }

    /// The objects of a bucket, as `(key, size)`, listed straight from the server (moto
    /// lists a bucket for an unsigned request; it refuses unsigned reads of objects).
    pub fn objects(&self, bucket: &str) -> Vec<(String, u64)> {
        let agent = agent();
        let xml = agent
            .get(&format!("{}/{bucket}?list-type=2", self.url()))
            .call()
            .expect("the S3 server answers")
            .body_mut()
            .read_to_string()
            .expect("a listing");
        let tag = |text: &str, name: &str| -> Option<String> {
            let open = format!("<{name}>");
            let start = text.find(&open)? + open.len();
            let end = text[start..].find(&format!("</{name}>"))? + start;
            Some(text[start..end].to_string())
        };
        xml.split("<Contents>")
            .skip(1)
            .filter_map(|item| {
                let key = tag(item, "Key")?;
                let size = tag(item, "Size")?.parse().ok()?;
                Some((key, size))
            })
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
