//! `/sessions`: every session the user may see, newest first. Filters live in the URL (shareable,
//! Back works); pages load with "Load more"; new and changed sessions arrive live.

use std::collections::HashSet;

use leptos::prelude::*;
use leptos_router::{
    NavigateOptions,
    components::A,
    hooks::{use_navigate, use_query_map},
    params::ParamsMap,
};
use loupe_protocol::{
    Count, ServerMessage, Session, SessionPage, SessionQuery, SessionStatus, SessionType, short_id,
    short_id_len,
};
use wasm_bindgen::JsCast;

use crate::{
    api,
    auth::Auth,
    components::{
        feedback::{ErrorLine, ErrorPanel},
        period::{self, PeriodPicker, PeriodProblem},
        session_bits::{Duration as DurationCell, StatusBadge, StopButton, TypeIcon, human_bytes},
    },
    format::{absolute_time, count, relative_time, time_zone},
    live::{LiveChannel, Watch},
    paged_list::PagedList,
    url_filters::with_param,
};

/// Sessions per page: a screenful and more, so "Load more" is worth a click.
const PAGE_SIZE: u32 = 100;

/// The list's query, read from the URL; an unusable period says which field is wrong.
fn query_from_url(params: &ParamsMap) -> Result<SessionQuery, PeriodProblem> {
    let text = |key: &str| params.get(key).filter(|value| !value.is_empty());
    let (from, to) = period::bounds(params)?;
    Ok(SessionQuery {
        user: text("user"),
        connection: text("connection"),
        session_type: text("type").and_then(|value| SessionType::parse(&value)),
        status: text("status"),
        from,
        to,
        id: text("id"),
        cursor: None,
        limit: Some(PAGE_SIZE),
    })
}

#[component]
pub fn SessionsPage() -> impl IntoView {
    let params = use_query_map();
    let navigate = use_navigate();
    let list = PagedList::<Session>::new();
    let PagedList {
        items: sessions,
        cursor,
        loading,
        error,
        ..
    } = list;
    // Counted on the first page only; moved by live arrivals.
    let total = RwSignal::new(None::<Count>);
    let fresh = RwSignal::new(HashSet::<String>::new());
    let users = LocalResource::new(api::users);
    let connections = LocalResource::new(api::connections);
    // Ticks once a second so running durations and relative times move.
    let now = RwSignal::new(js_sys::Date::now());
    if let Ok(handle) = set_interval_with_handle(
        move || now.set(js_sys::Date::now()),
        std::time::Duration::from_secs(1),
    ) {
        on_cleanup(move || handle.clear());
    }

    let load = move |append: bool| {
        let Ok(query) = query_from_url(&params.read_untracked()) else {
            return;
        };
        list.load(
            append,
            move |cursor| async move { api::sessions(&SessionQuery { cursor, ..query }).await },
            move |page: &SessionPage| {
                total.try_set(page.total);
            },
        );
    };

    // Live: the server filters by the same query and by who may see what. A watch per query;
    // the one before is dropped (unwatched) when the query changes.
    let on_message = move |message: ServerMessage| match message {
        ServerMessage::Session { session, .. } => {
            sessions.update(|list| {
                // A session on a page not loaded yet is not new: leave it to "Load more".
                let older_than_listed = list
                    .first()
                    .is_some_and(|newest| session.started_at < newest.started_at);
                match list.iter_mut().find(|known| known.id == session.id) {
                    Some(known) => *known = session,
                    None if older_than_listed => {}
                    None => {
                        // New and matching the filter (the server only sends those): counted.
                        total.update(|count| {
                            if let Some(count) = count {
                                count.value += 1;
                            }
                        });
                        fresh.update(|ids| {
                            ids.insert(session.id.clone());
                        });
                        let id = session.id.clone();
                        set_timeout(
                            move || {
                                fresh.try_update(|ids| {
                                    ids.remove(&id);
                                });
                            },
                            std::time::Duration::from_secs(3),
                        );
                        list.insert(0, session);
                    }
                }
            })
        }
        // Changes may have been missed (the connection dropped, or this tab fell behind).
        ServerMessage::Resync { .. } => load(false),
        _ => {}
    };
    let live = StoredValue::new_local(None::<Watch>);
    on_cleanup(move || live.set_value(None));
    let channel = LiveChannel::get();

    Effect::new(move |_| {
        // A period that cannot be used is an error on its field (the picker shows it); the list
        // is not read with it silently dropped.
        let Ok(query) = query_from_url(&params.read()) else {
            live.set_value(None);
            list.clear();
            total.set(None);
            return;
        };
        load(false);
        let watch = channel.watch_sessions(
            SessionQuery {
                cursor: None,
                limit: None,
                ..query
            },
            on_message,
        );
        live.set_value(Some(watch));
    });

    // Filters write the URL; the effect above reloads from it.
    let set_param = move |key: &'static str, value: String| {
        let url = with_param("/sessions", &params.read_untracked(), key, &value);
        navigate(&url, NavigateOptions::default());
    };
    let current = move |key: &'static str| params.read().get(key).unwrap_or_default();
    let period_ok = Memo::new(move |_| period::bounds(&params.read()).is_ok());
    // Ids are shown as long as needed to tell the listed sessions apart.
    let id_len = Memo::new(move |_| {
        sessions.with(|list| short_id_len(list.iter().map(|session| session.id.as_str())))
    });
    let zone = time_zone();
    let auth = expect_context::<Auth>();
    let action_error = RwSignal::new(None::<String>);

    view! {
        <section class="page-head">
            <h1 data-test="page-title">"Sessions"</h1>
            <p class="muted">"Every query and command run through Loupe, recorded event by event."</p>
        </section>
        <form class="card filters" aria-label="Filters" on:submit=|event| event.prevent_default()>
            <label>"User"
                <select data-test="filter-user" prop:value=move || current("user") on:change={let set_param = set_param.clone(); move |event| set_param("user", event_target_value(&event))}>
                    <option value="">"Anyone"</option>
                    {move || users.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|user| view! {
                        <option value=user.username.clone() selected=current("user") == user.username>{user.username.clone()}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Connection"
                <select data-test="filter-connection" prop:value=move || current("connection") on:change={let set_param = set_param.clone(); move |event| set_param("connection", event_target_value(&event))}>
                    <option value="">"Any"</option>
                    {move || connections.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|connection| view! {
                        <option value=connection.name.clone() selected=current("connection") == connection.name>{connection.name.clone()}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Type"
                <select data-test="filter-type" prop:value=move || current("type") on:change={let set_param = set_param.clone(); move |event| set_param("type", event_target_value(&event))}>
                    <option value="">"Any"</option>
                    {SessionType::ALL.map(|kind| view! { <option value=kind.as_str() selected=move || current("type") == kind.as_str()>{kind.as_str()}</option> })}
                </select>
            </label>
            <label>"Status"
                <select data-test="filter-status" prop:value=move || current("status") on:change={let set_param = set_param.clone(); move |event| set_param("status", event_target_value(&event))}>
                    <option value="">"Any"</option>
                    {SessionStatus::ALL.map(|status| view! { <option value=status.as_str() selected=move || current("status") == status.as_str()>{status.as_str().replace('_', " ")}</option> })}
                </select>
            </label>
            <PeriodPicker set=Callback::new({let set_param = set_param.clone(); move |(key, value)| set_param(key, value)}) current=Signal::from(params)/>
        </form>
        <p class="muted count" data-test="session-count">
            {move || total.get().map(|count| match (count.exact, count.value) {
                (true, 1) => "1 session".to_owned(),
                (true, value) => format!("{value} sessions"),
                (false, value) => format!("more than {value} sessions"),
            })}
        </p>
        {move || error.get().map(|message| view! { <ErrorPanel message=message retry=Callback::new(move |()| load(false))/> })}
        <ErrorLine error=action_error/>
        <Show when=move || !loading.get() && sessions.with(Vec::is_empty) && error.with(Option::is_none) && period_ok.get()>
            <div class="empty-state" data-test="empty">
                <h2>"No sessions match"</h2>
                <p>"Run a query from the Run page, or widen the filters."</p>
            </div>
        </Show>
        <Show when=move || sessions.with(|list| !list.is_empty())>
            <div class="table-wrap">
                <table class="table sessions" data-test="sessions-table">
                    <thead><tr><th>"User"</th><th>"Connection"</th><th>"Session"</th>
                        <th data-test="started-heading">"Started "<span class="muted zone">{format!("({zone})")}</span></th>
                        <th>"Duration"</th><th>"Status"</th><th class="num">"Output"</th></tr></thead>
                    <tbody>
                        <For each=move || sessions.get() key=|session| (session.id.clone(), session.status, session.counts.output_bytes, session.counts.rows, session.ended_at) children=move |session| {
                            let row_id = session.id.clone();
                            let is_fresh = move || fresh.with(|ids| ids.contains(&row_id));
                            let started = session.started_at;
                            let href = format!("/sessions/{}", session.id);
                            let id = session.id.clone();
                            let short = move || short_id(&id, id_len.get()).to_owned();
                            // A database session's output is its rows; a command's, its bytes.
                            let output = if session.session_type == SessionType::Database {
                                count(session.counts.rows, "row", "rows")
                            } else {
                                human_bytes(session.counts.output_bytes)
                            };
                            let exit = session.exit_code.filter(|code| *code != 0);
                            let stoppable = session.status == SessionStatus::Running
                                && auth.may_act_on(&session.user.id);
                            view! {
                                <tr data-test="session-row" data-id=session.id.clone() class="clickable" class:fresh=is_fresh
                                    on:click=open_row>
                                    <td data-cell="who">{session.user.username.clone()}</td>
                                    <td data-cell="conn"><TypeIcon kind=session.session_type/>" "{session.connection.name.clone()}</td>
                                    <td data-cell="what" class="mono"><A href=href attr:data-test="session-link" attr:title=session.id.clone()>{short}</A>
                                        <div class="muted summary">{session.summary.clone()}</div></td>
                                    <td data-cell="when" class="when">
                                        <time data-test="started-at" datetime=started.to_string()>{absolute_time(started)}</time>
                                        <div class="muted">{move || { now.track(); relative_time(started) }}</div>
                                    </td>
                                    <td data-cell="dur"><DurationCell session=session.clone() now=now/></td>
                                    <td data-cell="status" title=session.error.clone().unwrap_or_default()><StatusBadge status=session.status/>
                                        {exit.map(|code| view! { " "<span class="muted mono" data-test="exit-code">{format!("exit {code}")}</span> })}
                                        {stoppable.then(|| view! { " "<StopButton id=session.id.clone() error=action_error small=true/> })}</td>
                                    <td data-cell="out" class="num" data-test="session-output">{output}</td>
                                </tr>
                            }
                        }/>
                    </tbody>
                </table>
            </div>
        </Show>
        <Show when=move || cursor.with(Option::is_some)>
            <button class="button" data-test="load-more" disabled=move || loading.get() on:click=move |_| load(true)>"Load more"</button>
        </Show>
        <Show when=move || loading.get()><p class="muted">"Loading…"</p></Show>
    }
}

/// A click anywhere on a session's row opens it, as a click on its id link would (so the router
/// and the browser treat it alike). Links and buttons in the row keep their own meaning, and a
/// modified click on the id link opens a new tab as usual.
fn open_row(event: leptos::ev::MouseEvent) {
    let Some(clicked) = event
        .target()
        .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
    else {
        return;
    };
    let on_control = clicked
        .closest("a, button, input, select")
        .ok()
        .flatten()
        .is_some();
    if on_control || event.button() != 0 {
        return;
    }
    let link = clicked
        .closest("tr")
        .ok()
        .flatten()
        .and_then(|row| {
            row.query_selector("[data-test=session-link]")
                .ok()
                .flatten()
        })
        .and_then(|link| link.dyn_into::<web_sys::HtmlElement>().ok());
    // After this handler returns: the link's click bubbles up to the row again, and a handler
    // cannot be re-entered while it runs.
    if let Some(link) = link {
        set_timeout(move || link.click(), std::time::Duration::ZERO);
    }
}
