//! Every endpoint in the table, fed bodies and query strings a fuzzer would send: random JSON
//! shaped like the API's own (its field names, nested objects and arrays, extreme numbers,
//! strings with NULs, quotes, path parts and multi-byte characters), truncated JSON and
//! non-JSON. None may answer 5xx, and every error must be the JSON error body. The generator is
//! seeded, so a failure names the seed and the request that reproduce it.

use std::collections::BTreeMap;

use loupe_protocol::{ErrorBody, Role};
use loupe_server::routes::endpoints;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::helpers::{TestApp, TestUser};

/// Requests per endpoint and caller.
const ROUNDS: usize = 12;

/// xorshift64*: small, seeded, good enough to pick shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Field names the API uses, so random objects often reach the validation behind parsing.
const FIELDS: &[&str] = &[
    "username",
    "password",
    "display_name",
    "role",
    "disabled",
    "name",
    "description",
    "kind",
    "type",
    "url",
    "command",
    "argv",
    "env",
    "working_dir",
    "input",
    "timeout_seconds",
    "tags",
    "review",
    "jit_access",
    "command_review",
    "reviewer_groups",
    "approvals",
    "count",
    "max_access_seconds",
    "pending_seconds",
    "connection",
    "connection_kind",
    "labels",
    "started_at",
    "events",
    "text",
    "seq",
    "stream",
    "data",
    "columns",
    "type_name",
    "rows",
    "message",
    "code",
    "status",
    "exit_code",
    "error",
    "users",
    "groups",
    "note",
    "expires_at",
    "expires_in_days",
    "access_seconds",
    "reason",
    "verdict",
];

const STRINGS: &[&str] = &[
    "",
    " ",
    "admin",
    "user",
    "auditor",
    "command",
    "sqlite",
    "postgres",
    "done",
    "running",
    "stdout",
    "database",
    "each_group",
    "fz-sh",
    "\u{0}",
    "'; DROP TABLE users; --",
    "../../etc/passwd",
    "sqlite:///etc/passwd",
    "postgres://x:y@127.0.0.1:1/z",
    "é漢字🙂",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "2026-12-01T00:00:00Z",
    "not-a-date",
    "0192f1a2-7c3e-7d4b-9a1f-3b2c1d0e9f8a",
    "%00%ff",
    "{\"nested\": true}",
];

fn number(rng: &mut Rng) -> Value {
    match rng.below(8) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(i64::MAX),
        3 => json!(i64::MIN),
        4 => json!(u64::MAX),
        5 => json!(1e308),
        6 => json!(0.5),
        _ => json!(rng.below(100_000)),
    }
}

fn string(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => Value::String("x".repeat(rng.below(70_000))),
        _ => Value::String((*rng.pick(STRINGS)).to_owned()),
    }
}

fn value(rng: &mut Rng, depth: usize) -> Value {
    let leaf_only = depth >= 3;
    match rng.below(if leaf_only { 4 } else { 6 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => number(rng),
        3 => string(rng),
        4 => Value::Array((0..rng.below(4)).map(|_| value(rng, depth + 1)).collect()),
        _ => object(rng, depth + 1),
    }
}

fn object(rng: &mut Rng, depth: usize) -> Value {
    let mut map = Map::new();
    for _ in 0..rng.below(6) {
        let key = if rng.below(8) == 0 {
            format!("unknown_{}", rng.below(10))
        } else {
            (*rng.pick(FIELDS)).to_owned()
        };
        map.insert(key, value(rng, depth));
    }
    Value::Object(map)
}

/// A request body: mostly JSON objects, sometimes other JSON, broken JSON or no JSON.
fn body(rng: &mut Rng) -> (String, &'static str) {
    match rng.below(10) {
        0 => (value(rng, 2).to_string(), "application/json"),
        1 => {
            let text = object(rng, 0).to_string();
            let cut = rng.below(text.chars().count().max(1));
            (text.chars().take(cut).collect(), "application/json")
        }
        2 => ("not json at all".to_owned(), "text/plain"),
        _ => (object(rng, 0).to_string(), "application/json"),
    }
}

const QUERIES: &[&str] = &[
    "",
    "?limit=-1",
    "?limit=0",
    "?limit=99999999999999999999",
    "?cursor=garbage",
    "?cursor=MTIzOmFiYw",
    "?from=yesterday",
    "?from=2026-01-01T00:00:00Z&to=2025-01-01T00:00:00Z",
    "?status=done,nonsense",
    "?type=teleport",
    "?offset=18446744073709551615&length=1",
    "?offset=0&length=0",
    "?format=xml",
    "?format=csv&seq=99",
    "?view=everything",
    "?state=pending&view=inbox",
    "?id=zz",
    "?stream=stdin",
    "?after=-5",
    "?unknown=1",
];

#[tokio::test]
async fn no_body_or_query_makes_any_endpoint_fail_on_the_server() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let ids = fixtures(&app, &admin, &alice).await;
    let seed = 0x10be_5eed_u64;
    let mut rng = Rng(seed);
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut failures = Vec::new();

    for endpoint in endpoints() {
        if endpoint.path == "/api/live" || endpoint.path == "/api/auth/logout" {
            continue; // a WebSocket; ending the caller's own login is not a body's doing
        }
        for who in [&admin, &alice] {
            for _ in 0..ROUNDS {
                let path = fill(endpoint.path, &ids, &mut rng);
                let query = *rng.pick(QUERIES);
                let method = Method::from_bytes(endpoint.method.as_str().as_bytes()).unwrap();
                let mut request = app
                    .client
                    .request(method.clone(), app.url(&format!("{path}{query}")))
                    .bearer_auth(&who.token);
                let mut sent = String::new();
                if method != Method::GET && method != Method::DELETE {
                    let (text, content_type) = body(&mut rng);
                    sent = text.chars().take(300).collect();
                    request = request.header("content-type", content_type).body(text);
                }
                let response = request.send().await.expect("the server answers");
                let status = response.status().as_u16();
                *statuses.entry(status).or_default() += 1;
                let text = response.text().await.unwrap_or_default();
                let described = format!("{method} {path}{query} as {} with {sent}", who.username);
                if status >= 500 {
                    failures.push(format!("{status}: {described}: {text}"));
                } else if status >= 400 && serde_json::from_str::<ErrorBody>(&text).is_err() {
                    failures.push(format!(
                        "{status} without the JSON error: {described}: {text}"
                    ));
                }
            }
        }
    }
    let total: usize = statuses.values().sum();
    eprintln!("fuzz (seed {seed:#x}): {total} requests, by status: {statuses:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        app.get("/healthz").await.status().is_success(),
        "the server is unaffected"
    );
}

/// Real ids of each kind, so some requests get past "not found" into validation.
struct Ids {
    session: String,
    connection: String,
    group: String,
    user: String,
    review: String,
    share: String,
    token: String,
}

async fn call(app: &TestApp, method: Method, path: &str, who: &TestUser, body: Value) -> Value {
    let body = (!body.is_null()).then_some(body);
    app.call(method, path, Some(who), body)
        .await
        .json()
        .await
        .unwrap()
}

async fn fixtures(app: &TestApp, admin: &TestUser, alice: &TestUser) -> Ids {
    let connection = call(
        app,
        Method::POST,
        "/api/connections",
        admin,
        json!({ "name": "fz-sh", "kind": "command", "command": { "argv": ["echo"] } }),
    )
    .await;
    let group = call(
        app,
        Method::POST,
        "/api/groups",
        admin,
        json!({ "name": "fz-group" }),
    )
    .await;
    call(
        app,
        Method::POST,
        "/api/connections",
        admin,
        json!({ "name": "fz-held", "kind": "command", "command": { "argv": ["echo"] }, "review": { "command_review": true, "reviewer_groups": ["fz-group"] } }),
    )
    .await;
    let session = call(
        app,
        Method::POST,
        "/api/ingest/sessions",
        alice,
        json!({ "connection": "x", "connection_kind": "ssh", "type": "ssh", "input": "ls" }),
    )
    .await;
    let session_id = session["id"].as_str().unwrap().to_owned();
    call(
        app,
        Method::POST,
        &format!("/api/ingest/sessions/{session_id}/events"),
        alice,
        json!({ "events": [{ "kind": "output", "stream": "stdout", "data": "hello" }, { "kind": "result", "columns": [{ "name": "n", "type_name": "int4" }] }] }),
    )
    .await;
    let shares = call(
        app,
        Method::POST,
        &format!("/api/sessions/{session_id}/shares"),
        alice,
        json!({ "groups": [group["id"]] }),
    )
    .await;
    call(
        app,
        Method::POST,
        "/api/sessions",
        alice,
        json!({ "connection": "fz-held", "input": "held" }),
    )
    .await;
    let reviews = call(
        app,
        Method::GET,
        "/api/reviews?view=mine",
        alice,
        Value::Null,
    )
    .await;
    let token = call(
        app,
        Method::POST,
        "/api/tokens",
        alice,
        json!({ "name": "throwaway" }),
    )
    .await;
    Ids {
        session: session_id,
        connection: connection["id"].as_str().unwrap().to_owned(),
        group: group["id"].as_str().unwrap().to_owned(),
        user: alice.id.clone(),
        review: reviews["items"][0]["id"].as_str().unwrap().to_owned(),
        share: shares[0]["id"].as_str().unwrap().to_owned(),
        token: token["token"]["id"].as_str().unwrap().to_owned(),
    }
}

/// The endpoint's path with its parameters filled: usually a real id of the right kind,
/// sometimes a malformed one.
fn fill(path: &str, ids: &Ids, rng: &mut Rng) -> String {
    let garbage = ["x", "0", "-1", "99999999999999999999", "%2e%2e", "null"];
    let real_id = if path.starts_with("/api/sessions/") || path.starts_with("/api/ingest/") {
        &ids.session
    } else if path.starts_with("/api/connections/") {
        &ids.connection
    } else if path.starts_with("/api/groups/") {
        &ids.group
    } else if path.starts_with("/api/users/") {
        &ids.user
    } else if path.starts_with("/api/reviews/") {
        &ids.review
    } else {
        &ids.token
    };
    let mut filled = path.to_owned();
    let seq = rng.pick(&["1", "2", "3"]).to_string();
    for (parameter, real) in [
        ("{id}", real_id.as_str()),
        ("{seq}", seq.as_str()),
        ("{share}", ids.share.as_str()),
        ("{user_id}", ids.user.as_str()),
    ] {
        let value = if rng.below(4) == 0 {
            rng.pick(&garbage).to_string()
        } else {
            real.to_owned()
        };
        filled = filled.replace(parameter, &value);
    }
    filled
}
