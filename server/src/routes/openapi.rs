//! `GET /api/openapi.json`: the API's description, generated from the endpoint table so it can
//! never leave a route out.

use axum::Json;
use serde_json::{Map, Value, json};

use super::{Endpoint, endpoints};

pub async fn get_openapi() -> Json<Value> {
    Json(document(&endpoints()))
}

fn document(endpoints: &[Endpoint]) -> Value {
    let mut paths = Map::new();
    for endpoint in endpoints {
        let operations = paths
            .entry(endpoint.path)
            .or_insert_with(|| Value::Object(Map::new()));
        operations[endpoint.method.as_str().to_ascii_lowercase()] = operation(endpoint);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Loupe",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Access gateway and session audit console.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "ErrorBody": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": { "type": "string", "description": "Stable machine code, e.g. bad_request, not_found, downloads_disabled" },
                        "message": { "type": "string", "description": "What went wrong, for people" },
                        "field": { "type": "string", "description": "The request field at fault, if any" },
                        "request_id": { "type": "string", "description": "Quote this when reporting a problem" },
                    },
                },
            },
        },
    })
}

fn operation(endpoint: &Endpoint) -> Value {
    let parameters: Vec<Value> = path_parameters(endpoint.path)
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    json!({
        "summary": endpoint.summary,
        "operationId": format!("{} {}", endpoint.method, endpoint.path),
        "parameters": parameters,
        "responses": {
            "200": { "description": "Success" },
            "default": {
                "description": "Failure",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } },
            },
        },
    })
}

/// The `{name}` segments of an axum path.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_path_parameters() {
        let names: Vec<_> = path_parameters("/api/sessions/{id}/events/{seq}/output").collect();
        assert_eq!(names, ["id", "seq"]);
    }

    #[test]
    fn describes_every_endpoint() {
        let all = endpoints();
        let doc = document(&all);
        for endpoint in &all {
            let method = endpoint.method.as_str().to_ascii_lowercase();
            assert_eq!(
                doc["paths"][endpoint.path][&method]["summary"], endpoint.summary,
                "{} {} is missing from the OpenAPI document",
                endpoint.method, endpoint.path
            );
        }
    }
}
