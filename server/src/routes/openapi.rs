//! `GET /api/openapi.json`: the API's description, generated from the endpoint table so it can
//! never leave a route out, with every operation's query parameters, request body and answer
//! as JSON Schemas derived from the `protocol` types (schemars reads their serde attributes, so
//! the schemas say what goes on the wire).

use axum::Json;
use loupe_protocol::ErrorBody;
use schemars::{SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use crate::identity::auth::SESSION_COOKIE;

use super::{
    Endpoint,
    describe::{Answer, Body},
    endpoints,
};

pub async fn get_openapi() -> Json<Value> {
    Json(document(&endpoints()))
}

fn document(endpoints: &[Endpoint]) -> Value {
    // OpenAPI 3.1 schemas are JSON Schema 2020-12; named types go under components/schemas.
    let mut generator = SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.definitions_path = "/components/schemas".into();
            settings.meta_schema = None;
        })
        .into_generator();
    let error = generator.subschema_for::<ErrorBody>().to_value();
    let mut paths = Map::new();
    for endpoint in endpoints {
        let mut operation = operation(endpoint, &mut generator, &error);
        if let Answer::Json(201, _) = endpoint.doc.answer {
            operation["responses"]["201"]["links"] = links_from(endpoint.path, endpoints);
        }
        let operations = paths
            .entry(endpoint.path)
            .or_insert_with(|| Value::Object(Map::new()));
        operations[endpoint.method.as_str().to_ascii_lowercase()] = operation;
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
            "schemas": generator.take_definitions(true),
            "securitySchemes": {
                "token": { "type": "http", "scheme": "bearer", "description": "An API token (`loupe token create`, or the Tokens page)" },
                "login": { "type": "apiKey", "in": "cookie", "name": SESSION_COOKIE, "description": "The browser's login" },
            },
        },
        "security": [{ "token": [] }, { "login": [] }],
    })
}

fn operation(endpoint: &Endpoint, generator: &mut SchemaGenerator, error: &Value) -> Value {
    let mut parameters: Vec<Value> = path_parameters(endpoint.path)
        .map(|name| {
            // Event numbers and positions in a result are integers; every other id is text.
            let schema = match name {
                "seq" | "row" | "column" => json!({ "type": "integer", "minimum": 0 }),
                _ => json!({ "type": "string" }),
            };
            json!({ "name": name, "in": "path", "required": true, "schema": schema })
        })
        .collect();
    if let Some(query) = endpoint.doc.query {
        parameters.extend(query_parameters(&query(generator).to_value()));
    }
    let mut operation = json!({
        "summary": endpoint.summary,
        "operationId": format!("{} {}", endpoint.method, endpoint.path),
        "parameters": parameters,
        "responses": responses(endpoint.doc.answer, generator),
    });
    if endpoint.doc.public {
        operation["security"] = json!([]);
    }
    operation["responses"]["default"] = json!({
        "description": "Failure: a machine code, a message for people, and the field at fault",
        "content": { "application/json": { "schema": error } },
    });
    match endpoint.doc.body {
        Some(Body::Json(schema)) => {
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": schema(generator).to_value() } },
            });
        }
        Some(Body::Bytes(media_type)) => {
            operation["requestBody"] = json!({
                "required": true,
                "content": { media_type: { "schema": { "type": "string", "contentMediaType": media_type } } },
            });
        }
        None => {}
    }
    operation
}

fn responses(answer: Answer, generator: &mut SchemaGenerator) -> Value {
    match answer {
        Answer::Unsaid => json!({}),
        Answer::Json(status, schema) => json!({
            status.to_string(): {
                "description": "Success",
                "content": { "application/json": { "schema": schema(generator).to_value() } },
            },
        }),
        Answer::Empty => json!({ "204": { "description": "Done; no body" } }),
        Answer::Content(media_types) => json!({
            "200": { "description": "The whole body", "content": text_content(media_types) },
        }),
        Answer::Ranges(media_types) => json!({
            "200": { "description": "The whole body", "content": text_content(media_types) },
            "206": { "description": "The range asked for", "content": text_content(media_types) },
        }),
        Answer::Upgrade => {
            json!({ "101": { "description": "Switching to the WebSocket protocol" } })
        }
    }
}

fn text_content(media_types: &[&str]) -> Map<String, Value> {
    media_types
        .iter()
        .map(|media_type| {
            (
                (*media_type).to_owned(),
                json!({ "schema": { "type": "string" } }),
            )
        })
        .collect()
}

/// A query struct's properties as OpenAPI query parameters. An absent parameter is how a
/// query says "none", so `null` is not among a parameter's values.
fn query_parameters(schema: &Value) -> Vec<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = without_null(property.clone());
            let description = property
                .as_object_mut()
                .and_then(|property| property.remove("description"));
            let mut parameter = json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": property,
            });
            if let Some(description) = description {
                parameter["description"] = description;
            }
            parameter
        })
        .collect()
}

/// `schema` without its `null` alternative (`type: [T, "null"]` or `anyOf: [.., {type: null}]`).
fn without_null(mut schema: Value) -> Value {
    if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|kind| kind != "null");
        if types.len() == 1 {
            schema["type"] = types[0].clone();
        }
    }
    if let Some(choices) = schema.get("anyOf").and_then(Value::as_array) {
        let kept: Vec<Value> = choices
            .iter()
            .filter(|choice| choice["type"] != "null")
            .cloned()
            .collect();
        if let [only] = kept.as_slice()
            && let Some(object) = schema.as_object_mut()
        {
            object.remove("anyOf");
            if let Some(fields) = only.as_object() {
                for (key, value) in fields {
                    object.insert(key.clone(), value.clone());
                }
            }
        } else {
            schema["anyOf"] = Value::Array(kept);
        }
    }
    schema
}

/// Links from what a `POST` to `path` creates to every operation on `path/{id}…` that needs no
/// other parameter: the created object's `id` fills it. Clients and tools such as Schemathesis
/// follow them from a created object to what can be done with it.
fn links_from(path: &str, endpoints: &[Endpoint]) -> Value {
    let prefix = format!("{path}/{{id}}");
    let links: Map<String, Value> = endpoints
        .iter()
        .filter(|target| {
            (target.path == prefix || target.path.starts_with(&format!("{prefix}/")))
                && path_parameters(target.path).eq(["id"])
        })
        .map(|target| {
            let id = format!("{} {}", target.method, target.path);
            // Link names follow the component-name rule: letters, digits, `.`, `-`, `_`.
            let name: String = id
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let link = json!({ "operationId": id, "parameters": { "id": "$response.body#/id" } });
            (name, link)
        })
        .collect();
    Value::Object(links)
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
    fn describes_every_endpoint_with_its_answer() {
        let all = endpoints();
        let doc = document(&all);
        for endpoint in &all {
            let method = endpoint.method.as_str().to_ascii_lowercase();
            let operation = &doc["paths"][endpoint.path][&method];
            assert_eq!(
                operation["summary"], endpoint.summary,
                "{} {} is missing from the OpenAPI document",
                endpoint.method, endpoint.path
            );
            assert!(
                !matches!(endpoint.doc.answer, Answer::Unsaid),
                "{} {} does not say what it answers",
                endpoint.method,
                endpoint.path
            );
        }
    }

    #[test]
    fn operations_carry_schemas_for_queries_bodies_and_answers() {
        let doc = document(&endpoints());
        let list = &doc["paths"]["/api/sessions"]["get"];
        let names: Vec<&str> = list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|parameter| parameter["name"].as_str())
            .collect();
        assert!(
            names.contains(&"status") && names.contains(&"cursor"),
            "{names:?}"
        );
        assert_eq!(
            list["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/SessionPage"
        );
        let create = &doc["paths"]["/api/users"]["post"];
        assert_eq!(
            create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/NewUser"
        );
        assert!(create["responses"]["201"].is_object());
        // What a created session leads to.
        let run = &doc["paths"]["/api/sessions"]["post"]["responses"]["201"]["links"];
        assert_eq!(
            run["GET__api_sessions__id__events"]["operationId"],
            "GET /api/sessions/{id}/events"
        );
        assert!(
            run.get("GET__api_sessions__id__events__seq__output")
                .is_none()
        );
        // Public operations say so; the rest need the token or the login.
        assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([]));
        assert!(list.get("security").is_none());
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["ErrorBody"]["required"], json!(["code", "message"]));
        assert!(schemas["Session"]["properties"]["status"].is_object());
        // Every reference resolves.
        let text = doc.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                schemas[name].is_object(),
                "{name} is referenced but not defined"
            );
        }
    }

    #[test]
    fn query_parameters_never_take_null() {
        let parameters = query_parameters(&json!({
            "type": "object",
            "properties": {
                "limit": { "type": ["integer", "null"], "description": "1 to 200" },
                "status": { "anyOf": [{ "$ref": "#/components/schemas/SessionStatus" }, { "type": "null" }] },
            },
        }));
        assert_eq!(
            parameters,
            [
                json!({ "name": "limit", "in": "query", "required": false, "schema": { "type": "integer" }, "description": "1 to 200" }),
                json!({ "name": "status", "in": "query", "required": false, "schema": { "$ref": "#/components/schemas/SessionStatus" } }),
            ]
        );
    }
}
