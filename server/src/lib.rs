//! Loupe's server: the HTTP API and the web client behind one router, over one [`Store`].
//! `main.rs` is a thin shell over [`serve`]; tests call [`serve`] with a listener on port 0.

pub mod audit_trail;
pub mod child_process;
pub mod cli;
pub mod config;
pub mod connections;
mod demo;
pub mod error;
pub mod extract;
pub mod gateway;
pub mod identity;
pub mod live;
pub mod paging;
pub mod request_context;
mod response_policy;
pub mod reviews;
pub mod routes;
pub mod sessions;
pub mod store;
pub mod target_tls;
pub mod telemetry;
pub mod terminal;
mod web;
pub mod wire;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::DefaultBodyLimit, handler::Handler, middleware};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;

use crate::{
    gateway::{Gateway, Limits, sealing::SecretBox},
    live::Hub,
};

pub use crate::{
    config::Config, routes::state::AppState, sessions::recorder::Recorder, store::Store,
};

/// The whole HTTP surface: every endpoint from [`routes::endpoints`], then the web client for
/// anything else.
pub fn build_router(state: AppState) -> Router {
    let api = routes::endpoints()
        .into_iter()
        .map(routes::Endpoint::into_route)
        .fold(Router::new(), |router, (path, handler)| {
            router.route(path, handler)
        });
    api.fallback(web::serve_client.layer(CompressionLayer::new()))
        .layer(DefaultBodyLimit::max(extract::MAX_JSON_BODY))
        .layer(middleware::from_fn(response_policy::apply))
        .layer(middleware::from_fn(request_context::track_request))
        .with_state(state)
}

/// Opens the store, then serves on `listener` until `shutdown` resolves and in-flight requests
/// have finished.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = Store::open(&config.database_url, config.database_max_connections).await?;
    let instance = store.instance().await?;
    tracing::info!(
        instance = %instance.id,
        database = store.kind().name(),
        first_start = instance.first_start,
        "storage ready"
    );
    if let Some(password) =
        identity::ensure_initial_admin(&store, config.admin_password.as_ref()).await?
    {
        // Printed, not logged: it is shown once, to the person who started the server.
        println!(
            "\n  First start: created the administrator `admin` with password\n\n      {password}\n\n  \
             Log in at http://{} and change it (Admin → Users). It is not shown again.\n",
            listener.local_addr()?
        );
    }
    let stopped = gateway::processes::stop_left_behind(&store, &config.node_id()).await?;
    if stopped > 0 {
        tracing::warn!(stopped, node = %config.node_id(), "stopped programs left running by a previous run of this server");
    }
    let interrupted = store
        .interrupt_running(
            &config.node_id(),
            "the server stopped while the session was running",
        )
        .await?;
    if interrupted > 0 {
        tracing::warn!(interrupted, node = %config.node_id(), "marked sessions left running by a previous run as interrupted");
    }
    if !config.static_dir.join("index.html").exists() {
        tracing::warn!(
            static_dir = %config.static_dir.display(),
            "no built web client there; the API works, pages answer 503 (`cargo xtask run` builds it)"
        );
    }
    tokio::spawn(refresh_statistics_hourly(store.clone()));
    let hub = Hub::new(config.live_queue, config.node_id());
    hub.relay_from_other_nodes(
        store.clone(),
        Arc::new(|store, id| Box::pin(reviews::view::read_change(store, id))),
    );
    let recorder = Recorder::start(
        store.clone(),
        config.max_output_bytes,
        config.recorder_queue,
        hub.clone(),
    );
    let secrets = SecretBox::load(
        config.secret_key.as_ref().map(|key| key.expose()),
        &config.data_dir,
    )?;
    let limits = Limits {
        statement_timeout: Duration::from_secs(config.statement_timeout),
        command_timeout: Duration::from_secs(config.command_timeout),
    };
    let gateway = Gateway::new(
        store.clone(),
        recorder.clone(),
        secrets,
        limits,
        config.node_id(),
        gateway::sqlite::protected_paths(config.database_url.expose(), &config.data_dir),
    );
    let sealed = connections::seal_legacy_environments(&gateway)
        .await
        .map_err(|error| anyhow::anyhow!("sealing command environments: {}", error.message()))?;
    if sealed > 0 {
        tracing::info!(
            connections = sealed,
            "sealed command environments stored in plain text"
        );
    }
    if config.demo {
        demo::ensure(&store, &gateway, &config.data_dir).await?;
    }
    let window_budget = Arc::new(sessions::window_budget::WindowBudget::new(
        config.window_read_bytes,
        Duration::from_secs(config.window_read_period_seconds),
    ));
    let reviews = reviews::Reviews {
        store: store.clone(),
        hub: hub.clone(),
        gateway: gateway.clone(),
    };
    // The wire listeners offer TLS: a configured certificate, or one generated once.
    let wire_tls = if config.pg_bind.is_some() || config.mysql_bind.is_some() {
        let tls = wire::tls::WireTls::load(&config)?;
        tracing::info!(fingerprint = %tls.fingerprint, "the wire listeners offer TLS with this certificate (SHA-256)");
        Some(Arc::new(tls))
    } else {
        None
    };
    // The SSH listener's host key: generated once into the data folder.
    let ssh_host_key = match &config.ssh_bind {
        Some(_) => Some(terminal::listener::host_key(&config.data_dir)?),
        None => None,
    };
    let state = AppState {
        wire_tls: wire_tls.clone(),
        ssh_host_key: ssh_host_key
            .as_ref()
            .map(|key| identity::ssh_keys::fingerprint(key.public_key())),
        store: store.clone(),
        reviews,
        window_budget,
        config: Arc::new(config),
        throttle: Arc::default(),
        recorder,
        gateway,
        hub,
    };
    reviews::expire_forever(state.reviews.clone());
    if let Some(tls) = wire_tls {
        let services = wire::Services::new(
            state.reviews.clone(),
            state.recorder.clone(),
            tls,
            &state.config,
        );
        if let Some(address) = &state.config.pg_bind {
            let listener = listen(address, "PostgreSQL").await?;
            tokio::spawn(wire::postgres::PgGateway::new(services.clone()).serve(listener));
        }
        if let Some(address) = &state.config.mysql_bind {
            let listener = listen(address, "MySQL").await?;
            tokio::spawn(wire::mysql::MyGateway::new(services).serve(listener));
        }
    }
    if let (Some(address), Some(key)) = (&state.config.ssh_bind, ssh_host_key) {
        let fingerprint = identity::ssh_keys::fingerprint(key.public_key());
        let listener = listen(address, "SSH").await?;
        tracing::info!(%fingerprint, "the SSH listener's host key (SHA-256)");
        let services = terminal::listener::Services {
            reviews: state.reviews.clone(),
            recorder: state.recorder.clone(),
            public_url: state
                .config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", state.config.bind)),
            recheck: Duration::from_secs(state.config.live_recheck_seconds),
        };
        tokio::spawn(terminal::listener::serve(listener, services, key));
    }
    let app = build_router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    store.close().await;
    Ok(())
}

/// A wire-protocol listener on `address`, for `protocol`'s clients.
async fn listen(address: &str, protocol: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(address).await.map_err(|error| {
        anyhow::anyhow!("listening for {protocol} clients on {address}: {error}")
    })?;
    tracing::info!(address = %listener.local_addr()?, "{protocol} clients may connect");
    Ok(listener)
}

async fn refresh_statistics_hourly(store: Store) {
    let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
    hourly.tick().await;
    loop {
        hourly.tick().await;
        if let Err(error) = store.refresh_statistics().await {
            tracing::warn!(%error, "refreshing the query planner's statistics failed");
        }
    }
}
