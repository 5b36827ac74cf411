//! What every handler shares: the application layer's services, and what the HTTP surface
//! adds to them (token checks, live notifications, metrics).

use std::sync::Arc;

use laurel_app::App;
use laurel_runtime::Shutdown;

use crate::auth::AuthConfig;
use crate::metrics::Metrics;
use crate::notify::Hub;

/// The gateway's shared state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The application layer: every operation goes through its services.
    pub app: App,
    /// How tokens are checked.
    pub auth: Arc<AuthConfig>,
    /// Live notifications by player.
    pub hub: Hub,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Given when the server stops (ends live streams).
    pub shutdown: Shutdown,
}

impl axum::extract::FromRef<AppState> for Metrics {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

impl axum::extract::FromRef<AppState> for Arc<AuthConfig> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}
