//! `/sessions/{id}`: one session: who, where, when, how it ended; its actions (re-run, copy id,
//! download, share); and its activity log, with output and result sets paged as you scroll
//! and, while it runs, arriving live.

use leptos::{prelude::*, task::spawn_local};
use leptos_router::{
    NavigateOptions,
    components::A,
    hooks::{use_navigate, use_params_map},
};
use loupe_protocol::{
    EventKind, ReviewQuery, SHORT_ID_MIN, Session, SessionStatus, SessionType, Stream, Verb,
    short_id,
};

use crate::{
    api,
    auth::Auth,
    clipboard::copy_text,
    components::{
        feedback::{ErrorLine, ErrorPanel},
        menu::dismiss_menu,
        session_bits::{
            Duration as DurationCell, InputText, StatusBadge, StopButton, TypeIcon, human_bytes,
        },
        share_panel::SharePanel,
        terminal_player::TerminalPlayer,
        timeline::Timeline,
    },
    format::absolute_time,
    live::{LiveChannel, Watch},
    session_feed::{Entry, SessionFeed},
    settings::ServerSettings,
};

#[component]
pub fn SessionDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    view! {
        {move || {
            let id = id();
            view! { <SessionDetail id=id/> }
        }}
    }
}

#[component]
fn SessionDetail(id: String) -> impl IntoView {
    let feed = SessionFeed::new();
    let SessionFeed {
        session,
        entries,
        problem: error,
    } = feed;
    let settings = ServerSettings::get();
    let channel = LiveChannel::get();
    let preview = Memo::new(move |_| settings.preview());
    let now = RwSignal::new(js_sys::Date::now());
    if let Ok(handle) = set_interval_with_handle(
        move || now.set(js_sys::Date::now()),
        std::time::Duration::from_secs(1),
    ) {
        on_cleanup(move || handle.clear());
    }

    // Stored events first, then the live tail on the tab's live channel. The page may be left
    // while this loads: every write after an await is a `try_` one, a no-op once disposed.
    let live = StoredValue::new_local(None::<Watch>);
    let missing = RwSignal::new(false);
    let load = {
        let id = id.clone();
        move || {
            let id = id.clone();
            spawn_local(async move {
                match api::session(&id).await {
                    Ok(found) => drop(session.try_set(Some(found))),
                    Err(failure) if failure.is_not_found() => {
                        missing.try_set(true);
                        return;
                    }
                    Err(failure) => return drop(error.try_set(Some(failure.to_string()))),
                }
                let mut after = 0;
                loop {
                    match api::events(&id, after).await {
                        Ok(page) => {
                            after = page.items.last().map_or(after, |event| event.seq);
                            let added = entries.try_update(|entries| {
                                entries.extend(page.items.into_iter().map(Entry::new))
                            });
                            if page.next_after.is_none() || added.is_none() {
                                break;
                            }
                        }
                        Err(failure) => return drop(error.try_set(Some(failure.to_string()))),
                    }
                }
                let running = session
                    .try_with_untracked(|session| {
                        session
                            .as_ref()
                            .is_some_and(|session| !session.status.is_final())
                    })
                    .unwrap_or(false);
                if running {
                    live.try_set_value(Some(feed.follow(channel, &id)));
                }
            });
        }
    };
    load();
    on_cleanup(move || live.set_value(None));
    // Trying again reads the session and its events afresh; the header stays meanwhile.
    let retry = Callback::new(move |()| {
        error.set(None);
        entries.set(Vec::new());
        load();
    });

    let shown_id = id.clone();
    let shared_id = id.clone();
    let header = HeaderState::new();
    view! {
        <Show when=move || missing.get()>
            <section class="page-head"><h1 data-test="page-title">"Session not found"</h1></section>
            <div class="empty-state" data-test="not-found">
                <p>"There is no session with the id "<code>{shown_id.clone()}</code>", or it is not shared with you. "
                    <A href="/sessions">"Back to the sessions"</A>"."</p>
            </div>
        </Show>
        {move || error.get().map(|message| view! { <ErrorPanel message=message retry=retry/> })}
        {move || session.get().map(|current| {
            let downloads_disabled = settings.downloads_disabled();
            view! {
                <SessionHeader session=current.clone() now=now downloads_disabled=downloads_disabled state=header/>
            }
        })}
        <ErrorLine error=header.action_error/>
        <Show when=move || header.sharing.get()>
            <SharePanel session_id=shared_id.clone() close=Callback::new(move |()| header.sharing.set(false))/>
        </Show>
        {
            // A terminal session plays back (or is followed live) in a terminal of its own.
            let is_terminal = Memo::new(move |_| session.with(|current| {
                current.as_ref().is_some_and(|current| {
                    current.session_type == SessionType::Ssh && current.verb == Verb::Connect
                })
            }));
            // Keystrokes are an output event of their own, where the connection records them.
            let keystrokes = Memo::new(move |_| entries.with(|entries| {
                entries.iter().any(|entry| {
                    entry.event.kind == EventKind::Output && entry.event.summary == Stream::Stdin.as_str()
                })
            }));
            let id = id.clone();
            view! {
                <Show when=move || is_terminal.get()>
                    <TerminalPlayer id=id.clone() session=session/>
                    <p class="muted small" data-test="keystrokes-note">{move || if keystrokes.get() {
                        "Keystrokes were recorded as well as what the terminal showed."
                    } else {
                        "Keystrokes are not recorded on this connection: what the terminal showed is."
                    }}</p>
                </Show>
            }
        }
        <Timeline feed=feed preview=preview test="timeline"/>
    }
}

/// What the header's controls hold. It lives with the page, not the header: the header is drawn
/// again on every change to the session (twice a second while it writes output), and an open
/// menu, a share form or an error must survive that.
#[derive(Clone, Copy)]
struct HeaderState {
    copied: RwSignal<bool>,
    action_error: RwSignal<Option<String>>,
    sharing: RwSignal<bool>,
    download_open: RwSignal<bool>,
    stopping: RwSignal<bool>,
}

impl HeaderState {
    fn new() -> HeaderState {
        HeaderState {
            copied: RwSignal::new(false),
            action_error: RwSignal::new(None),
            sharing: RwSignal::new(false),
            download_open: RwSignal::new(false),
            stopping: RwSignal::new(false),
        }
    }
}

#[component]
fn SessionHeader(
    session: Session,
    now: RwSignal<f64>,
    downloads_disabled: bool,
    state: HeaderState,
) -> impl IntoView {
    let HeaderState {
        copied,
        action_error,
        sharing,
        download_open,
        stopping,
    } = state;
    let navigate = use_navigate();
    let auth = expect_context::<Auth>();
    // What the server allows this user on this session, so the page offers only that: the owner
    // or an administrator stops, re-runs and shares it; a terminal or a session recorded by an
    // agent is not run again.
    let may_act = auth.may_act_on(&session.user.id);
    let rerunnable = may_act
        && session.agent.is_none()
        && !(session.session_type == SessionType::Ssh && session.verb == Verb::Connect);
    let running = session.status == SessionStatus::Running;
    let id = session.id.clone();
    let copy = {
        let id = id.clone();
        move |_| {
            let id = id.clone();
            spawn_local(async move { copy_text(&id, copied).await });
        }
    };
    let rerun = {
        let id = id.clone();
        move |_| {
            let confirmed = window()
                .confirm_with_message("Run this session's input again through its connection?")
                .unwrap_or(false);
            if !confirmed {
                return;
            }
            let (id, navigate) = (id.clone(), navigate.clone());
            spawn_local(async move {
                match api::rerun(&id).await {
                    Ok(new) => {
                        navigate(&format!("/sessions/{}", new.id), NavigateOptions::default())
                    }
                    // The header is drawn again on every change to the session: it may be gone.
                    Err(failure) => drop(action_error.try_set(Some(failure.to_string()))),
                }
            });
        }
    };
    let download_root = NodeRef::<leptos::html::Div>::new();
    dismiss_menu(download_open, download_root);
    let downloads = {
        let id = id.clone();
        move || {
            ["txt", "csv", "jsonl"].map(|format| {
                view! { <a class="menu-item" role="menuitem" href=format!("/api/sessions/{id}/download?format={format}") download="" data-test=format!("download-{format}")>{format}</a> }
            })
        }
    };
    view! {
        <section class="page-head session-head">
            <h1 data-test="page-title"><TypeIcon kind=session.session_type/>" "{session.connection.name.clone()}</h1>
            <p class="mono muted" data-test="session-id">{session.id.clone()}</p>
        </section>
        <div class="card facts" data-test="session-facts">
            <div><span class="muted">"User"</span>{session.user.display_name.clone()}</div>
            <div><span class="muted">"Connection"</span>{format!("{} ({})", session.connection.name, session.connection.kind)}</div>
            <div><span class="muted">"Started"</span>{absolute_time(session.started_at)}</div>
            <div><span class="muted">"Ended"</span>{session.ended_at.map(absolute_time).unwrap_or_else(|| "—".into())}</div>
            <div><span class="muted">"Duration"</span><DurationCell session=session.clone() now=now/></div>
            <div><span class="muted">"Status"</span><StatusBadge status=session.status/></div>
            <div><span class="muted">"Exit code"</span><span data-test="exit-code">{session.exit_code.map(|code| code.to_string()).unwrap_or_else(|| "—".into())}</span></div>
            <div><span class="muted">"Output"</span>{human_bytes(session.counts.output_bytes)}{session.truncated.then_some(" (truncated)")}</div>
            <div><span class="muted">"Rows"</span><span data-test="row-count">{session.counts.rows}</span></div>
            {session.rerun_of.clone().map(|original| {
                let (href, short) = (format!("/sessions/{original}"), short_id(&original, SHORT_ID_MIN).to_owned());
                view! { <div><span class="muted">"Re-run of"</span><A href=href attr:data-test="rerun-of">{short}</A></div> }
            })}
            {session.agent.clone().map(|agent| view! {
                <div class="wide" title="Sent to Loupe through the ingest API by another gateway or agent; Loupe did not run it">
                    <span class="muted">"Recorded by"</span>
                    <span data-test="recorded-by">{format!("agent token “{}”", agent.name)}</span>
                </div>
            })}
            {session.error.clone().map(|reason| view! { <div class="wide"><span class="muted">"Reason"</span><span class="error-text">{reason}</span></div> })}
        </div>
        <div class="actions">
            {(running && may_act).then(|| view! { <StopButton id=id.clone() error=action_error stopping=stopping/> })}
            {rerunnable.then(|| view! { <button class="button" data-test="rerun" on:click=rerun>"Re-run"</button> })}
            <button class="button" data-test="copy-id" on:click=copy>{move || if copied.get() { "Copied ✓" } else { "Copy session ID" }}</button>
            {if downloads_disabled {
                view! { <span class="muted" data-test="downloads-disabled">"Downloads are disabled by an administrator."</span> }.into_any()
            } else {
                view! {
                    <div class="dropdown" data-test="download-menu" node_ref=download_root>
                        <button class="button" aria-haspopup="menu" aria-expanded=move || download_open.get().to_string()
                            data-test="download-button" on:click=move |_| download_open.update(|open| *open = !*open)>"Download"</button>
                        <Show when=move || download_open.get()>
                            <div class="menu" role="menu" on:click=move |_| download_open.set(false)>{downloads.clone()}</div>
                        </Show>
                    </div>
                }.into_any()
            }}
            {may_act.then(|| view! { <button class="button" data-test="share" on:click=move |_| sharing.update(|open| *open = !*open)>"Share"</button> })}
        </div>
        {(session.status == SessionStatus::PendingReview).then(|| view! { <HeldNotice session_id=id.clone()/> })}
    }
}

/// A session held for review: says so, and links to the review deciding it.
#[component]
fn HeldNotice(session_id: String) -> impl IntoView {
    let review = LocalResource::new(move || {
        let query = ReviewQuery {
            session: Some(session_id.clone()),
            ..ReviewQuery::default()
        };
        async move {
            api::reviews(&query)
                .await
                .ok()
                .and_then(|page| page.items.into_iter().next())
        }
    });
    view! {
        <p class="card review-notice waiting" data-test="session-waiting">
            "Waiting for approval: it runs the moment a reviewer approves."
            {move || review.get().flatten().map(|review| view! { " "<A href=format!("/reviews/{}", review.id)>"See the review"</A> })}
        </p>
        // Nothing has run yet, so the timeline is empty: the held input is the review's.
        {move || review.get().flatten().and_then(|review| {
            let kind = review.connection.kind.clone();
            review.input.map(|input| view! { <InputText text=input connection_kind=kind test="held-input"/> })
        })}
    }
}
