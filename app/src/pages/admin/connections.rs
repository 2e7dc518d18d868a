//! `/admin/connections`: the databases and commands people run through Loupe. URLs are typed
//! into a password field, sent once, and never shown again (the server does not return them).

use leptos::{prelude::*, task::spawn_local};
use loupe_protocol::{
    Approvals, CommandSettings, Connection, ConnectionChanges, ConnectionKind, InputMode,
    NewConnection, ReviewRules, SshSettings,
};

use crate::{
    api,
    auth::Auth,
    components::{
        feedback::{ErrorLine, ErrorPanel},
        review_bits::rules_summary,
        session_bits::TypeIcon,
    },
};

const KINDS: [ConnectionKind; 6] = [
    ConnectionKind::Postgres,
    ConnectionKind::Mysql,
    ConnectionKind::Sqlite,
    ConnectionKind::Command,
    ConnectionKind::Shell,
    ConnectionKind::Ssh,
];

#[component]
pub fn ConnectionsPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let connections = LocalResource::new(api::connections);
    let error = RwSignal::new(None::<String>);
    let refresh = Callback::new(move |()| connections.refetch());
    view! {
        <Show when=move || auth.is_admin()>
            <NewConnectionForm error=error on_created=refresh/>
        </Show>
        <ErrorLine error=error/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || connections.get().map(|answer| match answer {
                Ok(list) if list.is_empty() => view! { <div class="empty-state"><p>"No connections yet."</p></div> }.into_any(),
                Ok(list) => view! { <ConnectionTable connections=list error=error on_change=refresh/> }.into_any(),
                Err(failure) => view! { <ErrorPanel message=failure.to_string() retry=refresh/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn NewConnectionForm(error: RwSignal<Option<String>>, on_created: Callback<()>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let kind = RwSignal::new(ConnectionKind::Postgres);
    let url = RwSignal::new(String::new());
    let argv = RwSignal::new(String::new());
    let stdin = RwSignal::new(false);
    let timeout = RwSignal::new(String::new());
    let host = RwSignal::new(String::new());
    let port = RwSignal::new(String::new());
    let username = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    let record_input = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let Ok(timeout_seconds) = timeout_field(&timeout.get()) else {
            return error.set(Some("Timeout: a whole number of seconds".into()));
        };
        let port = match port.get().trim() {
            "" => None,
            text => match text.parse() {
                Ok(port) => Some(port),
                Err(_) => return error.set(Some("Port: a number from 1 to 65535".into())),
            },
        };
        // A key is recognised by its armour; anything else is a password.
        let typed = secret.get();
        let is_key = typed.trim_start().starts_with("-----BEGIN");
        let ssh = (kind.get() == ConnectionKind::Ssh).then(|| SshSettings {
            host: host.get().trim().to_owned(),
            port,
            username: username.get().trim().to_owned(),
            private_key: is_key.then(|| typed.clone()),
            password: (!is_key).then(|| typed.clone()),
            host_key: None,
        });
        let command = kind.get().runs_program().then(|| CommandSettings {
            argv: argv.get().split_whitespace().map(str::to_owned).collect(),
            input: if stdin.get() {
                InputMode::Stdin
            } else {
                InputMode::Argument
            },
            ..CommandSettings::default()
        });
        let new = NewConnection {
            name: name.get(),
            kind: kind.get(),
            session_type: None,
            url: kind.get().is_database().then(|| url.get()),
            command,
            ssh,
            record_input: kind.get().is_terminal().then(|| record_input.get()),
            timeout_seconds,
            tags: Vec::new(),
            review: None,
        };
        spawn_local(async move {
            match api::create_connection(&new).await {
                Ok(_) => {
                    error.set(None);
                    name.set(String::new());
                    url.set(String::new());
                    argv.set(String::new());
                    secret.set(String::new());
                    on_created.run(());
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };
    view! {
        <form class="card form-row" on:submit=submit data-test="connection-form">
            <label>"Name" <input data-test="new-connection-name" required bind:value=name placeholder="pg-prod"/></label>
            <label>"Kind"
                <select data-test="new-connection-kind" on:change=move |event| kind.set(ConnectionKind::parse(&event_target_value(&event)).unwrap_or(ConnectionKind::Postgres))>
                    {KINDS.map(|option| view! { <option value=option.as_str()>{option.as_str()}</option> })}
                </select>
            </label>
            <Show when=move || kind.get().is_database()>
                <label class="grow">"URL (with its password; never shown again)"
                    <input data-test="new-connection-url" type="password" autocomplete="off" required bind:value=url placeholder="postgres://user:password@host:5432/db"/>
                </label>
            </Show>
            <Show when=move || matches!(kind.get(), ConnectionKind::Postgres | ConnectionKind::Mysql)>
                <p class="muted small" data-test="url-tls-hint">"TLS toward the target as the URL says: TLS when offered by default; "
                    <code>"?sslmode=verify-full&sslrootcert=/path/ca.pem"</code>" (PostgreSQL) or "
                    <code>"?ssl-mode=VERIFY_IDENTITY&ssl-ca=/path/ca.pem"</code>" (MySQL) checks its certificate."</p>
            </Show>
            <Show when=move || kind.get().runs_program()>
                <label class="grow">"Program and fixed arguments" <input data-test="new-connection-argv" required bind:value=argv placeholder=move || if kind.get() == ConnectionKind::Shell { "bash -l" } else { "sh -c" }/></label>
                <label>"Input as"
                    <select on:change=move |event| stdin.set(event_target_value(&event) == "stdin")>
                        <option value="argument">"last argument"</option>
                        <option value="stdin">"standard input"</option>
                    </select>
                </label>
            </Show>
            <Show when=move || kind.get() == ConnectionKind::Ssh>
                <label>"Host" <input data-test="new-connection-host" required bind:value=host placeholder="web-1.internal"/></label>
                <label>"Port" <input inputmode="numeric" bind:value=port placeholder="22"/></label>
                <label>"User" <input data-test="new-connection-username" required bind:value=username placeholder="deploy"/></label>
                <label class="grow">"Private key (OpenSSH format) or password; never shown again"
                    <textarea data-test="new-connection-secret" required autocomplete="off" rows="2" prop:value=move || secret.get() on:input=move |event| secret.set(event_target_value(&event))></textarea>
                </label>
            </Show>
            <Show when=move || kind.get().is_terminal()>
                <label><input type="checkbox" data-test="new-connection-record-input" prop:checked=move || record_input.get() on:change=move |event| record_input.set(event_target_checked(&event))/>" Record keystrokes too"</label>
                <p class="muted small">"Interactive terminals are recorded but not held for command review: review applies to single commands run on the connection."</p>
            </Show>
            <label>"Timeout (s)" <input inputmode="numeric" bind:value=timeout placeholder="default"/></label>
            <button class="button primary" type="submit" data-test="create-connection">"Add connection"</button>
        </form>
    }
}

#[component]
fn ConnectionTable(
    connections: Vec<Connection>,
    error: RwSignal<Option<String>>,
    on_change: Callback<()>,
) -> impl IntoView {
    let auth = expect_context::<Auth>();
    let rows = connections
        .into_iter()
        .map(|connection| {
            let check = RwSignal::new(None::<(bool, String)>);
            let editing = RwSignal::new(false);
            let changing = RwSignal::new(false);
            let edited = connection.clone();
            let (rules_id, rules) = (connection.id.clone(), connection.review.clone());
            let summary = rules_summary(&connection.review);
            let (test_id, delete_id, name) = (connection.id.clone(), connection.id.clone(), connection.name.clone());
            let target = match &connection.command {
                Some(command) => {
                    let input = if command.input == InputMode::Stdin { "stdin" } else { "argument" };
                    let env = if command.env_names.is_empty() {
                        String::new()
                    } else {
                        // Values are write-only: only their names come back.
                        format!("; env {} ••••••", command.env_names.join(", "))
                    };
                    format!("{} ({input}{env})", command.argv.join(" "))
                }
                None if connection.ssh.is_some() => {
                    let ssh = connection.ssh.clone().expect("checked");
                    let pinned = ssh
                        .host_key_fingerprint
                        .map_or_else(|| "host key not pinned: test to pin it".to_owned(), |print| format!("host key {print}"));
                    format!("{}@{}:{} ({} ••••••; {pinned})", ssh.username, ssh.host, ssh.port, ssh.auth)
                }
                None if connection.has_url => "URL stored ••••••".into(),
                None => "no URL".into(),
            };
            let actions = auth.is_admin().then(|| view! {
                <button class="button small" data-test="test-connection" on:click=move |_| {
                    let id = test_id.clone();
                    check.set(Some((true, "Testing…".into())));
                    spawn_local(async move {
                        match api::test_connection(&id).await {
                            Ok(answer) => check.set(Some((answer.ok, format!("{} ({} ms)", answer.message, answer.elapsed_ms)))),
                            Err(failure) => check.set(Some((false, failure.to_string()))),
                        }
                    });
                }>"Test"</button>
                <button class="button small danger" data-test="delete-connection" on:click=move |_| {
                    if !window().confirm_with_message(&format!("Delete the connection {name}? Its sessions stay.")).unwrap_or(false) {
                        return;
                    }
                    let id = delete_id.clone();
                    spawn_local(async move {
                        match api::delete_connection(&id).await {
                            Ok(()) => on_change.run(()),
                            Err(failure) => error.set(Some(failure.to_string())),
                        }
                    });
                }>"Delete"</button>
                <button class="button small" data-test="edit-connection" on:click=move |_| changing.update(|open| *open = !*open)>"Edit…"</button>
                <button class="button small" data-test="edit-reviews" on:click=move |_| editing.update(|open| *open = !*open)>"Reviews…"</button>
            });
            view! {
                <tr data-test="connection-row" data-name=connection.name.clone()>
                    <td><TypeIcon kind=connection.session_type/>" "<span class="mono">{connection.name.clone()}</span></td>
                    <td>{connection.kind.as_str()}</td>
                    <td class="mono" data-test="connection-target">{target}</td>
                    <td>{connection.timeout_seconds.map(|seconds| format!("{seconds} s")).unwrap_or_else(|| "default".into())}</td>
                    <td data-test="connection-reviews">{summary}</td>
                    <td>
                        {actions}
                        {move || check.get().map(|(ok, message)| view! {
                            <div class=if ok { "ok-text" } else { "error-text" } data-test="connection-check">{message}</div>
                        })}
                    </td>
                </tr>
                <Show when=move || changing.get()>
                    <tr><td colspan="6">
                        <ConnectionEditor connection=edited.clone() error=error on_saved=Callback::new(move |()| { changing.set(false); on_change.run(()); })/>
                    </td></tr>
                </Show>
                <Show when=move || editing.get()>
                    <tr><td colspan="6">
                        <RulesEditor id=rules_id.clone() rules=rules.clone() error=error on_saved=Callback::new(move |()| { editing.set(false); on_change.run(()); })/>
                    </td></tr>
                </Show>
            }
        })
        .collect_view();
    view! {
        <table class="table" data-test="connections-table">
            <thead><tr><th>"Name"</th><th>"Kind"</th><th>"Target"</th><th>"Timeout"</th><th>"Reviews"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

/// Sends `changes` to connection `id`; `on_saved` runs once they are stored (the editors close
/// then), a refusal goes to `error`.
fn save_changes(
    id: String,
    changes: ConnectionChanges,
    error: RwSignal<Option<String>>,
    on_saved: Callback<()>,
) {
    spawn_local(async move {
        match api::update_connection(&id, &changes).await {
            Ok(_) => {
                error.try_set(None);
                on_saved.run(());
            }
            Err(failure) => drop(error.try_set(Some(failure.to_string()))),
        }
    });
}

/// The timeout field: empty for none given, else whole seconds.
fn timeout_field(text: &str) -> Result<Option<u32>, std::num::ParseIntError> {
    match text.trim() {
        "" => Ok(None),
        text => text.parse().map(Some),
    }
}

/// A connection's name, timeout and, for a database, its URL: a new URL replaces the stored one
/// (rotating a password needs no delete and re-create), and like the first it is typed into a
/// password field, sent once and never shown; left empty, the stored URL stays.
#[component]
fn ConnectionEditor(
    connection: Connection,
    error: RwSignal<Option<String>>,
    on_saved: Callback<()>,
) -> impl IntoView {
    let name = RwSignal::new(connection.name.clone());
    let timeout = RwSignal::new(
        connection
            .timeout_seconds
            .map(|seconds| seconds.to_string())
            .unwrap_or_default(),
    );
    let url = RwSignal::new(String::new());
    let takes_url = connection.kind.is_database();
    let id = connection.id.clone();
    let save = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let Ok(timeout_seconds) = timeout_field(&timeout.get()) else {
            return error.set(Some("Timeout: a whole number of seconds".into()));
        };
        let changes = ConnectionChanges {
            name: Some(name.get().trim().to_owned()),
            url: Some(url.get()).filter(|url| !url.is_empty()),
            timeout_seconds,
            ..ConnectionChanges::default()
        };
        save_changes(id.clone(), changes, error, on_saved);
    };
    view! {
        <form class="rules-editor" data-test="connection-editor" on:submit=save>
            <label>"Name" <input data-test="edit-name" required bind:value=name/></label>
            <label>"Timeout (s; empty keeps it)" <input data-test="edit-timeout" inputmode="numeric" bind:value=timeout placeholder="unchanged"/></label>
            {takes_url.then(|| view! {
                <label class="grow">"New URL (empty keeps the stored one)"
                    <input data-test="edit-url" type="password" autocomplete="off" bind:value=url placeholder="postgres://user:new-password@host:5432/db"/>
                </label>
            })}
            <button class="button primary" type="submit" data-test="edit-save">"Save"</button>
        </form>
    }
}

/// A connection's review rules: what needs approval, who reviews, how many approvals, the
/// longest access window and how long a request waits.
#[component]
fn RulesEditor(
    id: String,
    rules: ReviewRules,
    error: RwSignal<Option<String>>,
    on_saved: Callback<()>,
) -> impl IntoView {
    let jit = RwSignal::new(rules.jit_access);
    let commands = RwSignal::new(rules.command_review);
    // Reviewer groups are picked from the groups that exist; names kept in the order chosen.
    let directory = LocalResource::new(api::groups);
    let groups = RwSignal::new(rules.reviewer_groups.clone());
    let count = RwSignal::new(match rules.approvals {
        Approvals::EachGroup => String::new(),
        Approvals::Count(count) => count.to_string(),
    });
    let max_hours = RwSignal::new((f64::from(rules.max_access_seconds) / 3600.0).to_string());
    let pending_minutes = RwSignal::new((rules.pending_seconds / 60).max(1).to_string());
    let save = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let approvals = match count.get().trim() {
            "" => Approvals::EachGroup,
            text => match text.parse() {
                Ok(count) => Approvals::Count(count),
                Err(_) => {
                    return error.set(Some(
                        "Approvals: a whole number, or empty for one per group".into(),
                    ));
                }
            },
        };
        let Ok(hours) = max_hours.get().trim().parse::<f64>() else {
            return error.set(Some("Longest access: a number of hours".into()));
        };
        let Ok(minutes) = pending_minutes.get().trim().parse::<u32>() else {
            return error.set(Some("Requests wait: a whole number of minutes".into()));
        };
        let review = ReviewRules {
            jit_access: jit.get(),
            command_review: commands.get(),
            // A deleted group has no box to untick: keep only groups that exist.
            reviewer_groups: match directory.get() {
                Some(Ok(existing)) => groups
                    .get()
                    .into_iter()
                    .filter(|name| existing.iter().any(|group| group.name == *name))
                    .collect(),
                _ => groups.get(),
            },
            approvals,
            max_access_seconds: (hours * 3600.0).round() as u32,
            pending_seconds: minutes.saturating_mul(60),
        };
        let changes = ConnectionChanges {
            review: Some(review),
            ..ConnectionChanges::default()
        };
        save_changes(id.clone(), changes, error, on_saved);
    };
    view! {
        <form class="rules-editor" data-test="rules-editor" on:submit=save>
            <label><input type="checkbox" data-test="rules-jit" bind:checked=jit/>" Access needs approval (JIT)"</label>
            <label><input type="checkbox" data-test="rules-commands" bind:checked=commands/>" Each command needs approval"</label>
            <fieldset class="grow group-picker" data-test="rules-groups">
                <legend>"Reviewer groups"</legend>
                {move || match directory.get() {
                    None => view! { <span class="muted">"Loading groups…"</span> }.into_any(),
                    Some(Err(failure)) => view! { <span class="error-text">{failure.to_string()}</span> }.into_any(),
                    Some(Ok(list)) if list.is_empty() => view! { <span class="muted">"No groups yet: add one under Groups."</span> }.into_any(),
                    Some(Ok(list)) => list.into_iter().map(|group| {
                        let name = group.name.clone();
                        let toggled = name.clone();
                        view! {
                            <label class="check" data-test="rules-group" data-group=group.name.clone()>
                                <input type="checkbox" prop:checked=move || groups.with(|chosen| chosen.contains(&name))
                                    on:change=move |event| {
                                        let on = event_target_checked(&event);
                                        groups.update(|chosen| {
                                            chosen.retain(|known| *known != toggled);
                                            if on {
                                                chosen.push(toggled.clone());
                                            }
                                        });
                                    }/>
                                " "{group.name.clone()}
                            </label>
                        }
                    }).collect_view().into_any(),
                }}
            </fieldset>
            <label>"Approvals" <input data-test="rules-count" inputmode="numeric" bind:value=count placeholder="one per group"/></label>
            <label>"Longest access (h)" <input inputmode="decimal" bind:value=max_hours/></label>
            <label>"Requests wait (min)" <input inputmode="numeric" bind:value=pending_minutes/></label>
            <button class="button primary" type="submit" data-test="rules-save">"Save rules"</button>
        </form>
    }
}
