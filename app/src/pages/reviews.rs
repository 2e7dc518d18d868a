//! `/reviews`: the reviewers' inbox (pending and decided), the requester's own requests, and
//! everything the caller may see; `/reviews/:id`: one review, decided from there. Both follow
//! the live channel, so a new request or a decision shows without a reload.

use leptos::{prelude::*, task::spawn_local};
use leptos_router::{
    components::A,
    hooks::{use_params_map, use_query_map},
};
use loupe_protocol::{
    Review, ReviewKind, ReviewQuery, ReviewState, SHORT_ID_MIN, Verdict, short_id,
};

use crate::{
    api,
    auth::Auth,
    components::{
        feedback::{ErrorLine, ErrorPanel},
        review_bits::{ReviewStateBadge, approvals_text, human_seconds, kind_label},
        session_bits::InputText,
    },
    format::{absolute_time, relative_time},
    live::watch_reviews,
};

/// The tabs: (view, label).
const VIEWS: [(&str, &str); 3] = [
    ("inbox", "To review"),
    ("mine", "My requests"),
    ("all", "All"),
];

#[component]
pub fn ReviewsPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let query = use_query_map();
    let current = Memo::new(move |_| query.read().get("view").unwrap_or_else(|| "inbox".into()));
    let items = RwSignal::new(None::<Vec<Review>>);
    let fresh = RwSignal::new(Vec::<String>::new());
    let error = RwSignal::new(None::<String>);
    let load = move || {
        let view = current.get_untracked();
        spawn_local(async move {
            let query = ReviewQuery {
                view: Some(view),
                limit: Some(100),
                ..ReviewQuery::default()
            };
            // The page may be gone by the time the answer comes: `try_set` then does nothing.
            match api::reviews(&query).await {
                Ok(page) => {
                    error.try_set(None);
                    items.try_set(Some(page.items));
                }
                Err(failure) => drop(error.try_set(Some(failure.to_string()))),
            }
        });
    };
    Effect::new(move |_| {
        current.track();
        items.set(None);
        load();
    });
    let me = move || {
        auth.user
            .with_untracked(|user| user.as_ref().map(|user| user.id.clone()))
    };
    watch_reviews(move |review| {
        let Some(review) = review else {
            return load();
        };
        let belongs = match current.get_untracked().as_str() {
            "inbox" => {
                review.actions.decide
                    || review
                        .decisions
                        .iter()
                        .any(|decision| Some(&decision.reviewer.id) == me().as_ref())
            }
            "mine" => Some(&review.requester.id) == me().as_ref(),
            _ => true,
        };
        items.update(|items| {
            let Some(items) = items else { return };
            match items.iter_mut().find(|known| known.id == review.id) {
                Some(known) => *known = review,
                None if belongs => {
                    fresh.update(|fresh| fresh.push(review.id.clone()));
                    items.insert(0, review);
                }
                None => {}
            }
        });
    });

    let tabs = VIEWS.map(|(view, label)| {
        let selected = move || current.get() == view;
        view! {
            // A plain link (the router still handles it): `A` marks every tab current, as they
            // share one path and differ only in the query.
            <a href=format!("/reviews?view={view}") aria-current=move || selected().then_some("page") data-test=format!("reviews-tab-{view}")>{label}</a>
        }
    });
    view! {
        <section class="page-head">
            <h1 data-test="page-title">"Reviews"</h1>
            <p class="muted">"Access requests and commands waiting for a reviewer's decision. New ones appear here the moment they are made."</p>
        </section>
        <nav class="tabs" aria-label="Reviews">{tabs}</nav>
        {move || error.get().map(|message| view! { <ErrorPanel message=message retry=Callback::new(move |()| load())/> })}
        {move || match items.get() {
            None => view! { <p class="muted">"Loading…"</p> }.into_any(),
            Some(list) => {
                let (pending, decided): (Vec<Review>, Vec<Review>) = list.into_iter().partition(|review| review.state == ReviewState::Pending);
                view! {
                    <h2 class="section-title">"Pending"</h2>
                    <ReviewTable reviews=pending fresh=fresh empty="Nothing is waiting. Requests that need you appear here as they are made."/>
                    <h2 class="section-title">"Decided"</h2>
                    <ReviewTable reviews=decided fresh=fresh empty="No decided reviews yet."/>
                }.into_any()
            }
        }}
    }
}

#[component]
fn ReviewTable(
    reviews: Vec<Review>,
    fresh: RwSignal<Vec<String>>,
    empty: &'static str,
) -> impl IntoView {
    if reviews.is_empty() {
        return view! { <div class="empty-state" data-test="reviews-empty"><p>{empty}</p></div> }
            .into_any();
    }
    let rows = reviews
        .into_iter()
        .map(|review| {
            let id = review.id.clone();
            let is_fresh = {
                let id = id.clone();
                move || fresh.with(|fresh| fresh.contains(&id))
            };
            let what = match (&review.kind, &review.input, review.access_seconds) {
                (ReviewKind::Command, Some(input), _) => input.lines().next().unwrap_or_default().to_owned(),
                (_, _, Some(seconds)) => format!("access for {}", human_seconds(seconds)),
                _ => String::new(),
            };
            view! {
                <tr data-test="review-row" data-id=id.clone() data-state=review.state.as_str() class:fresh=is_fresh>
                    <td data-cell="kind">{kind_label(review.kind)}</td>
                    <td data-cell="conn" class="mono">{review.connection.name.clone()}</td>
                    <td data-cell="who">{review.requester.display_name.clone()}</td>
                    <td data-cell="what" class="summary"><A href=format!("/reviews/{id}") attr:data-test="review-link">{if what.is_empty() { "(open)".to_owned() } else { what }}</A></td>
                    <td data-cell="why" class="summary">{if review.reason.is_empty() { "—".to_owned() } else { review.reason.clone() }}</td>
                    <td data-cell="status"><ReviewStateBadge state=review.state/>{review.actions.decide.then(|| view! { " "<span class="badge ok-badge">"your call"</span> })}</td>
                    <td data-cell="when" title=absolute_time(review.created_at)>{relative_time(review.created_at)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="table sessions reviews" data-test="reviews-table">
                <thead><tr><th>"Kind"</th><th>"Connection"</th><th>"Requester"</th><th>"What"</th><th>"Why"</th><th>"State"</th><th>"Asked"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
pub fn ReviewDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let review = RwSignal::new(None::<Review>);
    let error = RwSignal::new(None::<String>);
    let load = move || {
        let id = id.get_untracked();
        spawn_local(async move {
            match api::review(&id).await {
                Ok(found) => drop(review.try_set(Some(found))),
                Err(failure) => drop(error.try_set(Some(failure.to_string()))),
            }
        });
    };
    Effect::new(move |_| {
        id.track();
        load();
    });
    // Made here, outside the view it is passed to: that view is replaced whenever the review
    // changes (also by the live channel, possibly before an action's own answer arrives).
    let on_change = Callback::new(move |changed| review.set(Some(changed)));
    watch_reviews(move |changed| match changed {
        Some(changed) if changed.id == id.get_untracked() => review.set(Some(changed)),
        Some(_) => {}
        None => load(),
    });
    view! {
        {move || error.get().map(|message| view! { <ErrorPanel message=message retry=Callback::new(move |()| { error.set(None); load(); })/> })}
        {move || review.get().map(|current| view! { <ReviewView review=current on_change=on_change/> })}
    }
}

#[component]
fn ReviewView(review: Review, on_change: Callback<Review>) -> impl IntoView {
    let kind = review.connection.kind.clone();
    let input = review.input.clone().map(|input| {
        view! { <div class="card"><InputText text=input connection_kind=kind test="review-input"/></div> }
    });
    let group_names: Vec<String> = review
        .reviewer_groups
        .iter()
        .map(|group| group.name.clone())
        .collect();
    let decisions = review
        .decisions
        .iter()
        .map(|decision| {
            let (class, word) = match decision.verdict {
                Verdict::Approve => ("ok-text", "approved"),
                Verdict::Reject => ("error-text", "rejected"),
            };
            let groups = decision.groups.iter().map(|group| group.name.clone()).collect::<Vec<_>>().join(", ");
            view! {
                <li data-test="decision">
                    <strong>{decision.reviewer.display_name.clone()}</strong>" "<span class=class>{word}</span>
                    {(!groups.is_empty()).then(|| format!(" for {groups}"))}
                    " · "<span class="muted" title=absolute_time(decision.at)>{relative_time(decision.at)}</span>
                    {decision.note.clone().map(|note| view! { <div class="note">"“"{note}"”"</div> })}
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="page-head">
            <h1 data-test="page-title">{kind_label(review.kind)}" on "<span class="mono">{review.connection.name.clone()}</span>" "<ReviewStateBadge state=review.state/></h1>
            <p class="muted">"Requested by "{review.requester.display_name.clone()}" · "{relative_time(review.created_at)}</p>
        </section>
        <div class="card facts" data-test="review-facts">
            <div><span class="muted">"Requester"</span>{format!("{} ({})", review.requester.display_name, review.requester.username)}</div>
            <div><span class="muted">"Connection"</span>{format!("{} ({})", review.connection.name, review.connection.kind)}</div>
            <div><span class="muted">"Asked"</span>{absolute_time(review.created_at)}</div>
            {(review.state == ReviewState::Pending).then(|| view! { <div><span class="muted">"Expires"</span>{absolute_time(review.expires_at)}</div> })}
            {review.access_seconds.map(|seconds| view! { <div><span class="muted">"Access for"</span>{human_seconds(seconds)}</div> })}
            {review.access_until.map(|until| view! { <div><span class="muted">"Access until"</span><span data-test="access-until">{absolute_time(until)}</span></div> })}
            <div class="wide"><span class="muted">"Needs"</span>{approvals_text(review.approvals, &group_names)}</div>
            <div class="wide"><span class="muted">"Justification"</span><span data-test="review-reason">{if review.reason.is_empty() { "No reason given".to_owned() } else { review.reason.clone() }}</span></div>
            {review.session_id.clone().map(|session| view! {
                <div><span class="muted">"Session"</span><A href=format!("/sessions/{session}") attr:data-test="review-session">{short_id(&session, SHORT_ID_MIN).to_owned()}</A></div>
            })}
            {review.closing_note.clone().map(|note| view! {
                <div class="wide"><span class="muted">"Closing note"</span><span>{note}{review.closed_by.clone().map(|by| format!(" — {}", by.display_name))}</span></div>
            })}
        </div>
        {input.map(|input| view! { <h2 class="section-title">"Input"</h2>{input} })}
        <h2 class="section-title">"Decisions"</h2>
        {if review.decisions.is_empty() {
            view! { <p class="muted">"No decisions yet."</p> }.into_any()
        } else {
            view! { <ul class="decisions">{decisions}</ul> }.into_any()
        }}
        <ReviewActionsForm review=review.clone() on_change=on_change/>
    }
}

#[component]
fn ReviewActionsForm(review: Review, on_change: Callback<Review>) -> impl IntoView {
    let note = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let actions = review.actions;
    if !(actions.decide || actions.cancel || actions.revoke) {
        return ().into_any();
    }
    let act = move |action: &'static str| {
        let id = review.id.clone();
        move |_| {
            let text = note.get_untracked().trim().to_owned();
            if action == "reject" && text.is_empty() {
                return error.set(Some(
                    "Say why you reject it: the requester reads it.".into(),
                ));
            }
            busy.set(true);
            let id = id.clone();
            spawn_local(async move {
                let answer =
                    api::act_on_review(&id, action, (!text.is_empty()).then_some(text)).await;
                busy.try_set(false);
                match answer {
                    // Showing the changed review replaces this form: nothing of it is used after.
                    Ok(changed) => on_change.run(changed),
                    Err(failure) => drop(error.try_set(Some(failure.to_string()))),
                }
            });
        }
    };
    view! {
        <div class="card decide" data-test="review-actions">
            <label>{if actions.decide { "Note (required to reject)" } else { "Note (optional)" }}
                <textarea rows="2" data-test="review-note" bind:value=note></textarea>
            </label>
            <div class="actions">
                {actions.decide.then(|| view! {
                    <button class="button primary" data-test="approve" disabled=move || busy.get() on:click=act("approve")>"Approve"</button>
                    <button class="button danger" data-test="reject" disabled=move || busy.get() on:click=act("reject")>"Reject"</button>
                })}
                {actions.cancel.then(|| view! { <button class="button" data-test="cancel-review" disabled=move || busy.get() on:click=act("cancel")>"Withdraw request"</button> })}
                {actions.revoke.then(|| view! { <button class="button danger" data-test="revoke" disabled=move || busy.get() on:click=act("revoke")>"Revoke access"</button> })}
            </div>
            <ErrorLine error=error/>
        </div>
    }
    .into_any()
}
