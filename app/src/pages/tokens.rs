//! `/tokens`: the user's API tokens for the CLI and other tools: create (the secret is shown
//! once), see when each was last used, revoke; and how database clients (psql, mysql, drivers)
//! reach connections through Loupe with a token as their password.

use leptos::{prelude::*, task::spawn_local};
use loupe_protocol::{ApiToken, CreatedToken, NewToken};

use crate::{
    api,
    auth::Auth,
    components::feedback::{ErrorLine, ErrorPanel},
    format::{local_time, relative_time},
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
                    <td title=local_time(token.created_at)>{relative_time(token.created_at)}</td>
                    <td>{token.last_used_at.map(relative_time).unwrap_or_else(|| "never".into())}</td>
                    <td>{token.expires_at.map(local_time).unwrap_or_else(|| "never".into())}</td>
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
