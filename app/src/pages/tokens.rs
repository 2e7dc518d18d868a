//! `/tokens`: the user's API tokens for the CLI and other tools: create (the secret is shown
//! once), see when each was last used, revoke; and how database clients (psql, mysql, drivers)
//! reach connections through Loupe with a token as their password; and the SSH public keys
//! that let `ssh` open terminals through Loupe's SSH listener.

use leptos::{prelude::*, task::spawn_local};
use loupe_protocol::{ApiToken, CreatedToken, NewSshKey, NewToken, SshKey};

use crate::{
    api,
    auth::Auth,
    components::feedback::{ErrorLine, ErrorPanel},
    format::{absolute_time, relative_time},
    settings::ServerSettings,
};

#[component]
pub fn TokensPage() -> impl IntoView {
    let tokens = LocalResource::new(api::tokens);
    let error = RwSignal::new(None::<String>);
    let created = RwSignal::new(None::<CreatedToken>);
    let name = RwSignal::new(String::new());
    let expires = RwSignal::new(String::new());

    let create = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let expires_in_days = match expires.get().trim() {
            "" => None,
            days => match days.parse() {
                Ok(days) => Some(days),
                Err(_) => {
                    error.set(Some("Expires in: a whole number of days".into()));
                    return;
                }
            },
        };
        let new = NewToken {
            name: name.get(),
            expires_in_days,
        };
        spawn_local(async move {
            match api::create_token(&new).await {
                Ok(token) => {
                    created.set(Some(token));
                    error.set(None);
                    name.set(String::new());
                    expires.set(String::new());
                    tokens.refetch();
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };

    view! {
        <section class="page-head">
            <h1 data-test="page-title">"API tokens"</h1>
            <p class="muted">"For the loupe CLI and other tools: send as " <code>"Authorization: Bearer …"</code> "."</p>
        </section>
        <form class="card form-row" on:submit=create data-test="token-form">
            <label>"Name" <input data-test="token-name" required bind:value=name placeholder="laptop"/></label>
            <label>"Expires in (days)" <input data-test="token-expires" inputmode="numeric" bind:value=expires placeholder="never"/></label>
            <button class="button primary" type="submit" data-test="token-create">"Create token"</button>
        </form>
        <ErrorLine error=error/>
        {move || created.get().map(|token| view! {
            <div class="card secret" data-test="token-secret">
                <p><strong>"Copy this token now."</strong> " It is not shown again."</p>
                <code class="mono">{token.secret}</code>
            </div>
        })}
        <DatabaseClients/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || tokens.get().map(|answer| match answer {
                Ok(list) if list.is_empty() => view! {
                    <div class="empty-state"><p>"No tokens yet."</p></div>
                }.into_any(),
                Ok(list) => view! { <TokenTable tokens=list error=error on_change=Callback::new(move |()| tokens.refetch())/> }.into_any(),
                Err(failure) => view! { <ErrorPanel message=failure.to_string() retry=Callback::new(move |()| tokens.refetch())/> }.into_any(),
            })}
        </Transition>
        <SshKeys/>
    }
}

/// Where psql and mysql connect, as this user, and the certificate the listeners offer; nothing
/// when the server listens for neither.
#[component]
fn DatabaseClients() -> impl IntoView {
    let settings = ServerSettings::get();
    let auth = expect_context::<Auth>();
    move || {
        let listeners = settings.read()?.listeners;
        if listeners.postgres.is_none() && listeners.mysql.is_none() {
            return None;
        }
        let user = auth
            .user
            .with(|user| user.as_ref().map(|user| user.username.clone()))
            .unwrap_or_else(|| "<you>".into());
        let split = |address: &str| {
            let (host, port) = address.rsplit_once(':').unwrap_or((address, ""));
            (host.to_owned(), port.to_owned())
        };
        let postgres = listeners.postgres.as_deref().map(|address| {
            let (host, port) = split(address);
            format!(
                "PGPASSWORD=<token> psql 'host={host} port={port} user={user} dbname=<connection> sslmode=require'"
            )
        });
        let mysql = listeners.mysql.as_deref().map(|address| {
            let (host, port) = split(address);
            format!("MYSQL_PWD=<token> mysql --ssl -h {host} -P {port} -u {user} -D <connection>")
        });
        Some(view! {
            <section class="card" data-test="database-clients">
                <h2>"Database clients"</h2>
                <p class="muted">"psql, mysql and drivers reach PostgreSQL and MySQL connections through Loupe: the database is the connection's name, the password an API token. " <code>"loupe connect <connection>"</code> " prints the line."</p>
                {postgres.map(|line| view! { <p>"PostgreSQL"</p><pre class="mono" data-test="client-psql">{line}</pre> })}
                {mysql.map(|line| view! { <p>"MySQL, MariaDB"</p><pre class="mono" data-test="client-mysql">{line}</pre> })}
                {listeners.tls_fingerprint.map(|fingerprint| view! {
                    <p class="muted">"TLS certificate (SHA-256): " <code class="mono" data-test="tls-fingerprint">{fingerprint}</code></p>
                })}
            </section>
        })
    }
}

/// The user's SSH public keys (add, remove), and how `ssh` reaches terminal connections through
/// Loupe's SSH listener when it is on.
#[component]
fn SshKeys() -> impl IntoView {
    let settings = ServerSettings::get();
    let auth = expect_context::<Auth>();
    let keys = LocalResource::new(api::ssh_keys);
    let public_key = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let add = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let new = NewSshKey {
            name: None,
            public_key: public_key.get(),
        };
        spawn_local(async move {
            match api::add_ssh_key(&new).await {
                Ok(_) => {
                    error.set(None);
                    public_key.set(String::new());
                    keys.refetch();
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };
    let listener = move || {
        let listeners = settings.read()?.listeners;
        let address = listeners.ssh?;
        let (host, port) = address.rsplit_once(':').unwrap_or((&address, "22"));
        let user = auth
            .user
            .with(|user| user.as_ref().map(|user| user.username.clone()))
            .unwrap_or_else(|| "<you>".into());
        let line = format!("ssh -p {port} {user}+<connection>@{host}");
        Some(view! {
            <pre class="mono" data-test="client-ssh">{line}</pre>
            {listeners.ssh_host_key.map(|fingerprint| view! {
                <p class="muted">"Host key: " <code class="mono" data-test="ssh-host-key">{fingerprint}</code></p>
            })}
        })
    };
    view! {
        <section class="card" data-test="ssh-keys">
            <h2>"SSH keys"</h2>
            <p class="muted">"Shell and ssh connections open in your own terminal with " <code>"loupe ssh <connection>"</code> ", or with plain ssh through Loupe's SSH listener and one of these keys."</p>
            {listener}
            <form class="form-row" on:submit=add>
                <label class="grow">"Public key (a line of ~/.ssh/id_ed25519.pub)"
                    <input data-test="ssh-key-input" required bind:value=public_key placeholder="ssh-ed25519 AAAA… you@laptop"/>
                </label>
                <button class="button primary" type="submit" data-test="ssh-key-add">"Add key"</button>
            </form>
            <ErrorLine error=error/>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || keys.get().map(|answer| match answer {
                    Ok(list) if list.is_empty() => view! { <p class="muted">"No keys yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="plain-list">
                            {list.into_iter().map(|key: SshKey| {
                                let id = key.id.clone();
                                let remove = move |_| {
                                    let id = id.clone();
                                    spawn_local(async move {
                                        match api::remove_ssh_key(&id).await {
                                            Ok(()) => keys.refetch(),
                                            Err(failure) => error.set(Some(failure.to_string())),
                                        }
                                    });
                                };
                                view! {
                                    <li data-test="ssh-key-row">
                                        <strong>{key.name.clone()}</strong>" "
                                        <span class="muted">{key.algorithm.clone()}</span>" "
                                        <code class="mono">{key.fingerprint.clone()}</code>" "
                                        <span class="muted" title=absolute_time(key.created_at)>{relative_time(key.created_at)}</span>" "
                                        <button class="button danger small" data-test="ssh-key-remove" on:click=remove>"Remove"</button>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(failure) => view! { <ErrorPanel message=failure.to_string() retry=Callback::new(move |()| keys.refetch())/> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn TokenTable(
    tokens: Vec<ApiToken>,
    error: RwSignal<Option<String>>,
    on_change: Callback<()>,
) -> impl IntoView {
    let rows = tokens
        .into_iter()
        .map(|token| {
            let id = token.id.clone();
            let revoke = move |_| {
                let id = id.clone();
                spawn_local(async move {
                    match api::revoke_token(&id).await {
                        Ok(()) => on_change.run(()),
                        Err(failure) => error.set(Some(failure.to_string())),
                    }
                });
            };
            let revoked = token.revoked_at.is_some();
            view! {
                <tr data-test="token-row">
                    <td>{token.name.clone()}</td>
                    <td class="mono">{format!("{}…", token.prefix)}</td>
                    <td title=absolute_time(token.created_at)>{relative_time(token.created_at)}</td>
                    <td>{token.last_used_at.map(relative_time).unwrap_or_else(|| "never".into())}</td>
                    <td>{token.expires_at.map(absolute_time).unwrap_or_else(|| "never".into())}</td>
                    <td>
                        {if revoked {
                            view! { <span class="badge muted-badge">"revoked"</span> }.into_any()
                        } else {
                            view! { <button class="button danger small" data-test="token-revoke" on:click=revoke>"Revoke"</button> }.into_any()
                        }}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="table">
            <thead><tr><th>"Name"</th><th>"Prefix"</th><th>"Created"</th><th>"Last used"</th><th>"Expires"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
