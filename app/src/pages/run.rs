//! `/run`: choose a connection, write SQL or a command, run it (button or Ctrl+Enter), and watch
//! the output stream in below, with a link to the full session.

use leptos::{prelude::*, task::spawn_local};
use leptos_router::components::A;
use loupe_protocol::{
    AccessRequest, Connection, Review, ReviewKind, ReviewQuery, ReviewState, RunRequest,
    SessionStatus,
};

use crate::{
    api,
    auth::Auth,
    components::{
        feedback::ErrorLine,
        live_terminal::LiveTerminal,
        review_bits::{approvals_text, human_seconds},
        session_bits::{StatusBadge, StopButton},
        timeline::Timeline,
    },
    format::absolute_time,
    live::{LiveChannel, Watch, watch_reviews},
    pages::not_found::NotAllowed,
    session_feed::SessionFeed,
    settings::ServerSettings,
};

#[component]
pub fn RunPage() -> impl IntoView {
    // Auditors read; they do not run (the API refuses them too).
    if !expect_context::<Auth>().may_run() {
        return view! {
            <section class="page-head"><h1 data-test="page-title">"Run"</h1></section>
            <NotAllowed for_whom="Engineers and administrators"/>
        }
        .into_any();
    }
    run_form().into_any()
}

/// The page itself, for those who may run.
fn run_form() -> impl IntoView {
    let connections = LocalResource::new(api::connections);
    let connection = RwSignal::new(String::new());
    let input = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let selected = Memo::new(move |_| {
        let name = connection.get();
        connections
            .get()
            .and_then(Result::ok)
            .and_then(|list| list.into_iter().find(|candidate| candidate.name == name))
    });
    // The review holding the session, while it waits.
    let held_by = RwSignal::new(None::<String>);
    // An interactive terminal opened on a shell or ssh connection: (connection, how many
    // opened so far, so opening again starts a new one).
    let terminal = RwSignal::new(None::<(String, u32)>);
    // The run's session as it streams in: the same reducer as the session page.
    let feed = SessionFeed::new();
    let session = feed.session;
    let settings = ServerSettings::get();
    let preview = Memo::new(move |_| settings.preview());
    let channel = LiveChannel::get();
    let live = StoredValue::new_local(None::<Watch>);
    on_cleanup(move || live.set_value(None));

    let run = move || {
        let request = RunRequest {
            connection: connection.get_untracked(),
            input: input.get_untracked(),
            reason: Some(reason.get_untracked()).filter(|text| !text.trim().is_empty()),
        };
        if request.connection.is_empty() {
            return error.set(Some("Choose a connection first".into()));
        }
        live.set_value(None);
        feed.entries.set(Vec::new());
        spawn_local(async move {
            match api::run(&request).await {
                Ok(started) => {
                    error.set(None);
                    held_by.set(None);
                    if started.status == SessionStatus::PendingReview {
                        let query = ReviewQuery {
                            session: Some(started.id.clone()),
                            ..ReviewQuery::default()
                        };
                        if let Ok(page) = api::reviews(&query).await {
                            held_by.try_set(page.items.first().map(|review| review.id.clone()));
                        }
                    }
                    let id = started.id.clone();
                    session.set(Some(started));
                    live.try_set_value(Some(feed.follow(channel, &id)));
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };

    view! {
        <section class="page-head">
            <h1 data-test="page-title">"Run"</h1>
            <p class="muted">"Run SQL or a command through a connection; the output streams in as it is recorded."</p>
        </section>
        <form class="card run-form" on:submit=move |event| { event.prevent_default(); run(); }>
            <label>"Connection"
                <select data-test="run-connection" on:change=move |event| connection.set(event_target_value(&event))>
                    <option value="">"Choose…"</option>
                    {move || connections.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|connection| view! {
                        <option value=connection.name.clone()>{format!("{} ({})", connection.name, connection.kind.as_str())}</option>
                    }).collect_view()}
                </select>
            </label>
            {move || selected.get().filter(|chosen| chosen.review.is_active()).map(|chosen| view! { <ReviewNotice connection=chosen reason=reason run_error=error/> })}
            <label>"SQL or command (Ctrl+Enter runs it)"
                <textarea data-test="run-input" rows="6" class="mono" bind:value=input
                    on:keydown=move |event| if event.key() == "Enter" && (event.ctrl_key() || event.meta_key()) { event.prevent_default(); run(); }>
                </textarea>
            </label>
            <div class="form-actions">
                <button class="button primary" type="submit" data-test="run-submit">"Run"</button>
                {move || selected.get().filter(|chosen| chosen.kind.is_terminal()).map(|chosen| view! {
                    <button class="button" type="button" data-test="open-terminal" on:click=move |_| {
                        let opened = terminal.get_untracked().map_or(0, |(_, count)| count);
                        terminal.set(Some((chosen.name.clone(), opened + 1)));
                    }>"Open a terminal"</button>
                    <span class="muted small">"An interactive terminal is recorded but not held for command review."</span>
                })}
            </div>
        </form>
        {move || terminal.get().map(|(name, _)| view! { <LiveTerminal connection=name/> })}
        <ErrorLine error=error/>
        {move || session.get().map(|current| view! {
            <div class="run-status" data-test="run-status">
                <StatusBadge status=current.status/>
                {(current.status == SessionStatus::PendingReview).then(|| view! {
                    <span class="waiting" data-test="waiting-for-approval">"Waiting for approval…"</span>
                    {move || held_by.get().map(|review| view! { <A href=format!("/reviews/{review}") attr:data-test="run-review-link">"See the review"</A> })}
                })}
                {(current.status == SessionStatus::Running).then(|| view! { " "<StopButton id=current.id.clone() error=error/> })}
                " "<A href=format!("/sessions/{}", current.id) attr:data-test="run-session-link">"Open the session"</A>
            </div>
            {current.error.clone().filter(|_| current.status == SessionStatus::Rejected).map(|why| view! {
                <p class="error-text" role="alert" data-test="run-rejected">{why}</p>
            })}
        })}
        // The run as its session page shows it: the same timeline, live.
        <Show when=move || feed.entries.with(|entries| !entries.is_empty())>
            <Timeline feed=feed preview=preview test="run-output"/>
        </Show>
    }
}

/// What the chosen connection's review rules mean for this person: a justification for held
/// commands, and the state of their access (with the form to ask for it) where access is
/// reviewed. Follows the live channel, so an approval shows at once.
#[component]
fn ReviewNotice(
    connection: Connection,
    reason: RwSignal<String>,
    /// The Run page's error line: a refusal for want of access is cleared once access is granted.
    run_error: RwSignal<Option<String>>,
) -> impl IntoView {
    let rules = connection.review.clone();
    let needs = approvals_text(rules.approvals, &rules.reviewer_groups);
    view! {
        <div class="card review-notice" data-test="review-notice">
            {rules.command_review.then(|| view! {
                <p>"Commands on "<strong>{connection.name.clone()}</strong>" wait for " {needs.clone()} " before they run."</p>
                <label>"Justification (the reviewers read it)"
                    <input data-test="run-reason" bind:value=reason placeholder="Why this needs to run now"/>
                </label>
            })}
            {rules.jit_access.then(|| view! { <AccessPanel connection=connection.clone() run_error=run_error/> })}
        </div>
    }
}

#[component]
fn AccessPanel(connection: Connection, run_error: RwSignal<Option<String>>) -> impl IntoView {
    let auth = expect_context::<Auth>();
    let name = connection.name.clone();
    let max = connection.review.max_access_seconds;
    let mine = RwSignal::new(Vec::<Review>::new());
    // Whether access was granted at the last read (None before the first).
    let had_access = StoredValue::new(None::<bool>);
    let error = RwSignal::new(None::<String>);
    let load = {
        let name = name.clone();
        move || {
            let query = ReviewQuery {
                view: Some("mine".into()),
                kind: Some(ReviewKind::Access),
                connection: Some(name.clone()),
                state: Some("pending,approved".into()),
                ..ReviewQuery::default()
            };
            spawn_local(async move {
                // The panel may be gone by the time the answer comes: `try_set` then does nothing.
                match api::reviews(&query).await {
                    Ok(page) => {
                        let now = js_sys::Date::now();
                        let granted = page.items.iter().any(|review| {
                            review.state == ReviewState::Approved
                                && review
                                    .access_until
                                    .is_some_and(|until| until.as_millis_f64() > now)
                        });
                        // Access just granted: the run refused for want of it may go now, so its
                        // refusal no longer holds (other errors stay).
                        if granted && had_access.try_get_value() == Some(Some(false)) {
                            run_error.try_set(None);
                        }
                        had_access.try_set_value(Some(granted));
                        mine.try_set(page.items);
                    }
                    Err(failure) => drop(error.try_set(Some(failure.to_string()))),
                }
            });
        }
    };
    load();
    let me = auth
        .user
        .with_untracked(|user| user.as_ref().map(|user| user.id.clone()));
    let watched = name.clone();
    let reload = load.clone();
    watch_reviews(move |review| {
        let mine = review.is_none_or(|review| {
            review.connection.name == watched && Some(&review.requester.id) == me.as_ref()
        });
        if mine {
            reload();
        }
    });

    let durations: Vec<u32> = [15 * 60, 3600, 4 * 3600, 8 * 3600, 24 * 3600]
        .into_iter()
        .filter(|seconds| *seconds <= max)
        .collect();
    let duration = RwSignal::new(durations.first().copied().unwrap_or(max));
    let why = RwSignal::new(String::new());
    let request = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let body = AccessRequest {
            connection: name.clone(),
            access_seconds: duration.get_untracked(),
            reason: why.get_untracked(),
        };
        spawn_local(async move {
            match api::request_access(&body).await {
                Ok(review) => {
                    error.try_set(None);
                    why.try_set(String::new());
                    mine.try_update(|mine| mine.insert(0, review));
                }
                Err(failure) => drop(error.try_set(Some(failure.to_string()))),
            }
        });
    };
    let options = durations
        .into_iter()
        .map(
            |seconds| view! { <option value=seconds.to_string()>{human_seconds(seconds)}</option> },
        )
        .collect_view();
    let now = js_sys::Date::now();
    view! {
        {move || {
            let list = mine.get();
            let granted = list.iter().find(|review| review.state == ReviewState::Approved && review.access_until.is_some_and(|until| until.as_millis_f64() > now));
            let pending = list.iter().find(|review| review.state == ReviewState::Pending);
            match (granted, pending) {
                (Some(granted), _) => view! {
                    <p class="ok-text" data-test="access-granted">"You have access until "{granted.access_until.map(absolute_time).unwrap_or_default()}"."</p>
                }.into_any(),
                (None, Some(pending)) => view! {
                    <p class="waiting" data-test="access-pending">"Your access request is waiting for approval. "
                        <A href=format!("/reviews/{}", pending.id)>"See it"</A></p>
                }.into_any(),
                (None, None) => view! {
                    <p>"Running here needs approved access. Ask for it:"</p>
                }.into_any(),
            }
        }}
        <Show when=move || mine.with(|list| list.is_empty())>
            <form class="rules-editor" data-test="access-form" on:submit=request.clone()>
                <label>"For"
                    <select data-test="access-duration" on:change=move |event| duration.set(event_target_value(&event).parse().unwrap_or(max))>{options.clone()}</select>
                </label>
                <label class="grow">"Reason" <input data-test="access-reason" required bind:value=why placeholder="Incident, ticket, what you will do"/></label>
                <button class="button" type="submit" data-test="request-access">"Request access"</button>
            </form>
        </Show>
        <ErrorLine error=error/>
    }
}
