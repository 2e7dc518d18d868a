//! The HTTP layer's state: what every handler can reach, cloned per request (everything inside
//! is shared). Domains never take it; they take the parts they use.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::{
    config::Config, gateway::Gateway, identity::throttle::LoginThrottle, live::Hub,
    reviews::Reviews, sessions::recorder::Recorder, sessions::window_budget::WindowBudget,
    store::Store, wire::tls::WireTls,
};

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub throttle: Arc<LoginThrottle>,
    pub recorder: Recorder,
    pub gateway: Gateway,
    pub hub: Hub,
    /// The review domain (the same store, hub and gateway).
    pub reviews: Reviews,
    /// Bounds window reads while downloads are disabled.
    pub window_budget: Arc<WindowBudget>,
    /// The wire listeners' TLS, when a listener is on.
    pub wire_tls: Option<Arc<WireTls>>,
    /// The SSH listener's host key fingerprint, when it is on.
    pub ssh_host_key: Option<String>,
}

impl FromRef<AppState> for Store {
    fn from_ref(state: &AppState) -> Store {
        state.store.clone()
    }
}

impl FromRef<AppState> for Arc<Config> {
    fn from_ref(state: &AppState) -> Arc<Config> {
        state.config.clone()
    }
}
