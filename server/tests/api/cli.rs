//! The `loupe` command line, run as a user would: `exec` and `connections` against a running
//! server with a token, and the account commands against the server's database.

use loupe_protocol::Role;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::helpers::{TestApp, TestUser};

async fn loupe(app: &TestApp, who: &TestUser, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(args)
        .env("LOUPE_SERVER", &app.address)
        .env("LOUPE_TOKEN", &who.token)
        .output()
        .await
        .expect("the loupe binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn exec_prints_output_as_recorded_and_exits_with_the_commands_status() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let shell = json!({ "name": "sh", "kind": "command", "command": { "argv": ["sh", "-c"] } });
    assert_eq!(
        app.call(Method::POST, "/api/connections", Some(&admin), Some(shell))
            .await
            .status(),
        201
    );

    let (code, stdout, stderr) = loupe(
        &app,
        &alice,
        &[
            "exec",
            "-c",
            "sh",
            "echo out; echo err >&2; seq 1 3; exit 3",
        ],
    )
    .await;

    assert_eq!(code, 3);
    assert_eq!(stdout, "out\n1\n2\n3\n");
    assert!(stderr.contains("err\n"), "{stderr}");
    assert!(stderr.contains("loupe: session "), "{stderr}");
    assert!(
        !stderr.contains("exited with code"),
        "the command's own exit is passed on without more words: {stderr}"
    );
}

#[tokio::test]
async fn exec_prints_result_rows_and_fails_on_sql_errors() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", folder.path().join("t.db").display());
    let lite = json!({ "name": "lite", "kind": "sqlite", "url": url });
    assert_eq!(
        app.call(Method::POST, "/api/connections", Some(&admin), Some(lite))
            .await
            .status(),
        201
    );

    let (code, stdout, _) = loupe(
        &app,
        &alice,
        &[
            "exec",
            "--connection",
            "lite",
            "SELECT 1 AS n, NULL AS empty, 'a b' AS text",
        ],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(stdout, "n\tempty\ttext\n1\t\ta b\n");

    let (code, _, stderr) = loupe(
        &app,
        &alice,
        &["exec", "--connection", "lite", "SELECT * FROM missing"],
    )
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("no such table: missing"), "{stderr}");

    let (code, _, stderr) = loupe(
        &app,
        &alice,
        &["exec", "--connection", "nowhere", "SELECT 1"],
    )
    .await;
    assert_ne!(code, 0);
    assert!(stderr.contains("no connection named nowhere"), "{stderr}");

    let (code, stdout, _) = loupe(&app, &alice, &["connections"]).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains("lite") && stdout.contains("sqlite"),
        "{stdout}"
    );
}

#[tokio::test]
async fn account_commands_work_on_the_servers_database() {
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", folder.path().join("loupe.db").display());
    let run = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        let url = url.clone();
        async move {
            let output = Command::new(env!("CARGO_BIN_EXE_loupe"))
                .args(&args)
                .env("DATABASE_URL", url)
                .output()
                .await
                .unwrap();
            assert!(
                output.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
    };

    let added = run(&["user", "add", "carol", "--role", "auditor"]).await;
    assert!(
        added.contains("password: "),
        "a password is generated and shown: {added}"
    );
    run(&["group", "add", "dba"]).await;
    run(&["group", "add-member", "dba", "carol"]).await;
    let token = run(&["token", "create", "--user", "carol", "--name", "ci"]).await;
    assert!(token.contains("secret (shown once): loupe_"), "{token}");
    run(&["user", "disable", "carol"]).await;

    let users = run(&["user", "list"]).await;
    let carol = users
        .lines()
        .find(|line| line.starts_with("carol"))
        .expect("carol is listed");
    assert!(
        carol.contains("auditor") && carol.contains("disabled") && carol.contains("dba"),
        "{carol}"
    );
    let refused = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["user", "set-role", "carol", "root"])
        .env("DATABASE_URL", &url)
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a role"));
}

#[tokio::test]
async fn watch_follows_a_running_session_live_until_it_ends() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let shell = json!({ "name": "sh", "kind": "command", "command": { "argv": ["sh", "-c"] } });
    assert_eq!(
        app.call(Method::POST, "/api/connections", Some(&admin), Some(shell))
            .await
            .status(),
        201
    );
    let started: Value = app
        .call(Method::POST, "/api/sessions", Some(&alice), Some(json!({ "connection": "sh", "input": "echo one; sleep 0.5; echo two >&2; sleep 0.5; echo three; exit 4" })))
        .await
        .json()
        .await
        .unwrap();
    let id = started["id"].as_str().unwrap().to_owned();

    let (code, stdout, stderr) = loupe(&app, &alice, &["watch", &id]).await;

    assert_eq!(code, 4);
    assert_eq!(stdout, "one\nthree\n");
    assert!(stderr.contains("two\n"), "{stderr}");
}

#[tokio::test]
async fn exec_waits_for_approval_then_prints_the_run_or_the_rejection() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let rita = app.user("rita", Role::User).await;
    let group: Value = app
        .call(
            Method::POST,
            "/api/groups",
            Some(&admin),
            Some(json!({ "name": "dba" })),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!(
        "/api/groups/{}/members/{}",
        group["id"].as_str().unwrap(),
        rita.id
    );
    assert_eq!(
        app.call(Method::PUT, &path, Some(&admin), None)
            .await
            .status(),
        204
    );
    let shell = json!({ "name": "prod", "kind": "command", "command": { "argv": ["sh", "-c"] },
        "review": { "command_review": true, "reviewer_groups": ["dba"] } });
    assert_eq!(
        app.call(Method::POST, "/api/connections", Some(&admin), Some(shell))
            .await
            .status(),
        201
    );

    // The reviewer decides on whatever waits, while `loupe exec` is waiting.
    for (verb, note) in [("approve", "ok"), ("reject", "not now")] {
        let decide = async {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                let inbox: Value = app
                    .call(
                        Method::GET,
                        "/api/reviews?view=inbox&state=pending",
                        Some(&rita),
                        None,
                    )
                    .await
                    .json()
                    .await
                    .unwrap();
                if let Some(review) = inbox["items"].as_array().unwrap().first() {
                    let path = format!("/api/reviews/{}/{verb}", review["id"].as_str().unwrap());
                    let body = json!({ "note": note });
                    let decided = app.call(Method::POST, &path, Some(&rita), Some(body)).await;
                    assert_eq!(decided.status(), 200);
                    break;
                }
            }
        };
        let exec = loupe(
            &app,
            &alice,
            &[
                "exec",
                "--connection",
                "prod",
                "--reason",
                "hotfix",
                "echo shipped",
            ],
        );
        let ((code, stdout, stderr), ()) = tokio::join!(exec, decide);
        assert!(stderr.contains("waiting for approval"), "{stderr}");
        if verb == "approve" {
            assert_eq!((code, stdout.as_str()), (0, "shipped\n"), "{stderr}");
        } else {
            assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
            assert!(
                stderr.contains("rejected") && stderr.contains("not now"),
                "{stderr}"
            );
        }
    }
}
