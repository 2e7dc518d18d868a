//! A running terminal session of the administrator's, made in the store directly, for a
//! recording a test or a bench makes itself through the terminal recorder.

use loupe_protocol::{SessionStatus, SessionType, Verb};
use loupe_server::store::{NewSessionRecord, Store};

/// Creates it, started at `started_at_us` (microseconds since the epoch) and described by
/// `summary`; its id. Panics without an `admin` account (the caller made one).
pub async fn running_terminal(store: &Store, summary: &str, started_at_us: i64) -> String {
    let admin = store
        .user_by_username("admin")
        .await
        .unwrap()
        .expect("an admin account");
    let id = uuid::Uuid::now_v7().to_string();
    store
        .create_session(&NewSessionRecord {
            id: id.clone(),
            user_id: admin.id.clone(),
            username: admin.username.clone(),
            connection_id: None,
            connection_name: "web-1".into(),
            connection_kind: "ssh".into(),
            session_type: SessionType::Ssh,
            verb: Verb::Connect,
            status: SessionStatus::Running,
            summary: summary.into(),
            input: summary.into(),
            node_id: "test".into(),
            started_at_us,
            labels: "{}".into(),
            rerun_of: None,
            agent: None,
        })
        .await
        .unwrap();
    id
}
