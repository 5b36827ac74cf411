//! Laurel's end-to-end load generator: black-box through HTTP against a fresh `laurel serve`.
//!
//! ```text
//! cargo run --release -p laurel-benches --bin laurel-load -- [--backend embedded,nats] ...
//! ```
//!
//! For each backend it starts `laurel serve` (the release binary beside this one; on NATS
//! with its own `nats-server` on a free port), defines a small game, and measures:
//! - **throughput**: `--connections` clients post batches of `--batch` events for `--players`
//!   players (uniform or skewed) at `--rate` events/s (0: as fast as they are accepted) for
//!   `--duration` seconds; then waits until the views hold every accepted event. Reports
//!   accepted events/s and end-to-end events/s (accepted events over the time until the views
//!   held them all);
//! - **unlock latency** under a steady background load (`--latency-rates`): every
//!   `--probe-ms` a probe event unlocks an achievement of a probe player, and the time from
//!   sending it to (a) the `unlocked` event on the player's live notification stream and (b)
//!   a `wait_for` read that shows it earned is recorded; percentiles are reported;
//! - peak RSS of the Laurel process and disk used per accepted event;
//! - the baseline, in the same run: raw JetStream publishing of 100-byte messages (4,096 acks
//!   in flight, with message ids) to a fresh `nats-server`, and the ratios to it.
//!
//! With `LAUREL_LOAD_TRACE` set, each probe's times go to stderr (`trace read PROBE_i at
//! <ms into the phase> posted <ms to the 202> read <ms to the wait_for answer>`, and
//! `trace stream PROBE_i <ms>`): where a slow probe lost its time, and when. On NATS each
//! latency phase also times publishes to a side stream on the same broker from a connection of
//! its own (`broker probe`, traced as `trace broker at <ms> ack <ms>`): a slow probe at the
//! time of a slow side publish waited for the broker or the machine, not for Laurel alone. With
//! `LAUREL_NATS_MONITOR_PORT=PORT` the `nats-server` it starts opens its monitoring endpoint
//! there, and each latency phase on NATS also reports the broker's messages per second in and
//! out (from `/varz`), and per accepted event.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use laurel_benches::dir_size;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(about = "Load Laurel through HTTP and report throughput, latency and resources")]
struct Args {
    /// Backends to measure, comma-separated: `embedded`, `nats`.
    #[arg(long, default_value = "embedded,nats", value_delimiter = ',')]
    backend: Vec<String>,
    /// Seconds of load in the throughput phase.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Offered events/s in the throughput phase; 0 sends as fast as Laurel accepts.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Concurrent HTTP connections posting events.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Distinct players.
    #[arg(long, default_value_t = 10_000)]
    players: usize,
    /// Stats the players report (each a summed counter).
    #[arg(long, default_value_t = 1)]
    stats: usize,
    /// How players are picked: `uniform`, or `skewed` (Zipf, exponent 1: the hottest 1% of
    /// players send about half the events).
    #[arg(long, default_value = "uniform")]
    skew: String,
    /// Background rates (events/s) of the latency phases, comma-separated; empty: none.
    #[arg(long, default_value = "10000,50000", value_delimiter = ',')]
    latency_rates: Vec<u64>,
    /// Seconds of each latency phase.
    #[arg(long, default_value_t = 15)]
    latency_duration: u64,
    /// Milliseconds between probe events in a latency phase.
    #[arg(long, default_value_t = 50)]
    probe_ms: u64,
    /// Milliseconds the background load of a latency phase runs before the first probe:
    /// the phase's steady state, not its onset (the step from the previous rate, the load's
    /// fresh connections). 0: probes start with the load, as before 2026-12-07.
    #[arg(long, default_value_t = 1000)]
    probe_delay_ms: u64,
    /// How probes are sent: `independent` (a thread, runtime and HTTP connections of their
    /// own, paced by their own clock, so the load generator's work and its connection pool
    /// neither delay nor bunch them) or `shared` (the load's runtime and connection pool, as
    /// before 2026-12-04).
    #[arg(long, default_value = "independent", value_parser = ["independent", "shared"])]
    probes: String,
    /// Run the latency phases after the throughput flood instead of before it. By default
    /// they run first, on a server that has seen only steady load: a flood of millions of
    /// events leaves half a minute of work behind it (engine state and views written behind,
    /// the stores compacting, the broker's upkeep), and latency measured inside that tail is
    /// latency after a flood, not under a steady load.
    #[arg(long)]
    latency_after_flood: bool,
    /// With `--latency-after-flood`: seconds to wait between the flood and the latency
    /// phases.
    #[arg(long, default_value_t = 10)]
    settle: u64,
    /// Skip the throughput phase (latency phases only).
    #[arg(long)]
    no_throughput: bool,
    /// Skip the latency phases.
    #[arg(long)]
    no_latency: bool,
    /// The `laurel` binary (default: the one beside this program).
    #[arg(long)]
    laurel: Option<PathBuf>,
    /// Extra arguments for `laurel serve`, e.g. `--extra=--partitions=8`.
    #[arg(long, allow_hyphen_values = true)]
    extra: Vec<String>,
}

/// The achievements the probe unlocks, one per probe event (`PROBE_1`, `PROBE_2`, ...).
const PROBES: usize = 500;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let laurel = match &args.laurel {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("laurel"),
    };
    anyhow::ensure!(
        laurel.is_file(),
        "{} is missing: build it with `cargo build --release -p laurel --bin laurel`",
        laurel.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let nats = match monitor_port()? {
        Some(port) => laurel_tests::NatsServer::start_monitored(port),
        None => laurel_tests::NatsServer::start(),
    };
    let raw = rt.block_on(raw_jetstream(&nats.url(), 300_000))?;
    println!("baseline: raw JetStream publishing {raw:>9.0} msgs/s (100 B, 4096 in flight)");
    let mut report = Vec::new();
    for backend in &args.backend {
        let figures = rt.block_on(measure(&args, &laurel, backend, &nats))?;
        report.push((backend.clone(), figures));
    }
    println!();
    println!(
        "players {} ({}), {} stat(s), batches of {}, {} connections",
        args.players, args.skew, args.stats, args.batch, args.connections
    );
    for (backend, f) in &report {
        println!("== {backend}");
        if let Some(t) = &f.throughput {
            println!(
                "  accepted      {:>9.0} events/s ({:.2}x raw JetStream)",
                t.accepted_rate,
                t.accepted_rate / raw
            );
            println!(
                "  end to end    {:>9.0} events/s ({:.2}x raw JetStream); views caught up {:.1} s after the load",
                t.e2e_rate,
                t.e2e_rate / raw,
                t.drain.as_secs_f64()
            );
            println!(
                "  request p50 {:.1} ms, p99 {:.1} ms",
                ms(t.request_p50),
                ms(t.request_p99)
            );
        }
        for l in &f.latency {
            println!(
                "  unlock latency at {:>6} events/s offered ({:.0} accepted): stream p50 {:.1} ms p99 {:.1} ms max {:.1} ms | wait_for read p50 {:.1} ms p99 {:.1} ms max {:.1} ms | {} probes, {} missed",
                l.rate,
                l.accepted_rate,
                ms(l.stream.p50),
                ms(l.stream.p99),
                ms(l.stream.max),
                ms(l.read.p50),
                ms(l.read.p99),
                ms(l.read.max),
                l.probes,
                l.missed
            );
            if let Some((ins, outs)) = l.broker {
                println!(
                    "    broker: {ins:.0} messages/s in, {outs:.0} out ({:.3} in and {:.3} out per accepted event)",
                    ins / l.accepted_rate,
                    outs / l.accepted_rate
                );
            }
            if let Some(p) = &l.broker_probe {
                println!(
                    "    broker probe: JetStream publish and ack p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
                    ms(p.p50),
                    ms(p.p99),
                    ms(p.max)
                );
            }
        }
        println!(
            "  peak RSS {:.0} MiB; disk {:.1} MiB = {:.0} bytes per accepted event, of which the embedded log {:.0}",
            f.peak_rss_kib as f64 / 1024.0,
            f.disk as f64 / (1 << 20) as f64,
            f.disk as f64 / f.events.max(1) as f64,
            f.log_disk as f64 / f.events.max(1) as f64
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn raw_jetstream(url: &str, n: usize) -> anyhow::Result<f64> {
    use async_nats::jetstream::{self, message::PublishMessage, stream};
    let js = jetstream::new(async_nats::connect(url).await?);
    js.create_stream(stream::Config {
        name: "LOAD_RAW".into(),
        subjects: vec!["load.raw.*".into()],
        ..Default::default()
    })
    .await?;
    let payload = bytes::Bytes::from(vec![7u8; 100]);
    let start = Instant::now();
    let mut inflight = std::collections::VecDeque::new();
    for i in 0..n {
        let msg = PublishMessage::build()
            .payload(payload.clone())
            .message_id(format!("raw-{i}"));
        inflight.push_back(js.send_publish(format!("load.raw.{}", i % 16), msg).await?);
        if inflight.len() >= 4096 {
            inflight.pop_front().expect("in flight").await?;
        }
    }
    for ack in inflight {
        ack.await?;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    js.delete_stream("LOAD_RAW").await?;
    Ok(rate)
}

#[derive(Default)]
struct Figures {
    throughput: Option<Throughput>,
    latency: Vec<Latency>,
    peak_rss_kib: u64,
    disk: u64,
    log_disk: u64,
    events: u64,
}

struct Throughput {
    accepted_rate: f64,
    e2e_rate: f64,
    drain: Duration,
    request_p50: Duration,
    request_p99: Duration,
}

struct Latency {
    rate: u64,
    accepted_rate: f64,
    stream: Percentiles,
    read: Percentiles,
    probes: usize,
    missed: usize,
    /// The broker's messages in and out per second over the phase, when its monitoring
    /// endpoint is on (`LAUREL_NATS_MONITOR_PORT`).
    broker: Option<(f64, f64)>,
    /// On NATS: publish-and-ack times of a side stream on the same broker over the phase.
    broker_probe: Option<Percentiles>,
}

#[derive(Default)]
struct Percentiles {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn percentiles(mut samples: Vec<Duration>) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Percentiles {
        p50: at(0.50),
        p99: at(0.99),
        max: *samples.last().expect("not empty"),
    }
}

/// A `laurel serve` process, killed on drop.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
    laurel: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(
        laurel: &Path,
        backend: &str,
        nats: &laurel_tests::NatsServer,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new(laurel);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--player-events-per-minute", "0"])
            .args(extra)
            .env("LAUREL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("laurel.log"))?);
        if backend == "nats" {
            let prefix = format!("LOAD{port}");
            cmd.args(["--nats", &nats.url(), "--stream-prefix", &prefix]);
        }
        let child = cmd.spawn()?;
        Ok(Self {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
            laurel: laurel.to_path_buf(),
        })
    }

    fn token(&self, who: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.laurel)
            .arg("token")
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(who)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "laurel token: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }
}

/// An HTTP client of one Laurel.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let reply = req.send().await?;
        let status = reply.status().as_u16();
        let bytes = reply.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn put(&self, path: &str, token: &str, body: Value) -> anyhow::Result<()> {
        let (status, reply) = self
            .call(
                reqwest::Method::PUT,
                path,
                token,
                Some(body.to_string().into_bytes()),
            )
            .await?;
        anyhow::ensure!(status < 300, "PUT {path}: {status} {reply}");
        Ok(())
    }

    /// The STATS positions the views hold, summed over partitions.
    async fn applied(&self) -> anyhow::Result<u64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await?
            .text()
            .await?;
        text.lines()
            .find_map(|l| l.strip_prefix("laurel_views_applied_stats_total "))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("/metrics has no laurel_views_applied_stats_total"))
    }
}

/// The furthest STATS position per partition that ingest answers named.
#[derive(Default)]
struct Reached(Mutex<BTreeMap<u32, u64>>);

impl Reached {
    fn add(&self, token: &str) {
        let mut reached = self.0.lock().expect("lock");
        for (p, seq) in token.split(',').filter_map(|part| {
            let (p, seq) = part.split_once(':')?;
            Some((p.parse().ok()?, seq.parse::<u64>().ok()?))
        }) {
            let at = reached.entry(p).or_default();
            *at = (*at).max(seq);
        }
    }

    fn total(&self) -> u64 {
        self.0.lock().expect("lock").values().sum()
    }
}

async fn measure(
    args: &Args,
    laurel: &Path,
    backend: &str,
    nats: &laurel_tests::NatsServer,
) -> anyhow::Result<Figures> {
    let server = Server::start(laurel, backend, nats, &args.extra)?;
    let api = Api {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(args.connections + 8)
            .tcp_nodelay(true)
            .build()?,
        url: server.url.clone(),
    };
    let started = Instant::now();
    while api
        .call(reqwest::Method::GET, "/healthz", "", None)
        .await
        .map(|r| r.0)
        .ok()
        != Some(200)
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "laurel did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admin = server.token(&["--admin"])?;
    let game_server = server.token(&["--server"])?;
    define(&api, &admin, args.stats).await?;

    let mut figures = Figures::default();
    let accepted = Arc::new(AtomicU64::new(0));
    let rates = if args.no_latency {
        &[][..]
    } else {
        &args.latency_rates[..]
    };
    let latency = rates
        .iter()
        .copied()
        .enumerate()
        .map(|(i, rate)| Phase::Latency(i, rate));
    let throughput = (!args.no_throughput).then_some(Phase::Throughput);
    let phases: Vec<Phase> = if args.latency_after_flood {
        throughput.into_iter().chain(latency).collect()
    } else {
        latency.chain(throughput).collect()
    };
    for phase in phases {
        let (phase, rate) = match phase {
            Phase::Latency(phase, rate) => (phase, rate),
            Phase::Throughput => {
                let reached = Arc::new(Reached::default());
                let before = accepted.load(Ordering::Relaxed);
                let load = Load::new(
                    args,
                    args.rate,
                    &api,
                    &game_server,
                    accepted.clone(),
                    reached.clone(),
                );
                let start = Instant::now();
                let latencies = load.run(Duration::from_secs(args.duration)).await?;
                let sent_for = start.elapsed();
                let events = accepted.load(Ordering::Relaxed) - before;
                let target = reached.total();
                while api.applied().await? < target {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let total = start.elapsed();
                let requests = percentiles(latencies);
                figures.throughput = Some(Throughput {
                    accepted_rate: events as f64 / sent_for.as_secs_f64(),
                    e2e_rate: events as f64 / total.as_secs_f64(),
                    drain: total - sent_for,
                    request_p50: requests.p50,
                    request_p99: requests.p99,
                });
                eprintln!("{backend}: throughput phase done");
                if args.latency_after_flood && !rates.is_empty() && args.settle > 0 {
                    tokio::time::sleep(Duration::from_secs(args.settle)).await;
                }
                continue;
            }
        };
        let probe = format!("probe-{phase}");
        let player_token = server.token(&["--player", &probe])?;
        let before = accepted.load(Ordering::Relaxed);
        let load = Load::new(
            args,
            rate,
            &api,
            &game_server,
            accepted.clone(),
            Arc::new(Reached::default()),
        );
        let duration = Duration::from_secs(args.latency_duration);
        let broker_before = broker_messages(backend).await;
        let delay = Duration::from_millis(args.probe_delay_ms);
        let background = tokio::spawn(async move { load.run(duration + delay).await });
        tokio::time::sleep(delay).await;
        let every = Duration::from_millis(args.probe_ms);
        let side = (backend == "nats").then(|| {
            let url = nats.url();
            tokio::task::spawn_blocking(move || broker_probe(&url, duration, every))
        });
        let (stream, read, probes) = if args.probes == "shared" {
            probe_latency(&api, &game_server, &player_token, &probe, duration, every).await?
        } else {
            let (url, game_server) = (api.url.clone(), game_server.clone());
            tokio::task::spawn_blocking(move || {
                // One thread, one runtime and one connection pool for the probes alone.
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let api = Api {
                        http: reqwest::Client::builder().tcp_nodelay(true).build()?,
                        url,
                    };
                    probe_latency(&api, &game_server, &player_token, &probe, duration, every).await
                })
            })
            .await??
        };
        background.await??;
        let broker_probe = match side {
            Some(side) => Some(percentiles(side.await??)),
            None => None,
        };
        let broker = match (broker_before, broker_messages(backend).await) {
            (Some((i0, o0, t0)), Some((i1, o1, t1))) => {
                let secs = (t1 - t0).as_secs_f64();
                Some(((i1 - i0) as f64 / secs, (o1 - o0) as f64 / secs))
            }
            _ => None,
        };
        let events = accepted.load(Ordering::Relaxed) - before;
        let missed = probes - stream.len().min(read.len());
        figures.latency.push(Latency {
            rate,
            accepted_rate: events as f64 / (duration + delay).as_secs_f64(),
            stream: percentiles(stream),
            read: percentiles(read),
            probes,
            missed,
            broker,
            broker_probe,
        });
        eprintln!("{backend}: latency phase at {rate} events/s done");
    }
    figures.events = accepted.load(Ordering::Relaxed);
    figures.peak_rss_kib = server.peak_rss_kib();
    figures.disk = dir_size(&server.dir.path().join("data"));
    figures.log_disk = dir_size(&server.dir.path().join("data/log"));
    Ok(figures)
}

/// Seconds since the Unix epoch, for lining traces up with other processes' logs.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Publish-and-ack times of one small message every `every` to a stream of its own on the
/// broker Laurel uses, from a thread, runtime and connection of their own: when a slow probe
/// coincides with a slow publish here, the broker (or the machine) stalled, not Laurel.
/// Traced as `trace broker at <ms into the phase> ack <ms>`.
fn broker_probe(url: &str, duration: Duration, every: Duration) -> anyhow::Result<Vec<Duration>> {
    use async_nats::jetstream::{self, stream};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let trace = std::env::var_os("LAUREL_LOAD_TRACE").is_some();
    rt.block_on(async {
        let js = jetstream::new(async_nats::connect(url).await?);
        js.get_or_create_stream(stream::Config {
            name: "LOAD_PROBE".into(),
            subjects: vec!["load.probe".into()],
            ..Default::default()
        })
        .await?;
        let mut times = Vec::new();
        let start = Instant::now();
        if trace {
            eprintln!(
                "trace broker probe start at {:.3} (Unix time, s)",
                unix_now()
            );
        }
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while start.elapsed() < duration {
            tick.tick().await;
            let at = Instant::now();
            js.publish("load.probe", bytes::Bytes::from_static(b"probe"))
                .await?
                .await?;
            let took = at.elapsed();
            if trace {
                eprintln!("trace broker at {:.1} ack {:.1}", ms(at - start), ms(took));
            }
            times.push(took);
        }
        js.delete_stream("LOAD_PROBE").await?;
        Ok(times)
    })
}

/// The port `LAUREL_NATS_MONITOR_PORT` names for the broker's monitoring endpoint, if set.
fn monitor_port() -> anyhow::Result<Option<u16>> {
    match std::env::var("LAUREL_NATS_MONITOR_PORT") {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(port) => Ok(Some(port.parse().map_err(|_| {
            anyhow::anyhow!("LAUREL_NATS_MONITOR_PORT={port:?} is not a port number")
        })?)),
        Err(e) => anyhow::bail!("LAUREL_NATS_MONITOR_PORT: {e}"),
    }
}

/// The broker's message counters (in, out) and when they were read, from its monitoring
/// endpoint (see [`monitor_port`]); `None` on the embedded log or without the endpoint. A
/// set endpoint that cannot be read is said on stderr, so a report without the broker's
/// figures is not mistaken for one that has them.
async fn broker_messages(backend: &str) -> Option<(u64, u64, Instant)> {
    if backend != "nats" {
        return None;
    }
    let port = monitor_port().ok()??;
    let read = async {
        let body = reqwest::get(format!("http://127.0.0.1:{port}/varz"))
            .await?
            .error_for_status()?
            .text()
            .await?;
        let varz: Value = serde_json::from_str(&body)?;
        let count = |field: &str| {
            varz[field]
                .as_u64()
                .ok_or_else(|| anyhow::anyhow!("/varz has no {field}"))
        };
        anyhow::Ok((count("in_msgs")?, count("out_msgs")?, Instant::now()))
    };
    match read.await {
        Ok(counters) => Some(counters),
        Err(e) => {
            eprintln!("broker counters unreadable on port {port}: {e}");
            None
        }
    }
}

/// One phase of a run against one backend.
enum Phase {
    /// As many events as Laurel accepts (or `--rate`), for `--duration`.
    Throughput,
    /// The probes' unlock latency under a background load: phase number, events/s.
    Latency(usize, u64),
}

async fn define(api: &Api, admin: &str, stats: usize) -> anyhow::Result<()> {
    for s in 0..stats {
        api.put(
            &format!("/v1/admin/stats/kills{s}"),
            admin,
            json!({"aggregation": "sum", "kind": "int", "client_writable": true}),
        )
        .await?;
        for i in 1..=20 {
            api.put(
                &format!("/v1/admin/achievements/KILLS{s}_{i}"),
                admin,
                json!({"title": format!("Kills {i}"), "points": i,
                       "conditions": [{"stat": format!("kills{s}"), "at_least": i * 50}]}),
            )
            .await?;
        }
    }
    api.put(
        "/v1/admin/stats/probe",
        admin,
        json!({"aggregation": "sum", "kind": "int", "client_writable": true}),
    )
    .await?;
    for i in 1..=PROBES {
        api.put(
            &format!("/v1/admin/achievements/PROBE_{i}"),
            admin,
            json!({"title": format!("Probe {i}"), "points": 1,
                   "conditions": [{"stat": "probe", "at_least": i}]}),
        )
        .await?;
    }
    Ok(())
}

/// Clients posting stat events at a rate (or as fast as they can).
struct Load {
    api: Api,
    token: String,
    picker: Picker,
    stats: usize,
    connections: usize,
    batch: usize,
    rate: u64,
    accepted: Arc<AtomicU64>,
    reached: Arc<Reached>,
}

impl Load {
    fn new(
        args: &Args,
        rate: u64,
        api: &Api,
        token: &str,
        accepted: Arc<AtomicU64>,
        reached: Arc<Reached>,
    ) -> Self {
        Self {
            api: api.clone(),
            token: token.to_string(),
            picker: Picker::new(args.players, args.skew == "skewed"),
            stats: args.stats.max(1),
            connections: args.connections,
            batch: args.batch,
            rate,
            accepted,
            reached,
        }
    }

    /// The body of request `k`: a batch of events for players picked at random.
    fn body(&self, k: u64) -> Vec<u8> {
        let mut rng = SmallRng::seed_from_u64(k ^ self.rate.rotate_left(32));
        let mut body = String::with_capacity(self.batch * 56 + 16);
        body.push_str(r#"{"events":["#);
        for i in 0..self.batch {
            if i > 0 {
                body.push(',');
            }
            let player = self.picker.pick(&mut rng);
            let stat = rng.random_range(0..self.stats);
            body.push_str(&format!(
                r#"{{"player_id":"p{player}","stat":"kills{stat}","value":1}}"#
            ));
        }
        body.push_str("]}");
        body.into_bytes()
    }

    /// Posts for `duration`; returns each request's latency.
    async fn run(self, duration: Duration) -> anyhow::Result<Vec<Duration>> {
        let start = tokio::time::Instant::now();
        let end = start + duration;
        let next = Arc::new(AtomicU64::new(0));
        let interval =
            (self.rate > 0).then(|| Duration::from_secs_f64(self.batch as f64 / self.rate as f64));
        let this = Arc::new(self);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..this.connections {
            let (this, next) = (this.clone(), next.clone());
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if let Some(every) = interval {
                        let due = start + every * k as u32;
                        if due >= end {
                            break;
                        }
                        tokio::time::sleep_until(due).await;
                    } else if tokio::time::Instant::now() >= end {
                        break;
                    }
                    let body = this.body(k);
                    let sent = Instant::now();
                    let (status, reply) = this
                        .api
                        .call(reqwest::Method::POST, "/v1/events", &this.token, Some(body))
                        .await?;
                    latencies.push(sent.elapsed());
                    anyhow::ensure!(status == 202, "POST /v1/events: {status} {reply}");
                    this.accepted
                        .fetch_add(reply["accepted"].as_u64().unwrap_or(0), Ordering::Relaxed);
                    this.reached.add(reply["token"].as_str().unwrap_or(""));
                }
                Ok::<_, anyhow::Error>(latencies)
            });
        }
        let mut all = Vec::new();
        while let Some(done) = tasks.join_next().await {
            all.extend(done??);
        }
        Ok(all)
    }
}

/// Picks player numbers uniformly or by Zipf's law (exponent 1).
struct Picker {
    cdf: Option<Vec<f64>>,
    players: usize,
}

impl Picker {
    fn new(players: usize, skewed: bool) -> Self {
        let cdf = skewed.then(|| {
            let mut acc = 0.0;
            let mut cdf: Vec<f64> = (1..=players)
                .map(|k| {
                    acc += 1.0 / k as f64;
                    acc
                })
                .collect();
            for c in &mut cdf {
                *c /= acc;
            }
            cdf
        });
        Self { cdf, players }
    }

    fn pick(&self, rng: &mut SmallRng) -> usize {
        match &self.cdf {
            None => rng.random_range(0..self.players),
            Some(cdf) => {
                let u: f64 = rng.random();
                cdf.partition_point(|&c| c < u).min(self.players - 1)
            }
        }
    }
}

/// Every `every`, a probe event unlocks the next `PROBE_i` of `player`; returns the times to
/// the `unlocked` notification and to a `wait_for` read showing it, and how many were sent.
async fn probe_latency(
    api: &Api,
    server_token: &str,
    player_token: &str,
    player: &str,
    duration: Duration,
    every: Duration,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>, usize)> {
    let sent: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let stream_times: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut notifications = api
        .http
        .get(format!("{}/v1/players/me/notifications", api.url))
        .bearer_auth(player_token)
        .send()
        .await?;
    anyhow::ensure!(
        notifications.status() == 200,
        "notifications: {}",
        notifications.status()
    );
    let done = Arc::new(AtomicBool::new(false));
    // Each probe's times on stderr, for finding when slow probes happen.
    let trace = std::env::var_os("LAUREL_LOAD_TRACE").is_some();
    let listener = {
        let (sent, stream_times, done) = (sent.clone(), stream_times.clone(), done.clone());
        tokio::spawn(async move {
            let mut buf = String::new();
            while !done.load(Ordering::Relaxed) {
                let chunk =
                    tokio::time::timeout(Duration::from_millis(200), notifications.chunk()).await;
                let Ok(chunk) = chunk else { continue };
                let Ok(Some(chunk)) = chunk else { break };
                let arrived = Instant::now();
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let event: String = buf.drain(..end + 2).collect();
                    if !event.contains("event: unlocked") {
                        continue;
                    }
                    let data = event
                        .lines()
                        .find_map(|l| l.strip_prefix("data: "))
                        .unwrap_or("");
                    let id = serde_json::from_str::<Value>(data)
                        .ok()
                        .and_then(|v| v["achievement"]["id"].as_str().map(String::from));
                    if let Some((id, at)) = id.and_then(|id| {
                        let at = sent.lock().expect("lock").get(&id).copied();
                        at.map(|at| (id, at))
                    }) {
                        if trace {
                            eprintln!(
                                "trace stream {id} {:.1}",
                                (arrived - at).as_secs_f64() * 1e3
                            );
                        }
                        stream_times.lock().expect("lock").push(arrived - at);
                    }
                }
            }
        })
    };
    let read_times: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut readers = tokio::task::JoinSet::new();
    let start = Instant::now();
    if trace {
        eprintln!("trace probes start at {:.3} (Unix time, s)", unix_now());
    }
    let mut probes = 0;
    let mut tick = tokio::time::interval(every);
    // A late tick sends one probe and keeps the pace from there, never a burst.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while start.elapsed() < duration && probes < PROBES {
        tick.tick().await;
        probes += 1;
        let id = format!("PROBE_{probes}");
        let body = json!({"events": [{"player_id": player, "stat": "probe", "value": 1}]});
        let (api, server_token, player_token, sent, read_times) = (
            api.clone(),
            server_token.to_string(),
            player_token.to_string(),
            sent.clone(),
            read_times.clone(),
        );
        readers.spawn(async move {
            let at = Instant::now();
            sent.lock().expect("lock").insert(id.clone(), at);
            let (status, reply) = api
                .call(
                    reqwest::Method::POST,
                    "/v1/events",
                    &server_token,
                    Some(body.to_string().into_bytes()),
                )
                .await?;
            anyhow::ensure!(status == 202, "probe: {status} {reply}");
            let posted = at.elapsed();
            let token = reply["token"].as_str().unwrap_or("").to_string();
            let path = format!("/v1/players/me/achievements/{id}?wait_for={token}");
            let (status, view) = api
                .call(reqwest::Method::GET, &path, &player_token, None)
                .await?;
            anyhow::ensure!(status == 200, "probe read: {status} {view}");
            if view["earned"] == json!(true) {
                if trace {
                    eprintln!(
                        "trace read {id} at {:.1} posted {:.1} read {:.1}",
                        (at - start).as_secs_f64() * 1e3,
                        posted.as_secs_f64() * 1e3,
                        at.elapsed().as_secs_f64() * 1e3
                    );
                }
                read_times.lock().expect("lock").push(at.elapsed());
            }
            Ok(())
        });
    }
    while let Some(done) = readers.join_next().await {
        done??;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    done.store(true, Ordering::Relaxed);
    let _ = listener.await;
    let stream = std::mem::take(&mut *stream_times.lock().expect("lock"));
    let read = std::mem::take(&mut *read_times.lock().expect("lock"));
    Ok((stream, read, probes))
}
