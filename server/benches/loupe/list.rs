//! `cargo xtask bench list`: the sessions list's first and 50th page for every filter combination. See `main.rs`.

use loupe_protocol::{SessionStatus, SessionType};
use loupe_server::store::{SessionFilter, Visibility};

use super::*;

const USERS: u64 = 300;
const CONNECTIONS: u64 = 40;
const TYPES: [&str; 4] = ["database", "command", "ssh", "application"];
const KINDS: [&str; 4] = ["postgres", "command", "ssh", "kubectl"];
const FILTERS: [&str; 5] = ["user", "connection", "type", "status", "period"];
/// The first page of every filter combination, p95, on both backends (issue #19).
const TARGET: Duration = Duration::from_millis(25);

fn status(rng: &mut Rng) -> &'static str {
    match rng.below(1000) {
        0..=29 => "running",
        30..=879 => "done",
        880..=959 => "failed",
        960..=979 => "cancelled",
        980..=989 => "rejected",
        _ => "interrupted",
    }
}

pub async fn run(backend: &str, sessions: usize) -> Result<()> {
    println!("\n== bench list on {backend}: {sessions} sessions");
    let database = TestDatabase::create_on(backend).await;
    let server = BenchServer::start(&database).await?;
    let seeded = Instant::now();
    seed(&database, sessions).await?;
    println!("seeded in {:.1} s", seeded.elapsed().as_secs_f64());

    let mut health: Vec<Duration> = Vec::new();
    for _ in 0..300 {
        health.push(server.timed_get("/healthz").await?.0);
    }
    let baseline = percentile(&mut health, 0.95);
    println!(
        "baseline GET /healthz (HTTP + one database round trip): p50 {:.2} ms, p95 {:.2} ms",
        ms(percentile(&mut health, 0.5)),
        ms(baseline)
    );
    // First as loaded, with the statistics the server gathered when it started on the empty
    // database (as a new installation that was bulk-loaded has them), then after ANALYZE (as
    // PRAGMA optimize, hourly and at start, or autovacuum leave them).
    let mut plans = None;
    let stage = if database.url().starts_with("sqlite") {
        "as loaded"
    } else {
        // Until a VACUUM sets the visibility map, every index-only scan reads the table as well:
        // the first page, which counts up to 10,000 matches, took up to 500 ms. Autovacuum does
        // this on its own within a minute of a bulk load (an insert-triggered vacuum, PostgreSQL
        // 13+), but it may be off (as on these machines); a plain VACUUM gathers no statistics.
        execute_once(&database, "VACUUM sessions").await?;
        "as loaded and vacuumed, no statistics"
    };
    let mut misses = pass(&server, &database, &mut plans, baseline, stage).await?;
    if database.url().starts_with("sqlite") {
        execute_once(&database, "ANALYZE").await?;
    } else {
        execute_once(&database, "VACUUM ANALYZE sessions").await?;
    }
    misses.extend(pass(&server, &database, &mut plans, baseline, "after ANALYZE").await?);
    server.stop().await?;
    if let Some(store) = plans {
        store.close().await;
    }
    drop(database);
    anyhow::ensure!(
        misses.is_empty(),
        "{} filter combinations missed the {} ms first-page p95 target on {backend}: {}",
        misses.len(),
        TARGET.as_millis(),
        misses.join(", ")
    );
    Ok(())
}

async fn execute_once(database: &TestDatabase, sql: &str) -> Result<()> {
    let seeder = Seeder::open(database).await?;
    seeder.execute(sql).await?;
    seeder.close().await;
    Ok(())
}

/// Every filter combination's first page (20 random picks) and 50th page (3 walks): prints a
/// line each, and the plan of any combination whose first-page p95 misses the target. Returns
/// the combinations that missed. `plans` is a second way into the database, only to ask for
/// plans, opened at the first miss (opening it refreshes SQLite's statistics, as a restart does).
async fn pass(
    server: &BenchServer,
    database: &TestDatabase,
    plans: &mut Option<Store>,
    baseline: Duration,
    stage: &str,
) -> Result<Vec<String>> {
    println!("-- {stage}");
    println!(
        "{:<38} {:>9} {:>9} {:>7} {:>9} {:>9}",
        "filters", "1st p50", "1st p95", "÷base", "50th p50", "50th p95"
    );
    let mut misses = Vec::new();
    let now = loupe_server::store::now_us();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut worst_first = Duration::ZERO;
    let mut worst_fiftieth = Duration::ZERO;
    for mask in 0u32..32 {
        let name: Vec<&str> = FILTERS
            .iter()
            .enumerate()
            .filter(|(bit, _)| mask & (1 << bit) != 0)
            .map(|(_, name)| *name)
            .collect();
        // Random values for the first page, as people pick them; the most used values for
        // the walk to page 50, so that as many combinations as possible have 50 pages.
        let query = |rng: &mut Rng, busiest: bool| {
            let mut pick = |n: u64| if busiest { 0 } else { rng.skewed(n) };
            let mut filter = SessionFilter {
                username: None,
                connection: None,
                session_type: None,
                statuses: Vec::new(),
                from_us: None,
                to_us: None,
                id_prefix: None,
                before: None,
                visibility: Visibility::All,
            };
            let mut parts = vec!["limit=50".to_owned()];
            if mask & 1 != 0 {
                let user = format!("user{:03}", pick(USERS));
                parts.push(format!("user={user}"));
                filter.username = Some(user);
            }
            if mask & 2 != 0 {
                let connection = format!("conn-{:02}", pick(CONNECTIONS));
                parts.push(format!("connection={connection}"));
                filter.connection = Some(connection);
            }
            if mask & 4 != 0 {
                let kind = TYPES[pick(4) as usize];
                parts.push(format!("type={kind}"));
                filter.session_type = SessionType::parse(kind);
            }
            if mask & 8 != 0 {
                let status = ["done", "failed", "running"][pick(3) as usize];
                parts.push(format!("status={status}"));
                filter.statuses.extend(SessionStatus::parse(status));
            }
            if mask & 16 != 0 {
                let end = now - pick(83) as i64 * DAY_US;
                let from = loupe_protocol::Timestamp::from_micros(end - 7 * DAY_US);
                parts.push(format!(
                    "from={from}&to={}",
                    loupe_protocol::Timestamp::from_micros(end)
                ));
                (filter.from_us, filter.to_us) = (Some(end - 7 * DAY_US), Some(end));
            }
            (parts.join("&"), filter)
        };
        let mut first = Vec::new();
        let mut slowest = (Duration::ZERO, None);
        for _ in 0..20 {
            let (path, filter) = query(&mut rng, false);
            let elapsed = server.timed_get(&format!("/api/sessions?{path}")).await?.0;
            if elapsed > slowest.0 {
                slowest = (elapsed, Some(filter));
            }
            first.push(elapsed);
        }
        let mut fiftieth = Vec::new();
        for _ in 0..3 {
            let (base, _) = query(&mut rng, true);
            let mut path = format!("/api/sessions?{base}");
            for page in 1..=50 {
                let (elapsed, response) = server.timed_get(&path).await?;
                if page == 50 {
                    fiftieth.push(elapsed);
                    break;
                }
                let body: SessionPage = response.json().await?;
                match body.next_cursor {
                    Some(cursor) => path = format!("/api/sessions?{base}&cursor={cursor}"),
                    None => break,
                }
            }
        }
        let first_p95 = percentile(&mut first, 0.95);
        worst_first = worst_first.max(first_p95);
        let missed = first_p95 > TARGET;
        let fiftieth_text = if fiftieth.is_empty() {
            (format!("{:>9}", "n/a"), format!("{:>9}", "<50 pages"))
        } else {
            let p95 = percentile(&mut fiftieth, 0.95);
            worst_fiftieth = worst_fiftieth.max(p95);
            (
                format!("{:>9.2}", ms(percentile(&mut fiftieth, 0.5))),
                format!("{:>9.2}", ms(p95)),
            )
        };
        let label = if name.is_empty() {
            "(none)".to_owned()
        } else {
            name.join("+")
        };
        println!(
            "{label:<38} {:>9.2} {:>9.2} {:>7.1} {} {}",
            ms(percentile(&mut first, 0.5)),
            ms(first_p95),
            first_p95.as_secs_f64() / baseline.as_secs_f64(),
            fiftieth_text.0,
            fiftieth_text.1
        );
        if missed {
            misses.push(format!("{label} ({stage})"));
            // The plan of the slowest first page says which index the database chose.
            if let (_, Some(filter)) = slowest {
                if plans.is_none() {
                    *plans = Some(Store::open(&Secret::new(database.url()), 1).await?);
                }
                let store = plans.as_ref().expect("opened above");
                for line in store.explain_list_sessions(&filter, 50).await? {
                    println!("    plan: {line}");
                }
            }
        }
    }
    println!(
        "worst p95 {stage}: first page {:.2} ms, 50th page {:.2} ms (target for the first page: under {} ms); healthz p95 {:.2} ms",
        ms(worst_first),
        ms(worst_fiftieth),
        TARGET.as_millis(),
        ms(baseline)
    );
    Ok(misses)
}

/// Writes users and sessions straight into the tables, in large multi-row inserts.
async fn seed(database: &TestDatabase, sessions: usize) -> Result<()> {
    let seeder = Seeder::open(database).await?;
    let now = loupe_server::store::now_us();
    let mut sql = String::from(
        "INSERT INTO users (id, username, display_name, role, disabled, created_at_us, updated_at_us) VALUES ",
    );
    for n in 0..USERS {
        let comma = if n == 0 { "" } else { "," };
        sql.push_str(&format!(
            "{comma}('u{n:03}', 'user{n:03}', 'User {n}', 'user', FALSE, {now}, {now})"
        ));
    }
    seeder.execute(&sql).await?;
    let mut rng = Rng(42);
    let batch = 2000;
    // One transaction: rows land all over a dozen indexes, and a commit per batch wrote most of
    // their pages to the WAL again each time (seeding took 400 s, mostly in write calls).
    seeder.execute("BEGIN").await?;
    let mut written = 0;
    while written < sessions {
        let mut sql = String::from(
            "INSERT INTO sessions (id, user_id, username, connection_name, connection_kind, session_type, verb, status, summary, input, node_id, started_at_us, ended_at_us, event_count, output_bytes) VALUES ",
        );
        for n in 0..batch.min(sessions - written) {
            let user = rng.skewed(USERS);
            let connection = rng.skewed(CONNECTIONS);
            let kind = (connection % 4) as usize;
            let started = now - (rng.unit() * 90.0 * DAY_US as f64) as i64;
            let status = status(&mut rng);
            let ended = if status == "running" {
                "NULL".to_owned()
            } else {
                (started + rng.below(60_000_000) as i64).to_string()
            };
            let seconds = (started / 1_000_000) as u64;
            let nanos = ((started % 1_000_000) * 1000) as u32;
            let id =
                uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, seconds, nanos));
            let comma = if n == 0 { "" } else { "," };
            sql.push_str(&format!(
                "{comma}('{id}', 'u{user:03}', 'user{user:03}', 'conn-{connection:02}', '{}', '{}', 'exec', '{status}', 'SELECT * FROM table_{}', '', 'bench', {started}, {ended}, 3, {})",
                KINDS[kind], TYPES[kind], rng.below(500), rng.below(1 << 20)
            ));
        }
        seeder.execute(&sql).await?;
        written += batch.min(sessions - written);
        if written % 100_000 == 0 {
            print!(".");
            std::io::stdout().flush()?;
        }
    }
    seeder.execute("COMMIT").await?;
    println!();
    seeder.close().await;
    Ok(())
}
