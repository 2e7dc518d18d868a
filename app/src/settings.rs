//! The server's settings (version, download policy, preview sizes), read once per tab and
//! shared through context rather than fetched by each page.

use leptos::prelude::*;
use loupe_protocol::Settings;

use crate::api::{self, ApiResult};

#[derive(Clone, Copy)]
pub struct ServerSettings(pub LocalResource<ApiResult<Settings>>);

impl ServerSettings {
    pub fn provide() {
        provide_context(ServerSettings(LocalResource::new(api::settings)));
    }

    pub fn get() -> ServerSettings {
        expect_context::<ServerSettings>()
    }

    /// The settings once read; `None` while loading or when the server could not be asked.
    pub fn read(self) -> Option<Settings> {
        self.0.get().and_then(Result::ok)
    }

    /// Whether an administrator turned downloads off (not known yet counts as on: the server
    /// refuses them anyway when they are off).
    pub fn downloads_disabled(self) -> bool {
        self.read()
            .is_some_and(|settings| settings.downloads_disabled)
    }

    /// How much output and how many rows a view fetches at a time, as the server says.
    pub fn preview(self) -> (u64, u64) {
        self.read().map_or((64 * 1024, 100), |settings| {
            (
                u64::from(settings.preview_bytes),
                u64::from(settings.preview_rows),
            )
        })
    }
}
