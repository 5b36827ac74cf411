//! A real `nats-server` with JetStream on a free port and a temporary store, for one test.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::wait_until;

/// A running `nats-server`, killed and its store removed on drop.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: TempDir,
    /// The configuration file the server was started with, if any.
    config: Option<PathBuf>,
    /// The port of the server's monitoring endpoint, if it has one.
    monitor: Option<u16>,
}

fn nats_server_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/bin".into()])
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nats-server is not installed: the JetStream tests need it \
                 (Debian: apt-get install nats-server; or see https://nats.io)"
            )
        })
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl NatsServer {
    /// Starts a server and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts a server with its monitoring endpoint (`/varz`, `/connz`, `/jsz`) on
    /// `monitor_port`, for measurements (`laurel-load`).
    pub fn start_monitored(monitor_port: u16) -> Self {
        let mut server = Self::unstarted(None);
        server.monitor = Some(monitor_port);
        server.spawn();
        server
    }

    /// Starts a server with `config` (nats-server configuration syntax, for example an
    /// `authorization` block) besides the port and store flags.
    pub fn start_configured(config: &str) -> Self {
        Self::start_with(Some(config))
    }

    fn start_with(config: Option<&str>) -> Self {
        let mut server = Self::unstarted(config);
        server.spawn();
        server
    }

    fn unstarted(config: Option<&str>) -> Self {
        let store = tempfile::tempdir().expect("temp dir");
        let config = config.map(|text| {
            let path = store.path().join("server.conf");
            std::fs::write(&path, with_jetstream(text, store.path())).expect("config written");
            path
        });
        Self {
            child: None,
            port: free_port(),
            store,
            config,
            monitor: None,
        }
    }

    /// Replaces the configuration and has the running server reload it (SIGHUP), as an
    /// operator's change would: connected clients stay connected.
    pub fn reconfigure(&self, config: &str) {
        let path = self
            .config
            .as_ref()
            .expect("a server started with a config");
        std::fs::write(path, with_jetstream(config, self.store.path())).expect("config written");
        let pid = self.child.as_ref().expect("a running server").id();
        let status = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "signalling nats-server to reload failed");
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.store.path().join("server.log")).expect("log file");
        let mut command = Command::new(nats_server_binary());
        command.args(["-a", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some(port) = self.monitor {
            command.args(["-m", &port.to_string()]);
        }
        match &self.config {
            // JetStream and its store are in the file.
            Some(config) => command.arg("-c").arg(config),
            None => command
                .args(["-js", "-sd"])
                .arg(self.store.path().join("js")),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let port = self.port;
        wait_until(
            "nats-server to accept connections",
            Duration::from_secs(15),
            || TcpStream::connect(("127.0.0.1", port)).ok(),
        );
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Where JetStream keeps its files.
    pub fn store_dir(&self) -> PathBuf {
        self.store.path().join("js")
    }

    /// The client URL over TLS, for a server whose configuration has a `tls` block.
    pub fn tls_url(&self) -> String {
        format!("tls://127.0.0.1:{}", self.port)
    }

    /// The client URL with a user's credentials, for a server whose configuration has users.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        format!("nats://{user}:{password}@127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

/// `config` with JetStream on in the store: a reload of a file without it turns JetStream off,
/// whatever the command line said. A config with a `jetstream` block of its own (a cipher)
/// names the store `$STORE`.
fn with_jetstream(config: &str, store: &std::path::Path) -> String {
    let dir = format!("{:?}", store.join("js").display().to_string());
    if config.contains("jetstream") {
        return config.replace("$STORE", &dir);
    }
    format!("{config}\njetstream {{ store_dir: {dir} }}\n")
}

/// A cluster of `nats-server`s with JetStream on loopback, each on free ports (client and
/// route), routed to one another; each node killed and its store removed on drop.
pub struct NatsCluster {
    /// The nodes, in the order of [`NatsCluster::url`].
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` routed nodes and waits until each accepts connections (JetStream
    /// elects its leaders after that: wait for it with a request that needs them).
    pub fn start(size: usize) -> Self {
        let routes: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let urls = routes
            .iter()
            .map(|p| format!("\"nats://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let nodes = routes
            .iter()
            .enumerate()
            .map(|(i, port)| {
                NatsServer::start_configured(&format!(
                    "server_name: node-{i}\n\
                     cluster {{\n  name: laurel-test\n  listen: \"127.0.0.1:{port}\"\n  routes: [{urls}]\n}}\n"
                ))
            })
            .collect();
        Self { nodes }
    }

    /// The client URLs of every node, comma-separated (as `--nats` takes them).
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
