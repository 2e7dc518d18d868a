//! Reviews: command approval and just-in-time access, through the API as people use them. Every
//! transition and every refused one, self-approval, one approval per group, the race between
//! reviewers deciding at once, expiry, the audit trail, and the live inbox.

use std::time::Duration;

use loupe_protocol::{NewGroup, Role, ServerMessage};
use loupe_server::{identity, identity::auth::Actor};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, TestUser},
    live,
};

/// A server with a requester, reviewers in groups, and an administrator.
struct Desk {
    app: TestApp,
    admin: TestUser,
    requester: TestUser,
}

impl Desk {
    async fn open() -> Desk {
        let app = TestApp::spawn().await;
        let admin = app.admin().await;
        let requester = app.user("requester", Role::User).await;
        Desk {
            app,
            admin,
            requester,
        }
    }

    /// A group with these members.
    async fn group(&self, name: &str, members: &[&TestUser]) -> String {
        let actor = Actor::command_line();
        let new = NewGroup {
            name: name.into(),
            description: String::new(),
        };
        let group = identity::create_group(&self.app.store, &actor, &new)
            .await
            .unwrap();
        for member in members {
            identity::add_member(&self.app.store, &actor, &group.id, &member.id)
                .await
                .unwrap();
        }
        group.id
    }

    /// A `sh -c` connection under `review` rules; returns its name.
    async fn shell(&self, name: &str, review: Value) -> String {
        let body = json!({
            "name": name, "kind": "command", "command": { "argv": ["sh", "-c"] }, "review": review,
        });
        let (status, created) = self.post(&self.admin, "/api/connections", body).await;
        assert_eq!(status, 201, "{created}");
        name.to_owned()
    }

    async fn post(&self, who: &TestUser, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .app
            .call(Method::POST, path, Some(who), Some(body))
            .await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, who: &TestUser, path: &str) -> (u16, Value) {
        let response = self.app.call(Method::GET, path, Some(who), None).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn run(&self, who: &TestUser, connection: &str, input: &str) -> (u16, Value) {
        let body = json!({ "connection": connection, "input": input, "reason": "deploy fix" });
        self.post(who, "/api/sessions", body).await
    }

    /// The review holding session `session`, as `who` sees it in their list.
    async fn review_of_session(&self, who: &TestUser, session: &str) -> Value {
        let (status, page) = self.get(who, "/api/reviews").await;
        assert_eq!(status, 200, "{page}");
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|review| review["session_id"] == session)
            .cloned()
            .unwrap_or_else(|| panic!("no review for session {session} in {page}"))
    }

    async fn decide(
        &self,
        who: &TestUser,
        review: &str,
        verb: &str,
        note: Option<&str>,
    ) -> (u16, Value) {
        let path = format!("/api/reviews/{review}/{verb}");
        self.post(who, &path, json!({ "note": note })).await
    }

    /// The session once it has ended (within 10 s).
    async fn ended(&self, who: &TestUser, session: &str) -> Value {
        for _ in 0..200 {
            let (_, current) = self.get(who, &format!("/api/sessions/{session}")).await;
            if !["running", "pending_review"].contains(&current["status"].as_str().unwrap()) {
                return current;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("session {session} did not end");
    }

    async fn output(&self, who: &TestUser, session: &str) -> String {
        let path = format!("/api/sessions/{session}/download?format=txt");
        self.app
            .call(Method::GET, &path, Some(who), None)
            .await
            .text()
            .await
            .unwrap()
    }

    async fn audit_actions(&self, review: &str) -> Vec<String> {
        let (_, events) = self.get(&self.admin, "/api/audit?limit=200").await;
        let mut actions: Vec<String> = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["target"] == format!("review:{review}"))
            .map(|event| event["action"].as_str().unwrap().to_owned())
            .collect();
        actions.reverse();
        actions
    }
}

fn command_review(groups: &[&str]) -> Value {
    json!({ "command_review": true, "reviewer_groups": groups })
}

#[tokio::test]
async fn an_approved_command_runs_once_as_its_requester() {
    let desk = Desk::open().await;
    let reviewer = desk.app.user("rita", Role::User).await;
    desk.group("dba", &[&reviewer]).await;
    let shell = desk.shell("prod-sh", command_review(&["dba"])).await;

    let (status, session) = desk.run(&desk.requester, &shell, "echo released").await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["status"], "pending_review");
    let session_id = session["id"].as_str().unwrap();

    let held = desk.review_of_session(&reviewer, session_id).await;
    assert_eq!(held["state"], "pending");
    assert_eq!(held["kind"], "command");
    assert_eq!(held["input"], "echo released");
    assert_eq!(held["reason"], "deploy fix");
    assert_eq!(
        held["actions"],
        json!({ "decide": true, "cancel": false, "revoke": false })
    );
    let (_, waiting) = desk.get(&reviewer, "/api/reviews/waiting").await;
    assert_eq!(waiting["count"], 1);
    let (_, waiting) = desk.get(&desk.requester, "/api/reviews/waiting").await;
    assert_eq!(waiting["count"], 0);
    let (_, inbox) = desk
        .get(&reviewer, "/api/reviews?view=inbox&state=pending")
        .await;
    assert_eq!(inbox["items"].as_array().unwrap().len(), 1);
    // Nothing ran while it waited.
    let (_, events) = desk
        .get(
            &desk.requester,
            &format!("/api/sessions/{session_id}/events"),
        )
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 0);

    let review_id = held["id"].as_str().unwrap();
    let (status, decided) = desk
        .decide(&reviewer, review_id, "approve", Some("looks right"))
        .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["state"], "executed");
    assert_eq!(decided["decisions"][0]["reviewer"]["username"], "rita");
    assert_eq!(decided["decisions"][0]["note"], "looks right");

    let ended = desk.ended(&desk.requester, session_id).await;
    assert_eq!(ended["status"], "done");
    assert_eq!(ended["user"]["username"], "requester");
    assert_eq!(desk.output(&desk.requester, session_id).await, "released\n");
    let (_, waiting) = desk.get(&reviewer, "/api/reviews/waiting").await;
    assert_eq!(waiting["count"], 0);
    // Deciding again, on an executed review, is refused.
    let (status, _) = desk.decide(&reviewer, review_id, "approve", None).await;
    assert_eq!(status, 409);
    assert_eq!(
        desk.audit_actions(review_id).await,
        ["review.requested", "review.approved", "review.executed"]
    );
}

#[tokio::test]
async fn a_rejection_ends_the_session_with_the_reviewers_reason() {
    let desk = Desk::open().await;
    let reviewer = desk.app.user("rita", Role::User).await;
    desk.group("dba", &[&reviewer]).await;
    let shell = desk.shell("prod-sh", command_review(&["dba"])).await;
    let (_, session) = desk.run(&desk.requester, &shell, "rm -rf /srv/data").await;
    let session_id = session["id"].as_str().unwrap();
    let review = desk.review_of_session(&reviewer, session_id).await;
    let review_id = review["id"].as_str().unwrap();

    let (status, error) = desk.decide(&reviewer, review_id, "reject", None).await;
    assert_eq!(
        (status, error["field"].as_str()),
        (400, Some("note")),
        "{error}"
    );
    let (status, _) = desk
        .decide(&reviewer, review_id, "reject", Some("   "))
        .await;
    assert_eq!(status, 400);

    let (status, rejected) = desk
        .decide(
            &reviewer,
            review_id,
            "reject",
            Some("not during the freeze"),
        )
        .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["state"], "rejected");
    assert_eq!(rejected["closing_note"], "not during the freeze");
    assert_eq!(rejected["closed_by"]["username"], "rita");
    let ended = desk.ended(&desk.requester, session_id).await;
    assert_eq!(ended["status"], "rejected");
    assert!(
        ended["error"]
            .as_str()
            .unwrap()
            .contains("not during the freeze"),
        "{ended}"
    );

    // Every way out of `rejected` is refused.
    for verb in ["approve", "reject"] {
        let (status, error) = desk.decide(&reviewer, review_id, verb, Some("again")).await;
        assert_eq!((status, error["code"].as_str()), (409, Some("conflict")));
    }
    let (status, _) = desk
        .decide(&desk.requester, review_id, "cancel", None)
        .await;
    assert_eq!(status, 409);
    let (status, _) = desk.decide(&desk.admin, review_id, "revoke", None).await;
    assert_eq!(status, 409);
    assert_eq!(
        desk.audit_actions(review_id).await,
        ["review.requested", "review.rejected"]
    );
}

#[tokio::test]
async fn nobody_approves_their_own_request_and_only_the_requester_withdraws_it() {
    let desk = Desk::open().await;
    let reviewer = desk.app.user("rita", Role::User).await;
    let outsider = desk.app.user("otto", Role::User).await;
    let auditor = desk.app.user("audrey", Role::Auditor).await;
    // The requester is a reviewer too, and so is the auditor: neither may decide this one.
    desk.group("dba", &[&reviewer, &desk.requester, &auditor])
        .await;
    let shell = desk.shell("prod-sh", command_review(&["dba"])).await;
    let (_, session) = desk.run(&desk.requester, &shell, "echo mine").await;
    let session_id = session["id"].as_str().unwrap();
    let review = desk.review_of_session(&desk.requester, session_id).await;
    let review_id = review["id"].as_str().unwrap();
    assert_eq!(
        review["actions"],
        json!({ "decide": false, "cancel": true, "revoke": false })
    );

    let (status, error) = desk
        .decide(&desk.requester, review_id, "approve", None)
        .await;
    assert_eq!(status, 403, "{error}");
    assert!(error["message"].as_str().unwrap().contains("own request"));
    let (status, _) = desk.decide(&auditor, review_id, "approve", None).await;
    assert_eq!(status, 403);
    // An administrator outside the reviewer groups does not decide either.
    let (status, _) = desk.decide(&desk.admin, review_id, "approve", None).await;
    assert_eq!(status, 403);
    // Someone with nothing to do with it does not even see it.
    let (status, _) = desk
        .get(&outsider, &format!("/api/reviews/{review_id}"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = desk.decide(&outsider, review_id, "cancel", None).await;
    assert_eq!(status, 404);
    let (status, _) = desk.decide(&reviewer, review_id, "cancel", None).await;
    assert_eq!(status, 403);
    // Pending reviews cannot be revoked: they are rejected or withdrawn.
    let (status, _) = desk.decide(&desk.admin, review_id, "revoke", None).await;
    assert_eq!(status, 409);
    // A held session is not running, so it is not killed: the request is withdrawn.
    let path = format!("/api/sessions/{session_id}/kill");
    let (status, _) = desk.post(&desk.requester, &path, json!({})).await;
    assert_eq!(status, 409);

    let (status, cancelled) = desk
        .decide(&desk.requester, review_id, "cancel", Some("wrong server"))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(
        desk.ended(&desk.requester, session_id).await["status"],
        "cancelled"
    );
    let (status, _) = desk
        .decide(&desk.requester, review_id, "cancel", None)
        .await;
    assert_eq!(status, 409);
    let (status, _) = desk.decide(&reviewer, review_id, "approve", None).await;
    assert_eq!(status, 409);
    // Nothing ran: the only events are the note saying why it ended.
    assert_eq!(desk.output(&desk.requester, session_id).await, "");
    assert_eq!(
        desk.audit_actions(review_id).await,
        ["review.requested", "review.cancelled"]
    );
}

#[tokio::test]
async fn one_per_group_needs_a_different_person_from_each_group() {
    let desk = Desk::open().await;
    let (dana, dora, sam) = (
        desk.app.user("dana", Role::User).await,
        desk.app.user("dora", Role::User).await,
        desk.app.user("sam", Role::User).await,
    );
    // Dana sits in both groups: her approval counts for one of them only.
    desk.group("dba", &[&dana, &dora]).await;
    desk.group("sre", &[&dana, &sam]).await;
    let rules = json!({ "command_review": true, "reviewer_groups": ["dba", "sre"], "approvals": "each_group" });
    let shell = desk.shell("prod-sh", rules).await;
    let (_, session) = desk.run(&desk.requester, &shell, "echo both").await;
    let session_id = session["id"].as_str().unwrap();
    let review_id = desk.review_of_session(&dana, session_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, review) = desk.decide(&dana, &review_id, "approve", None).await;
    assert_eq!((status, review["state"].as_str()), (200, Some("pending")));
    let (status, error) = desk.decide(&dana, &review_id, "approve", None).await;
    assert_eq!(status, 409, "a second decision by the same person: {error}");
    let (status, review) = desk.decide(&dora, &review_id, "approve", None).await;
    // Dana and Dora can cover dba and sre between them (Dana for sre).
    assert_eq!((status, review["state"].as_str()), (200, Some("executed")));
    assert_eq!(
        desk.ended(&desk.requester, session_id).await["status"],
        "done"
    );

    // With a count, two approvals from any reviewer group.
    let rules =
        json!({ "command_review": true, "reviewer_groups": ["dba"], "approvals": { "count": 2 } });
    let counted = desk.shell("counted-sh", rules).await;
    let (_, session) = desk.run(&desk.requester, &counted, "echo two").await;
    let session_id = session["id"].as_str().unwrap();
    let review_id = desk.review_of_session(&dana, session_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, review) = desk.decide(&dana, &review_id, "approve", None).await;
    assert_eq!(review["state"], "pending");
    // Sam is not in dba: not a reviewer of this one.
    let (status, _) = desk.decide(&sam, &review_id, "approve", None).await;
    assert_eq!(status, 404);
    let (_, review) = desk.decide(&dora, &review_id, "approve", None).await;
    assert_eq!(review["state"], "executed");

    // Two people from the same group do not make "one per group".
    let rules = json!({ "command_review": true, "reviewer_groups": ["dba", "sre"] });
    let strict = desk.shell("strict-sh", rules).await;
    let (_, session) = desk.run(&desk.requester, &strict, "echo strict").await;
    let review_id = desk
        .review_of_session(&dora, session["id"].as_str().unwrap())
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    desk.decide(&dora, &review_id, "approve", None).await;
    let (_, review) = desk.get(&dora, &format!("/api/reviews/{review_id}")).await;
    assert_eq!(review["state"], "pending");
    let (_, review) = desk.decide(&sam, &review_id, "approve", None).await;
    assert_eq!(review["state"], "executed");
}

#[tokio::test]
async fn reviewers_deciding_at_the_same_moment_make_one_decision_and_one_run() {
    let desk = Desk::open().await;
    let mut reviewers = Vec::new();
    for index in 0..6 {
        reviewers.push(desk.app.user(&format!("reviewer{index}"), Role::User).await);
    }
    let members: Vec<&TestUser> = reviewers.iter().collect();
    desk.group("oncall", &members).await;
    let shell = desk.shell("prod-sh", command_review(&["oncall"])).await;

    for round in 0..3 {
        let (_, session) = desk
            .run(&desk.requester, &shell, &format!("echo round {round}"))
            .await;
        let session_id = session["id"].as_str().unwrap().to_owned();
        let review_id = desk.review_of_session(&reviewers[0], &session_id).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // Every reviewer at once; in the last round half of them reject.
        let attempts = reviewers.iter().enumerate().map(|(index, reviewer)| {
            let verb = if round == 2 && index % 2 == 1 {
                "reject"
            } else {
                "approve"
            };
            desk.decide(reviewer, &review_id, verb, Some("race"))
        });
        let answers = futures_util::future::join_all(attempts).await;
        let won: Vec<&Value> = answers
            .iter()
            .filter(|(status, _)| *status == 200)
            .map(|(_, review)| review)
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {answers:?}");
        assert!(
            answers
                .iter()
                .all(|(status, _)| [200, 409].contains(status)),
            "{answers:?}"
        );

        let (_, review) = desk
            .get(&reviewers[0], &format!("/api/reviews/{review_id}"))
            .await;
        assert_eq!(review["decisions"].as_array().unwrap().len(), 1, "{review}");
        let ended = desk.ended(&desk.requester, &session_id).await;
        if review["state"] == "executed" {
            assert_eq!(ended["status"], "done");
            // One run: one input event, and the output once.
            assert_eq!(
                desk.output(&desk.requester, &session_id).await,
                format!("round {round}\n")
            );
            let (_, events) = desk
                .get(
                    &desk.requester,
                    &format!("/api/sessions/{session_id}/events"),
                )
                .await;
            let inputs = events["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|event| event["kind"] == "input")
                .count();
            assert_eq!(inputs, 1, "{events}");
        } else {
            assert_eq!(review["state"], "rejected");
            assert_eq!(ended["status"], "rejected");
        }
    }
}

#[tokio::test]
async fn pending_reviews_expire_when_nobody_decides() {
    let desk = Desk::open().await;
    let reviewer = desk.app.user("rita", Role::User).await;
    desk.group("dba", &[&reviewer]).await;
    let rules = json!({ "command_review": true, "reviewer_groups": ["dba"], "pending_seconds": 1 });
    let shell = desk.shell("prod-sh", rules).await;
    let (_, session) = desk.run(&desk.requester, &shell, "echo late").await;
    let session_id = session["id"].as_str().unwrap();
    let review_id = desk.review_of_session(&reviewer, session_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let ended = desk.ended(&desk.requester, session_id).await;
    assert_eq!(ended["status"], "cancelled");
    assert!(
        ended["error"].as_str().unwrap().contains("expired"),
        "{ended}"
    );
    let (_, review) = desk
        .get(&reviewer, &format!("/api/reviews/{review_id}"))
        .await;
    assert_eq!(review["state"], "expired");
    let (status, _) = desk.decide(&reviewer, &review_id, "approve", None).await;
    assert_eq!(status, 409);
    assert_eq!(desk.output(&desk.requester, session_id).await, "");
    assert_eq!(
        desk.audit_actions(&review_id).await,
        ["review.requested", "review.expired"]
    );
}

#[tokio::test]
async fn approved_access_lets_the_requester_run_until_revoked_or_over() {
    let desk = Desk::open().await;
    let reviewer = desk.app.user("rita", Role::User).await;
    let colleague = desk.app.user("colin", Role::User).await;
    desk.group("dba", &[&reviewer]).await;
    let rules =
        json!({ "jit_access": true, "reviewer_groups": ["dba"], "max_access_seconds": 7200 });
    let shell = desk.shell("jit-sh", rules).await;

    let (status, error) = desk.run(&desk.requester, &shell, "echo hi").await;
    assert_eq!(
        (status, error["code"].as_str()),
        (403, Some("access_required")),
        "{error}"
    );

    let ask = |seconds: u32, reason: &str| json!({ "connection": "jit-sh", "access_seconds": seconds, "reason": reason });
    for (body, field) in [
        (ask(30, "fix"), "access_seconds"),
        (ask(7201, "fix"), "access_seconds"),
        (ask(600, " "), "reason"),
        (
            json!({ "connection": "nope", "access_seconds": 600, "reason": "x" }),
            "connection",
        ),
    ] {
        let (status, error) = desk.post(&desk.requester, "/api/reviews", body).await;
        assert_eq!(
            (status, error["field"].as_str()),
            (400, Some(field)),
            "{error}"
        );
    }
    let (status, requested) = desk
        .post(&desk.requester, "/api/reviews", ask(600, "incident 42"))
        .await;
    assert_eq!(status, 201, "{requested}");
    assert_eq!(requested["state"], "pending");
    let review_id = requested["id"].as_str().unwrap().to_owned();
    // Still no access while it waits.
    let (status, _) = desk.run(&desk.requester, &shell, "echo hi").await;
    assert_eq!(status, 403);

    let (status, approved) = desk.decide(&reviewer, &review_id, "approve", None).await;
    assert_eq!(
        (status, approved["state"].as_str()),
        (200, Some("approved")),
        "{approved}"
    );
    assert!(approved["access_until"].is_string());
    assert_eq!(approved["actions"]["revoke"], true);
    let (status, session) = desk.run(&desk.requester, &shell, "echo inside").await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(
        desk.ended(&desk.requester, session["id"].as_str().unwrap())
            .await["status"],
        "done"
    );
    // The grant is the requester's alone.
    let (status, _) = desk.run(&colleague, &shell, "echo me too").await;
    assert_eq!(status, 403);
    let (status, _) = desk
        .decide(&desk.requester, &review_id, "revoke", None)
        .await;
    assert_eq!(status, 403);
    let (status, _) = desk
        .decide(&desk.requester, &review_id, "cancel", None)
        .await;
    assert_eq!(status, 409);

    // Revoking ends access now: a run still going under it is stopped.
    let (status, long) = desk.run(&desk.requester, &shell, "sleep 30").await;
    assert_eq!(status, 201, "{long}");
    let (status, revoked) = desk
        .decide(&reviewer, &review_id, "revoke", Some("done"))
        .await;
    assert_eq!((status, revoked["state"].as_str()), (200, Some("revoked")));
    let stopped = desk
        .ended(&desk.requester, long["id"].as_str().unwrap())
        .await;
    assert_eq!(stopped["status"], "cancelled", "{stopped}");
    assert!(
        stopped["error"].as_str().unwrap().contains("was revoked"),
        "the record says why: {stopped}"
    );
    let (status, _) = desk.run(&desk.requester, &shell, "echo after").await;
    assert_eq!(status, 403);
    let (status, _) = desk.decide(&reviewer, &review_id, "revoke", None).await;
    assert_eq!(status, 409);

    // A second grant, whose window is made to have ended: the expiry sweep ends it.
    let (_, requested) = desk
        .post(&desk.requester, "/api/reviews", ask(600, "again"))
        .await;
    let second = requested["id"].as_str().unwrap().to_owned();
    desk.decide(&reviewer, &second, "approve", None).await;
    let (status, _) = desk.run(&desk.requester, &shell, "echo ok").await;
    assert_eq!(status, 201);
    let (status, running) = desk.run(&desk.requester, &shell, "sleep 30").await;
    assert_eq!(status, 201);
    desk.app
        .execute_sql(&format!(
            "UPDATE reviews SET access_until_us = access_until_us - 601000000 WHERE id = '{second}'"
        ))
        .await;
    let (status, _) = desk.run(&desk.requester, &shell, "echo over").await;
    assert_eq!(status, 403);
    let mut state = Value::Null;
    for _ in 0..100 {
        state = desk
            .get(&reviewer, &format!("/api/reviews/{second}"))
            .await
            .1["state"]
            .clone();
        if state == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "expired");
    // A run started inside the window does not outlive it.
    let stopped = desk
        .ended(&desk.requester, running["id"].as_str().unwrap())
        .await;
    assert_eq!(stopped["status"], "cancelled", "{stopped}");
    assert!(
        stopped["error"]
            .as_str()
            .unwrap()
            .contains("access window it ran under ended"),
        "{stopped}"
    );
    assert_eq!(
        desk.audit_actions(&review_id).await,
        ["review.requested", "review.approved", "review.revoked"]
    );
}

#[tokio::test]
async fn review_rules_are_checked_when_set() {
    let desk = Desk::open().await;
    desk.group("dba", &[]).await;
    let cases = [
        (json!({ "jit_access": true }), "review.reviewer_groups"),
        (
            json!({ "command_review": true, "reviewer_groups": ["ghosts"] }),
            "review.reviewer_groups",
        ),
        (
            json!({ "command_review": true, "reviewer_groups": ["dba"], "approvals": { "count": 0 } }),
            "review.approvals",
        ),
        (
            json!({ "jit_access": true, "reviewer_groups": ["dba"], "max_access_seconds": 10 }),
            "review.max_access_seconds",
        ),
        (
            json!({ "command_review": true, "reviewer_groups": ["dba"], "pending_seconds": 0 }),
            "review.pending_seconds",
        ),
        (
            json!({ "command_review": true, "reviewer_groups": ["dba"], "surprise": 1 }),
            "review",
        ),
    ];
    for (review, field) in cases {
        let body = json!({ "name": "bad", "kind": "command", "command": { "argv": ["true"] }, "review": review });
        let (status, error) = desk.post(&desk.admin, "/api/connections", body).await;
        assert_eq!(status, 400, "{review}: {error}");
        assert!(
            error["field"]
                .as_str()
                .unwrap_or_default()
                .starts_with(field),
            "{review}: {error}"
        );
    }
    let (_, listed) = desk.get(&desk.admin, "/api/connections").await;
    assert_eq!(listed.as_array().unwrap().len(), 0);

    // Set and shown with group names; changed with PATCH; removed by asking for nothing.
    let name = desk.shell("sh", command_review(&["dba"])).await;
    let (_, shown) = desk
        .get(&desk.requester, &format!("/api/connections/{name}"))
        .await;
    assert_eq!(shown["review"]["reviewer_groups"], json!(["dba"]));
    assert_eq!(shown["review"]["command_review"], true);
    let id = shown["id"].as_str().unwrap();
    let response = desk
        .app
        .call(
            Method::PATCH,
            &format!("/api/connections/{id}"),
            Some(&desk.admin),
            Some(json!({ "review": {} })),
        )
        .await;
    assert_eq!(response.status(), 200);
    // Without rules the run is not held: it starts at once (and may already be done) and no
    // review holds it.
    let (status, session) = desk.run(&desk.requester, &name, "echo free").await;
    assert_eq!(status, 201, "{session}");
    assert_ne!(session["status"], "pending_review");
    let session_id = session["id"].as_str().unwrap();
    assert_eq!(
        desk.ended(&desk.requester, session_id).await["status"],
        "done"
    );
    let (_, held) = desk
        .get(&desk.admin, &format!("/api/reviews?session={session_id}"))
        .await;
    assert_eq!(held["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn reviewers_see_requests_arrive_live_and_requesters_see_the_run_start() {
    let desk = Desk::open().await;
    let reviewer = desk.app.user("rita", Role::User).await;
    let outsider = desk.app.user("otto", Role::User).await;
    desk.group("dba", &[&reviewer]).await;
    let shell = desk.shell("prod-sh", command_review(&["dba"])).await;

    let mut inbox = live::connect(&desk.app.address, &reviewer.token).await;
    live::send(
        &mut inbox,
        json!({ "type": "watch_reviews", "id": "inbox" }),
    )
    .await;
    assert!(matches!(
        live::next(&mut inbox).await,
        ServerMessage::Watching { .. }
    ));
    let mut elsewhere = live::connect(&desk.app.address, &outsider.token).await;
    live::send(
        &mut elsewhere,
        json!({ "type": "watch_reviews", "id": "x" }),
    )
    .await;
    assert!(matches!(
        live::next(&mut elsewhere).await,
        ServerMessage::Watching { .. }
    ));

    let (_, session) = desk.run(&desk.requester, &shell, "echo live").await;
    let session_id = session["id"].as_str().unwrap().to_owned();
    let ServerMessage::Review { review, .. } = live::next(&mut inbox).await else {
        panic!("expected the new review");
    };
    assert_eq!(review.session_id.as_deref(), Some(session_id.as_str()));
    assert!(review.actions.decide);

    let mut waiting = live::connect(&desk.app.address, &desk.requester.token).await;
    let watch = json!({ "type": "watch_session", "id": "s", "session": session_id, "after": 0 });
    live::send(&mut waiting, watch).await;
    assert!(matches!(
        live::next(&mut waiting).await,
        ServerMessage::Watching { .. }
    ));

    desk.decide(&reviewer, &review.id, "approve", None).await;
    let ServerMessage::Review {
        review: decided, ..
    } = live::next(&mut inbox).await
    else {
        panic!("expected the decision");
    };
    assert_eq!(decided.id, review.id);
    assert!(!decided.actions.decide);
    // The requester's watch goes on into the run: the approval note, the output, the end.
    let mut output = String::new();
    let mut statuses = Vec::new();
    loop {
        match live::next(&mut waiting).await {
            ServerMessage::Output { piece, .. } => output.push_str(&piece.text),
            ServerMessage::Session { session, .. } => {
                statuses.push(session.status.as_str().to_owned());
                if session.status.is_final() {
                    break;
                }
            }
            _ => {}
        }
    }
    assert_eq!(output, "live\n");
    assert_eq!(statuses.first().map(String::as_str), Some("running"));
    assert_eq!(statuses.last().map(String::as_str), Some("done"));
    // Someone who may not see the review heard nothing of it.
    live::send(&mut elsewhere, json!({ "type": "ping", "nonce": 7 })).await;
    assert_eq!(
        live::next(&mut elsewhere).await,
        ServerMessage::Pong { nonce: 7 }
    );
}

/// Every action from every state: the legal ones go through, every other one is 409 and
/// changes nothing.
#[tokio::test]
async fn every_action_from_every_state_is_allowed_only_where_the_state_machine_says() {
    let desk = Desk::open().await;
    let reviewer = desk.app.user("rita", Role::User).await;
    desk.group("dba", &[&reviewer]).await;
    let rules = json!({ "jit_access": true, "command_review": true, "reviewer_groups": ["dba"] });
    let shell = desk.shell("both-sh", rules).await;
    let held_rules = json!({ "command_review": true, "reviewer_groups": ["dba"] });
    let held = desk.shell("held-sh", held_rules).await;

    // A review in each state. Access must be granted before anything runs on `both-sh`.
    let access =
        |reason: &str| json!({ "connection": shell, "access_seconds": 600, "reason": reason });
    let (_, granted) = desk
        .post(&desk.requester, "/api/reviews", access("granted"))
        .await;
    let granted = granted["id"].as_str().unwrap().to_owned();
    desk.decide(&reviewer, &granted, "approve", None).await;
    let (_, pending) = desk
        .post(&desk.requester, "/api/reviews", access("pending"))
        .await;
    let pending = pending["id"].as_str().unwrap().to_owned();
    let command = |input: &'static str| {
        let desk = &desk;
        let held = held.clone();
        async move {
            let (_, session) = desk.run(&desk.requester, &held, input).await;
            desk.review_of_session(&desk.requester, session["id"].as_str().unwrap())
                .await["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let executed = command("echo executed").await;
    desk.decide(&reviewer, &executed, "approve", None).await;
    let rejected = command("echo rejected").await;
    desk.decide(&reviewer, &rejected, "reject", Some("no"))
        .await;
    let cancelled = command("echo cancelled").await;
    desk.decide(&desk.requester, &cancelled, "cancel", None)
        .await;
    let revoked = {
        let (_, review) = desk
            .post(&desk.requester, "/api/reviews", access("revoked"))
            .await;
        let id = review["id"].as_str().unwrap().to_owned();
        desk.decide(&reviewer, &id, "approve", None).await;
        desk.decide(&reviewer, &id, "revoke", None).await;
        id
    };
    let expired = command("echo expired").await;
    desk.app
        .execute_sql(&format!(
            "UPDATE reviews SET expires_at_us = 0 WHERE id = '{expired}'"
        ))
        .await;
    for _ in 0..100 {
        let (_, review) = desk
            .get(&reviewer, &format!("/api/reviews/{expired}"))
            .await;
        if review["state"] == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Who would be allowed each action, state permitting.
    let actors = [
        ("approve", &reviewer),
        ("reject", &reviewer),
        ("cancel", &desk.requester),
        ("revoke", &reviewer),
    ];
    let expected_state = |id: &str| {
        if id == granted {
            "approved"
        } else if id == executed {
            "executed"
        } else if id == rejected {
            "rejected"
        } else if id == cancelled {
            "cancelled"
        } else if id == revoked {
            "revoked"
        } else {
            "expired"
        }
    };
    for id in [
        &granted, &executed, &rejected, &cancelled, &revoked, &expired,
    ] {
        for (verb, who) in actors {
            let legal = id == &granted && verb == "revoke";
            if legal {
                continue;
            }
            let (status, error) = desk.decide(who, id, verb, Some("note")).await;
            assert_eq!(
                status,
                409,
                "{verb} on a review that is {}: {error}",
                expected_state(id)
            );
            assert_eq!(error["code"], "conflict");
        }
        let (_, review) = desk.get(&reviewer, &format!("/api/reviews/{id}")).await;
        assert_eq!(review["state"], expected_state(id), "{review}");
    }
    // From pending, revoking is the one refused move; the others each end it their own way.
    let (status, _) = desk.decide(&reviewer, &pending, "revoke", None).await;
    assert_eq!(status, 409);
    let (_, review) = desk
        .get(&reviewer, &format!("/api/reviews/{pending}"))
        .await;
    assert_eq!(review["state"], "pending");
    let (status, review) = desk.decide(&reviewer, &granted, "revoke", None).await;
    assert_eq!((status, review["state"].as_str()), (200, Some("revoked")));
}

/// An approved command whose server stopped before it ran is not run a minute later by
/// surprise: the sweep expires it and ends its session.
#[tokio::test]
async fn an_approved_command_that_never_started_expires() {
    let desk = Desk::open().await;
    let reviewer = desk.app.user("rita", Role::User).await;
    desk.group("dba", &[&reviewer]).await;
    let shell = desk.shell("prod-sh", command_review(&["dba"])).await;
    let (_, session) = desk.run(&desk.requester, &shell, "echo stale").await;
    let session_id = session["id"].as_str().unwrap();
    let review_id = desk.review_of_session(&reviewer, session_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // What a crash between the approval and the claim leaves behind.
    desk.app
        .execute_sql(&format!(
            "UPDATE reviews SET state = 'approved', decided_at_us = 1 WHERE id = '{review_id}'"
        ))
        .await;
    let ended = desk.ended(&desk.requester, session_id).await;
    assert_eq!(ended["status"], "cancelled");
    assert!(
        ended["error"].as_str().unwrap().contains("server stopped"),
        "{ended}"
    );
    let (_, review) = desk
        .get(&reviewer, &format!("/api/reviews/{review_id}"))
        .await;
    assert_eq!(review["state"], "expired");
    assert_eq!(desk.output(&desk.requester, session_id).await, "");
}

#[tokio::test]
async fn the_list_pages_and_filters_and_refuses_what_it_does_not_understand() {
    let desk = Desk::open().await;
    let reviewer = desk.app.user("rita", Role::User).await;
    let outsider = desk.app.user("otto", Role::User).await;
    desk.group("dba", &[&reviewer]).await;
    let rules = json!({ "jit_access": true, "reviewer_groups": ["dba"] });
    let shell = desk.shell("jit-sh", rules).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let body = json!({ "connection": shell, "access_seconds": 600, "reason": format!("r{n}") });
        let (status, review) = desk.post(&desk.requester, "/api/reviews", body).await;
        assert_eq!(status, 201, "{review}");
        ids.push(review["id"].as_str().unwrap().to_owned());
    }
    desk.decide(&reviewer, &ids[0], "approve", None).await;

    let (_, first) = desk.get(&reviewer, "/api/reviews?view=inbox&limit=2").await;
    let listed: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()], "newest first");
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = desk
        .get(
            &reviewer,
            &format!("/api/reviews?view=inbox&limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(second["items"][0]["id"], ids[0].as_str());
    assert!(second["next_cursor"].is_null());
    let (_, approved) = desk
        .get(&desk.requester, "/api/reviews?view=mine&state=approved")
        .await;
    assert_eq!(approved["items"].as_array().unwrap().len(), 1);
    let (_, commands) = desk.get(&reviewer, "/api/reviews?kind=command").await;
    assert_eq!(commands["items"].as_array().unwrap().len(), 0);
    // Someone who neither asked nor reviews sees none of them, in any view.
    for view in ["inbox", "mine", "all"] {
        let (_, page) = desk
            .get(&outsider, &format!("/api/reviews?view={view}"))
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 0, "{view}");
    }

    for (query, field) in [
        ("view=everything", "view"),
        ("state=maybe", "state"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=nonsense", "cursor"),
    ] {
        let (status, error) = desk.get(&reviewer, &format!("/api/reviews?{query}")).await;
        assert_eq!(
            (status, error["field"].as_str()),
            (400, Some(field)),
            "{query}: {error}"
        );
    }
    let (status, _) = desk.get(&reviewer, "/api/reviews?kind=gadget").await;
    assert_eq!(status, 400);
    let (status, _) = desk.get(&reviewer, "/api/reviews/not-a-review").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_open_inbox_follows_a_change_of_reviewer_groups() {
    let desk = Desk::open().await;
    let newcomer = desk.app.user("nina", Role::User).await;
    let group = desk.group("dba", &[]).await;
    let shell = desk.shell("prod-sh", command_review(&["dba"])).await;
    let mut inbox = live::connect(&desk.app.address, &newcomer.token).await;
    live::send(
        &mut inbox,
        json!({ "type": "watch_reviews", "id": "inbox" }),
    )
    .await;
    assert!(matches!(
        live::next(&mut inbox).await,
        ServerMessage::Watching { .. }
    ));

    // Nina joins the reviewers while her inbox is open: the membership change reaches every open
    // live connection at once (it tells them access changed), so her inbox reads her groups again.
    let admin = desk.app.admin().await;
    let added = desk
        .app
        .call(
            Method::PUT,
            &format!("/api/groups/{group}/members/{}", newcomer.id),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(added.status(), 204);
    let (_, session) = desk.run(&desk.requester, &shell, "echo for nina").await;
    let ServerMessage::Review { review, .. } = live::next(&mut inbox).await else {
        panic!("expected the new review");
    };
    assert_eq!(review.session_id.as_deref(), session["id"].as_str());
    assert!(review.actions.decide);
}
