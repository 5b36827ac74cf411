//! Prometheus metrics: HTTP requests by route and status, ingest outcomes, the engine's
//! (see [`EngineCollector`]) and the views' positions and write timings, served at `GET /metrics` in OpenMetrics text.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use laurel_engine::shell::EngineMetrics;
use laurel_projections::Views;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::notify::Hub;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// What became of an ingested event.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Appended to STATS.
    Accepted,
    /// Already in STATS (same `event_id` within the window).
    Duplicate,
    /// Refused: invalid or not allowed (the whole batch).
    Refused,
    /// Refused by the per-player rate limit.
    Throttled,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IngestLabels {
    outcome: &'static str,
}

/// The gateway's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    ingest: Family<IngestLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics of a process running this engine (when it runs one), views and hub.
    pub fn new(engine: Option<Arc<EngineMetrics>>, views: Views, hub: Hub) -> Self {
        let mut registry = Registry::with_prefix("laurel");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 14))) as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            durations.clone(),
        );
        let ingest = Family::<IngestLabels, Counter>::default();
        registry.register(
            "ingest_events",
            "Stat events received on POST /v1/events, by outcome",
            ingest.clone(),
        );
        if let Some(engine) = engine {
            registry.register_collector(Box::new(EngineCollector(engine)));
        }
        registry.register(
            "views_flush_seconds",
            "Time to write a partition's staged views to disk (behind the projector)",
            views.flush_timings().clone(),
        );
        registry.register_collector(Box::new(Live { views, hub }));
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                durations,
                ingest,
            }),
        }
    }

    /// Counts `n` ingested events with `outcome`.
    pub fn ingested(&self, outcome: IngestOutcome, n: usize) {
        let outcome = match outcome {
            IngestOutcome::Accepted => "accepted",
            IngestOutcome::Duplicate => "duplicate",
            IngestOutcome::Refused => "refused",
            IngestOutcome::Throttled => "throttled",
        };
        self.inner
            .ingest
            .get_or_create(&IngestLabels { outcome })
            .inc_by(n as u64);
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)
            .expect("writing to a String does not fail");
        out
    }
}

/// Counts and times every request by its route template (not its raw path, so player ids
/// do not explode the label set).
pub(crate) async fn track(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        route: route.clone(),
        status: response.status().as_u16(),
    };
    metrics.inner.requests.get_or_create(&labels).inc();
    metrics
        .inner
        .durations
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Prometheus metrics in OpenMetrics text.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)))]
pub(crate) async fn serve(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        metrics.render(),
    )
}

/// Values read at scrape time from the engine, views and hub.
#[derive(Debug)]
struct Live {
    views: Views,
    hub: Hub,
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    encode(encoder, name, help, &ConstCounter::new(value))
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> std::fmt::Result {
    encode(encoder, name, help, &ConstGauge::new(value))
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let applied: u64 = (0..self.views.partitions())
            .map(|p| self.views.checkpoint(p))
            .sum();
        counter(
            &mut encoder,
            "views_applied_stats",
            "STATS positions the views reflect, summed over partitions",
            applied,
        )?;
        // Each reason is its own series, so an anti-cheat alert can watch one.
        match self.views.refusal_counts() {
            Ok(counts) => {
                let mut family = encoder.encode_descriptor(
                    "engine_refusals",
                    "Stat events and grants the engine refused, by reason (anti-cheat bounds, unknown stats...)",
                    None,
                    prometheus_client::metrics::MetricType::Counter,
                )?;
                for (reason, n) in counts {
                    let labels = [("reason", reason.as_str())];
                    ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                }
            }
            Err(e) => tracing::error!(error = %e, "reading refusal counts for /metrics"),
        }
        gauge(
            &mut encoder,
            "notification_players",
            "Players with a live notification stream",
            self.hub.subscribers() as i64,
        )?;
        Ok(())
    }
}

/// One figure of a partition's (partition, position, lag).
type PartitionFigure = fn(&(u32, u64, u64)) -> u64;

/// A running engine's metrics as OpenMetrics (`laurel_engine_...` under the `laurel`
/// prefix): in `laurel serve`'s `/metrics`, and in the engine role's own.
#[derive(Debug)]
pub struct EngineCollector(pub Arc<EngineMetrics>);

impl EngineCollector {
    /// A registry of the engine's metrics alone, for `laurel engine --metrics-listen`.
    pub fn registry(engine: Arc<EngineMetrics>) -> Registry {
        let mut registry = Registry::with_prefix("laurel");
        registry.register_collector(Box::new(Self(engine)));
        registry
    }
}

fn encode(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> std::fmt::Result {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        use std::sync::atomic::Ordering::Relaxed;
        let m = &self.0;
        let counters = [
            (
                "engine_events",
                "Stat events folded by the engine",
                &m.events,
            ),
            ("engine_batches", "Batches folded by the engine", &m.batches),
            (
                "engine_outputs",
                "Outputs the engine appended to OUTPUT",
                &m.outputs,
            ),
            (
                "engine_partition_rebuilds",
                "Partitions rebuilt from the log because a stored player state was unreadable",
                &m.rebuilds,
            ),
            (
                "engine_cache_hits",
                "Player states a batch found in the engine's memory",
                &m.cache_hits,
            ),
            (
                "engine_cache_misses",
                "Player states a batch read from disk (or started, for a new player)",
                &m.cache_misses,
            ),
        ];
        for (name, help, value) in counters {
            encode(
                &mut encoder,
                name,
                help,
                &ConstCounter::new(value.load(Relaxed)),
            )?;
        }
        let cached = ConstGauge::new(m.cached_players.load(Relaxed) as i64);
        let help = "Player states the engine holds in memory";
        encode(&mut encoder, "engine_cached_players", help, &cached)?;
        let partitions = m.partitions();
        let families: [(&str, &str, PartitionFigure); 2] = [
            (
                "engine_partition_lag",
                "Entries of a STATS partition not folded yet, as of the partition's last batch",
                |p| p.2,
            ),
            (
                "engine_partition_position",
                "The STATS position a partition has folded up to",
                |p| p.1,
            ),
        ];
        for (name, help, value) in families {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for p in &partitions {
                let labels = [("partition", p.0.to_string())];
                ConstGauge::new(value(p) as i64).encode(family.encode_family(&labels)?)?;
            }
        }
        let timings = [
            (
                "engine_batch_seconds",
                "Time to fold a batch and publish its outputs",
                m.fold_timings(),
            ),
            (
                "engine_persist_seconds",
                "Time to write a partition's changed player states to disk (behind the fold)",
                m.persist_timings(),
            ),
            (
                "engine_snapshot_seconds",
                "Time to write and export a partition's state to share it with other engines",
                m.snapshot_timings(),
            ),
        ];
        for (name, help, histogram) in timings {
            encode(&mut encoder, name, help, histogram)?;
        }
        Ok(())
    }
}
