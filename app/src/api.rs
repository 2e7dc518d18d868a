//! The HTTP client for Loupe's API: typed requests in, typed responses or an [`ApiFailure`] out.

use std::fmt;

use gloo_net::http::{Request, Response};
use loupe_protocol::{ErrorBody, Settings};
use serde::de::DeserializeOwned;

/// Why an API call did not produce what was asked for, worded for the person looking at the page.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiFailure {
    /// The server answered with an error body.
    Server { status: u16, body: ErrorBody },
    /// The server could not be reached, or answered something that is not Loupe's API.
    Network(String),
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiFailure::Server { body, .. } => f.write_str(&body.message),
            ApiFailure::Network(message) => write!(f, "Cannot reach Loupe's server: {message}"),
        }
    }
}

pub async fn settings() -> Result<Settings, ApiFailure> {
    get_json("/api/settings").await
}

async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, ApiFailure> {
    let response = Request::get(url)
        .send()
        .await
        .map_err(|error| ApiFailure::Network(error.to_string()))?;
    read_json(response).await
}

async fn read_json<T: DeserializeOwned>(response: Response) -> Result<T, ApiFailure> {
    if response.ok() {
        return response
            .json()
            .await
            .map_err(|error| ApiFailure::Network(error.to_string()));
    }
    let status = response.status();
    match response.json::<ErrorBody>().await {
        Ok(body) => Err(ApiFailure::Server { status, body }),
        Err(_) => Err(ApiFailure::Network(format!(
            "HTTP {status} {}",
            response.status_text()
        ))),
    }
}
