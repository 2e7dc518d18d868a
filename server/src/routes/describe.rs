//! What the OpenAPI document says of an endpoint beyond its path and summary: its query
//! parameters, its request body and its answer, as the `protocol` types' JSON Schemas. Each
//! endpoint in the table names these next to its handler, so the router, the document and the
//! access matrix stay one table.

use schemars::{JsonSchema, Schema, SchemaGenerator};

/// Makes a type's JSON Schema (a `$ref` for named types, filed under `components/schemas`).
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema `T` has in requests and responses.
pub fn reference<T: JsonSchema>() -> SchemaFn {
    |generator| generator.subschema_for::<T>()
}

/// The schema of a query struct itself (its properties become query parameters).
pub fn inline<T: JsonSchema>() -> SchemaFn {
    |generator| T::json_schema(generator)
}

/// What an endpoint takes.
#[derive(Clone, Copy)]
pub enum Body {
    Json(SchemaFn),
    /// Raw bytes of this media type.
    Bytes(&'static str),
}

/// What an endpoint answers when it succeeds. Failures are always an `ErrorBody`.
#[derive(Clone, Copy)]
pub enum Answer {
    /// Not said yet: a test fails for any endpoint left so.
    Unsaid,
    /// JSON with this status.
    Json(u16, SchemaFn),
    /// No body (204).
    Empty,
    /// A body of one of these media types (200).
    Content(&'static [&'static str]),
    /// A body of one of these media types, or the part a Range asked for (206).
    Ranges(&'static [&'static str]),
    /// 101 Switching Protocols to a WebSocket.
    Upgrade,
}

/// An endpoint's description for the document.
#[derive(Clone, Copy)]
pub struct Doc {
    /// Answers without a login or token.
    pub public: bool,
    pub query: Option<SchemaFn>,
    pub body: Option<Body>,
    pub answer: Answer,
}

impl Default for Doc {
    fn default() -> Self {
        Doc {
            public: false,
            query: None,
            body: None,
            answer: Answer::Unsaid,
        }
    }
}
