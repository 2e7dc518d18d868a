//! The storage conformance suite: the same cases on SQLite and PostgreSQL (the backend comes from
//! `LOUPE_TEST_BACKEND`), so both implementations of `Store` mean the same thing.

use loupe_server::{config::Secret, store::Store};

use crate::helpers::{TestDatabase, backend};

#[tokio::test]
async fn opens_and_migrates_a_fresh_database() {
    let database = TestDatabase::create().await;

    let store = database.open_store().await;

    assert_eq!(store.kind().name(), backend());
    store.ping().await.expect("the database answers");
    store.close().await;
}

#[tokio::test]
async fn records_the_instance_once_and_keeps_it_across_restarts() {
    let database = TestDatabase::create().await;
    let store = database.open_store().await;

    let first = store.instance().await.unwrap();
    let again = store.instance().await.unwrap();
    store.close().await;
    let reopened = database.open_store().await;
    let after_restart = reopened.instance().await.unwrap();
    reopened.close().await;

    assert!(first.first_start);
    assert!(!again.first_start);
    assert!(!after_restart.first_start);
    assert_eq!(first.id, again.id);
    assert_eq!(first.id, after_restart.id);
    assert_eq!(first.created_at_us, after_restart.created_at_us);
}

#[tokio::test]
async fn nodes_starting_together_agree_on_one_instance() {
    let database = TestDatabase::create().await;
    let (one, two) = (database.open_store().await, database.open_store().await);

    let (a, b) = tokio::join!(one.instance(), two.instance());
    let (a, b) = (a.unwrap(), b.unwrap());

    assert_eq!(a.id, b.id);
    assert!(
        a.first_start ^ b.first_start,
        "exactly one node sees the first start"
    );
    one.close().await;
    two.close().await;
}

#[tokio::test]
async fn rejects_a_database_url_of_another_kind() {
    let opened = Store::open(&Secret::new("mysql://root@127.0.0.1/loupe".into()), 1).await;

    let error = opened.err().expect("mysql is not a storage backend");
    assert!(
        error.to_string().contains("sqlite:// or postgres://"),
        "{error}"
    );
}

#[tokio::test]
async fn the_list_reads_two_filters_through_the_index_that_leads_with_both() {
    use loupe_protocol::{SessionStatus, SessionType};
    use loupe_server::store::{SessionFilter, Visibility};

    let database = TestDatabase::create().await;
    let store = database.open_store().await;
    let filter = |username: Option<&str>, connection: Option<&str>, kind, status| SessionFilter {
        username: username.map(str::to_owned),
        connection: connection.map(str::to_owned),
        session_type: kind,
        statuses: Vec::from_iter(status),
        from_us: None,
        to_us: None,
        id_prefix: None,
        before: None,
        visibility: Visibility::All,
    };
    let cases = [
        (
            filter(Some("alice"), None, None, Some(SessionStatus::Failed)),
            "sessions_by_user_status_start",
        ),
        (
            filter(None, Some("web-1"), None, Some(SessionStatus::Running)),
            "sessions_by_connection_status_start",
        ),
        (
            filter(Some("alice"), None, Some(SessionType::Command), None),
            "sessions_by_user_type_start",
        ),
        (
            filter(None, Some("web-1"), Some(SessionType::Command), None),
            "sessions_by_connection_type_start",
        ),
        (
            filter(Some("alice"), Some("web-1"), None, None),
            "sessions_by_user_connection_start",
        ),
    ];
    for (filter, index) in cases {
        let plan = store
            .explain_list_sessions(&filter, 50)
            .await
            .unwrap()
            .join("\n");
        assert!(plan.contains("sessions"), "{plan}");
        // PostgreSQL reads a table this small whole, whatever its indexes; SQLite, without
        // statistics, takes the index that matches the most filters, which is the point.
        if backend() == "sqlite" {
            assert!(plan.contains(index), "{index} not in {plan}");
        }
    }
    store.close().await;
}
