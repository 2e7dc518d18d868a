//! Users, logins, tokens, groups and the audit trail, as a client sees them.

use loupe_protocol::{
    ApiToken, AuditEvent, CreatedToken, ErrorBody, ErrorCode, Group, Page, Role, Timestamp, User,
};
use loupe_server::store::NewAuditEvent;
use reqwest::{Method, StatusCode, header};
use serde_json::json;

use crate::helpers::{ADMIN_PASSWORD, TestApp, TestUser};

async fn log_in(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
}

fn session_cookie(response: &reqwest::Response) -> String {
    let set_cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn error_of(response: reqwest::Response) -> ErrorBody {
    response.json().await.unwrap()
}

#[tokio::test]
async fn logs_in_with_a_strict_http_only_cookie_and_out_again() {
    let app = TestApp::spawn().await;

    let response = log_in(&app, "admin", ADMIN_PASSWORD).await;
    assert_eq!(response.status(), 200);
    let set_cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = session_cookie(&response);
    let user: User = response.json().await.unwrap();
    assert_eq!((user.username.as_str(), user.role), ("admin", Role::Admin));

    let me = app
        .client
        .get(app.url("/api/me"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<User>().await.unwrap().id, user.id);

    let logout = app
        .client
        .post(app.url("/api/auth/logout"))
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, &app.address)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let after = app
        .client
        .get(app.url("/api/me"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;

    let unknown = log_in(&app, "nobody", "whatever-password").await;
    let wrong = log_in(&app, "admin", "wrong-password!").await;

    assert_eq!(unknown.status(), 401);
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        error_of(unknown).await.message,
        error_of(wrong).await.message
    );
}

#[tokio::test]
async fn repeated_failures_lock_the_username_for_a_while() {
    let app = TestApp::spawn().await;
    for _ in 0..5 {
        assert_eq!(log_in(&app, "admin", "wrong-password!").await.status(), 401);
    }

    let locked = log_in(&app, "admin", ADMIN_PASSWORD).await;

    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(error_of(locked).await.code, ErrorCode::TooManyRequests);
}

#[tokio::test]
async fn cookie_requests_from_another_site_are_refused() {
    let app = TestApp::spawn().await;
    let cookie = session_cookie(&log_in(&app, "admin", ADMIN_PASSWORD).await);
    let create = |origin: Option<&str>| {
        let mut request = app
            .client
            .post(app.url("/api/groups"))
            .header(header::COOKIE, &cookie)
            .json(&json!({ "name": format!("g-{}", uuid::Uuid::new_v4().simple()) }));
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        request.send()
    };

    assert_eq!(
        create(Some("https://evil.example")).await.unwrap().status(),
        403
    );
    assert_eq!(create(None).await.unwrap().status(), 403);
    assert_eq!(create(Some(&app.address)).await.unwrap().status(), 201);
    // Only the same-origin request created a group.
    let admin = app.admin().await;
    let groups: Vec<Group> = app
        .call(Method::GET, "/api/groups", Some(&admin), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(groups.len(), 1);
}

#[tokio::test]
async fn api_tokens_are_shown_once_work_and_can_be_revoked() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;

    let created: CreatedToken = app
        .call(
            Method::POST,
            "/api/tokens",
            Some(&alice),
            Some(json!({ "name": "laptop" })),
        )
        .await
        .json()
        .await
        .unwrap();
    let bearer = |secret: &str| {
        app.client
            .get(app.url("/api/me"))
            .bearer_auth(secret.to_owned())
            .send()
    };
    assert_eq!(bearer(&created.secret).await.unwrap().status(), 200);

    let listed: Vec<ApiToken> = app
        .call(Method::GET, "/api/tokens", Some(&alice), None)
        .await
        .json()
        .await
        .unwrap();
    let laptop = listed.iter().find(|token| token.name == "laptop").unwrap();
    assert!(laptop.last_used_at.is_some());
    assert!(created.secret.starts_with(&laptop.prefix));
    let as_text = serde_json::to_string(&listed).unwrap();
    assert!(
        !as_text.contains(&created.secret),
        "a listing must never contain a secret"
    );

    let bob = app.user("bob", Role::User).await;
    let path = format!("/api/tokens/{}", created.token.id);
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&bob), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&alice), None)
            .await
            .status(),
        204
    );
    assert_eq!(bearer(&created.secret).await.unwrap().status(), 401);
}

#[tokio::test]
async fn a_disabled_user_can_neither_log_in_nor_use_tokens() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    assert_eq!(log_in(&app, "alice", &alice.password).await.status(), 200);

    let path = format!("/api/users/{}", alice.id);
    let disabled = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(disabled.status(), 200);

    assert_eq!(log_in(&app, "alice", &alice.password).await.status(), 401);
    assert_eq!(
        app.call(Method::GET, "/api/me", Some(&alice), None)
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn only_administrators_manage_users() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user("plain", Role::User).await;
    let auditor = app.user("auditor", Role::Auditor).await;
    let new = || {
        Some(json!({ "username": "carol", "password": "carol-heron-basalt-kite", "role": "user" }))
    };

    assert_eq!(
        app.call(Method::POST, "/api/users", Some(&user), new())
            .await
            .status(),
        403
    );
    assert_eq!(
        app.call(Method::POST, "/api/users", Some(&auditor), new())
            .await
            .status(),
        403
    );
    let created = app
        .call(Method::POST, "/api/users", Some(&admin), new())
        .await;
    assert_eq!(created.status(), 201);
    let carol: User = created.json().await.unwrap();
    assert_eq!(carol.role, Role::User);
    assert_eq!(
        log_in(&app, "Carol", "carol-heron-basalt-kite")
            .await
            .status(),
        200,
        "usernames ignore case"
    );
    let again = app
        .call(Method::POST, "/api/users", Some(&admin), new())
        .await;
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn the_last_administrator_cannot_be_demoted_or_disabled() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let path = format!("/api/users/{}", admin.id);

    let demoted = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({ "role": "user" })),
        )
        .await;
    assert_eq!(demoted.status(), 409);
    let disabled = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(disabled.status(), 409);

    let second = app.user("second-admin", Role::Admin).await;
    let demoted = app
        .call(
            Method::PATCH,
            &path,
            Some(&second),
            Some(json!({ "role": "auditor" })),
        )
        .await;
    assert_eq!(demoted.status(), 200);
}

#[tokio::test]
async fn malformed_bodies_name_the_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let users_before: Vec<User> = app
        .call(Method::GET, "/api/users", Some(&admin), None)
        .await
        .json()
        .await
        .unwrap();

    let cases = [
        (json!({ "password": "long-enough-pw" }), "username"),
        (
            json!({ "username": "dave", "password": "long-enough-pw", "role": "root" }),
            "role",
        ),
        (json!({ "username": "dave", "password": 12 }), "password"),
        (
            json!({ "username": "dave", "password": "long-enough-pw", "colour": "red" }),
            "colour",
        ),
        (
            json!({ "username": "da ve", "password": "long-enough-pw" }),
            "username",
        ),
        (
            json!({ "username": "dave", "password": "short" }),
            "password",
        ),
    ];
    for (body, field) in cases {
        let response = app
            .call(Method::POST, "/api/users", Some(&admin), Some(body.clone()))
            .await;
        assert_eq!(response.status(), 400, "{body}");
        let error = error_of(response).await;
        assert_eq!(error.code, ErrorCode::BadRequest);
        assert_eq!(
            error.field.as_deref(),
            Some(field),
            "{body}: {}",
            error.message
        );
        assert!(error.message.contains(field), "{}", error.message);
    }

    let not_json = app
        .client
        .post(app.url("/api/users"))
        .bearer_auth(&admin.token)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let form = app
        .client
        .post(app.url("/api/users"))
        .bearer_auth(&admin.token)
        .body("username=dave")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = json!({ "username": "dave", "password": "x".repeat(100_000) });
    let too_large = app
        .call(Method::POST, "/api/users", Some(&admin), Some(huge))
        .await;
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_of(too_large).await.field.as_deref(), Some("body"));

    let users_after: Vec<User> = app
        .call(Method::GET, "/api/users", Some(&admin), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users_before, users_after);
}

#[tokio::test]
async fn groups_collect_members_who_see_them_on_their_profile() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;

    let group: Group = app
        .call(
            Method::POST,
            "/api/groups",
            Some(&admin),
            Some(json!({ "name": "DBA", "description": "Database reviewers" })),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(group.name, "dba");
    let member_path = format!("/api/groups/{}/members/{}", group.id, alice.id);
    assert_eq!(
        app.call(Method::PUT, &member_path, Some(&admin), None)
            .await
            .status(),
        204
    );

    let me: User = app
        .call(Method::GET, "/api/me", Some(&alice), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        me.groups
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>(),
        ["dba"]
    );
    let read: Group = app
        .call(
            Method::GET,
            &format!("/api/groups/{}", group.id),
            Some(&alice),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        read.members
            .iter()
            .map(|m| m.username.as_str())
            .collect::<Vec<_>>(),
        ["alice"]
    );

    assert_eq!(
        app.call(Method::DELETE, &member_path, Some(&admin), None)
            .await
            .status(),
        204
    );
    let me: User = app
        .call(Method::GET, "/api/me", Some(&alice), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(me.groups.is_empty());
    let missing_user = format!("/api/groups/{}/members/no-such-user", group.id);
    assert_eq!(
        app.call(Method::PUT, &missing_user, Some(&admin), None)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn the_audit_trail_records_security_events_and_filters_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let auditor = app.user("auditor", Role::Auditor).await;
    log_in(&app, "admin", "wrong-password!").await;
    log_in(&app, "admin", ADMIN_PASSWORD).await;
    let bob = app.user("bob", Role::User).await;
    app.call(
        Method::PATCH,
        &format!("/api/users/{}", bob.id),
        Some(&admin),
        Some(json!({ "role": "auditor" })),
    )
    .await;

    let page: Page<AuditEvent> = app
        .call(Method::GET, "/api/audit", Some(&auditor), None)
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<_> = page
        .items
        .iter()
        .map(|event| event.action.as_str())
        .collect();
    for expected in [
        "login.failed",
        "login.succeeded",
        "user.created",
        "token.created",
        "user.role_changed",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let changed = page
        .items
        .iter()
        .find(|event| event.action == "user.role_changed")
        .unwrap();
    assert_eq!(changed.actor.as_deref(), Some("admin"));
    assert_eq!(changed.target.as_deref(), Some("user:bob"));
    assert_eq!(changed.detail.as_deref(), Some("user → auditor"));
    assert!(
        page.items.windows(2).all(|pair| pair[0].id > pair[1].id),
        "newest first"
    );

    let offered: Vec<String> = app.get_json(&auditor, "/api/audit/actions").await;
    let mut sorted = offered.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(offered, sorted, "each action once, in name order");
    for expected in ["login.failed", "user.role_changed"] {
        assert!(
            offered.iter().any(|action| action == expected),
            "{offered:?}"
        );
    }

    let failed: Page<AuditEvent> = app
        .call(
            Method::GET,
            "/api/audit?action=login.failed",
            Some(&auditor),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(failed.items.len(), 1);
    assert_eq!(failed.items[0].target.as_deref(), Some("user:admin"));

    let first: Page<AuditEvent> = app
        .call(Method::GET, "/api/audit?limit=2", Some(&auditor), None)
        .await
        .json()
        .await
        .unwrap();
    let cursor = first.next_cursor.clone().expect("more than two events");
    let second: Page<AuditEvent> = app
        .call(
            Method::GET,
            &format!("/api/audit?limit=2&cursor={cursor}"),
            Some(&auditor),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(second.items[0].id < first.items[1].id);

    for (query, field) in [
        ("from=yesterday", "from"),
        ("limit=0", "limit"),
        ("colour=red", "colour"),
        ("cursor=abc", "cursor"),
    ] {
        let response = app
            .call(
                Method::GET,
                &format!("/api/audit?{query}"),
                Some(&auditor),
                None,
            )
            .await;
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(
            error_of(response).await.field.as_deref(),
            Some(field),
            "{query}"
        );
    }
    assert_eq!(
        app.call(Method::GET, "/api/audit", Some(&bob), None)
            .await
            .status(),
        200,
        "bob is an auditor now"
    );
    let carol = app.user("carol", Role::User).await;
    assert_eq!(
        app.call(Method::GET, "/api/audit", Some(&carol), None)
            .await
            .status(),
        403
    );
}

async fn export_audit(app: &TestApp, who: &TestUser, query: &str) -> reqwest::Response {
    app.call(
        Method::GET,
        &format!("/api/audit/export?{query}"),
        Some(who),
        None,
    )
    .await
}

#[tokio::test]
async fn the_audit_trail_exports_whole_as_csv_and_jsonl() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let auditor = app.user("auditor", Role::Auditor).await;
    let carol = app.user("carol", Role::User).await;
    // Two whole pages of the export (its last read finds nothing), some without an actor.
    const BULK: usize = 2000;
    for index in 0..BULK {
        app.store
            .record_audit(&NewAuditEvent {
                actor_id: None,
                actor_name: (index % 2 == 0).then(|| "bulk".to_owned()),
                action: "test.bulk",
                target: Some(format!("item:{index}")),
                detail: (index == 7).then(|| "say \"hi\", then\nleave".to_owned()),
                address: None,
            })
            .await
            .unwrap();
    }

    let response = export_audit(&app, &auditor, "format=jsonl&action=test.bulk").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/x-ndjson"
    );
    assert_eq!(
        response.headers()[header::CONTENT_DISPOSITION],
        "attachment; filename=\"loupe-audit.jsonl\""
    );
    let text = response.text().await.unwrap();
    let events: Vec<AuditEvent> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events.len(), BULK, "every event, across export pages");
    assert!(
        events.windows(2).all(|pair| pair[0].id > pair[1].id),
        "newest first"
    );
    let targets: std::collections::BTreeSet<_> = events
        .iter()
        .filter_map(|event| event.target.clone())
        .collect();
    assert_eq!(targets.len(), BULK, "each event once");
    assert_eq!(events.last().unwrap().target.as_deref(), Some("item:0"));

    let csv = export_audit(&app, &auditor, "format=csv&action=test.bulk").await;
    assert_eq!(csv.status(), 200);
    assert_eq!(
        csv.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    let csv = csv.text().await.unwrap();
    let records: Vec<&str> = csv.strip_suffix("\r\n").unwrap().split("\r\n").collect();
    assert_eq!(records[0], "id,at,actor,action,target,detail,address");
    assert_eq!(records.len(), BULK + 1, "a header and one record per event");
    let quoted = events
        .iter()
        .find(|event| event.target.as_deref() == Some("item:7"))
        .unwrap();
    assert!(
        records.contains(
            &format!(
                "{},{},,test.bulk,item:7,\"say \"\"hi\"\", then\nleave\",",
                quoted.id, quoted.at
            )
            .as_str()
        ),
        "RFC 4180 quoting; an absent actor or address is an empty field"
    );
    let plain = export_audit(&app, &auditor, "action=test.bulk").await;
    assert_eq!(
        plain.headers()[header::CONTENT_DISPOSITION],
        "attachment; filename=\"loupe-audit.csv\"",
        "csv unless asked otherwise"
    );
    assert_eq!(plain.text().await.unwrap(), csv);
    let by_actor = export_audit(&app, &auditor, "format=jsonl&action=test.bulk&actor=bulk")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(by_actor.lines().count(), BULK / 2, "the filters apply");
    let after_all = format!(
        "format=jsonl&from={}",
        Timestamp::from_micros(events[0].at.as_micros() + 1)
    );
    let later = export_audit(&app, &admin, &after_all)
        .await
        .text()
        .await
        .unwrap();
    let later: Vec<AuditEvent> = later
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(!later.is_empty(), "what came after (the exports) is there");
    assert!(
        later.iter().all(|event| event.action != "test.bulk"),
        "the period applies: {later:?}"
    );

    let recorded: Page<AuditEvent> = app
        .get_json(&auditor, "/api/audit?action=audit.exported")
        .await;
    assert_eq!(recorded.items.len(), 5, "each export is itself recorded");
    assert_eq!(recorded.items[4].actor.as_deref(), Some("auditor"));
    assert_eq!(
        recorded.items[4].detail.as_deref(),
        Some("jsonl; action=test.bulk")
    );
    assert_eq!(
        recorded.items[3].detail.as_deref(),
        Some("csv; action=test.bulk")
    );

    for (query, field) in [
        ("format=xlsx", "format"),
        ("format=", "format"),
        ("format=csv&from=yesterday", "from"),
        ("format=csv&cursor=5", "cursor"),
    ] {
        let response = export_audit(&app, &auditor, query).await;
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(
            error_of(response).await.field.as_deref(),
            Some(field),
            "{query}"
        );
    }
    assert_eq!(export_audit(&app, &carol, "format=csv").await.status(), 403);
    let recorded: Page<AuditEvent> = app
        .get_json(&auditor, "/api/audit?action=audit.exported")
        .await;
    assert_eq!(
        recorded.items.len(),
        5,
        "a refused export is not recorded as one"
    );
}
