//! Every HTTP endpoint Loupe serves, in one table. The router, the OpenAPI document and the
//! tests that walk every route are all built from [`endpoints`], so a route cannot exist without
//! being described.

mod health;
mod openapi;
mod settings;

use axum::{
    handler::Handler,
    http::Method,
    routing::{MethodFilter, MethodRouter, on},
};

use crate::state::AppState;

/// One method on one path, with what it is for.
pub struct Endpoint {
    pub method: Method,
    /// axum's path syntax, which is also OpenAPI's: `/api/sessions/{id}`.
    pub path: &'static str,
    pub summary: &'static str,
    handler: MethodRouter<AppState>,
}

impl Endpoint {
    fn new<H, T>(method: Method, path: &'static str, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard HTTP method");
        Endpoint {
            method,
            path,
            summary,
            handler: on(filter, handler),
        }
    }

    fn get<H, T>(path: &'static str, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self::new(Method::GET, path, summary, handler)
    }

    pub(crate) fn into_route(self) -> (&'static str, MethodRouter<AppState>) {
        (self.path, self.handler)
    }
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/healthz",
            "Liveness, with a round trip to the database",
            health::check_health,
        ),
        Endpoint::get(
            "/api/settings",
            "What the web app must know about this server: version, download policy, preview sizes",
            settings::get_settings,
        ),
        Endpoint::get(
            "/api/openapi.json",
            "This API's OpenAPI 3.1 description",
            openapi::get_openapi,
        ),
    ]
}
