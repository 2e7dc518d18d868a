//! `/admin/audit`: the security trail, newest first. Filters live in the URL (who, which action
//! from those the trail holds, a period); times are absolute, in the browser's zone; targets
//! link to what they name; pages load with "Load more".

use leptos::prelude::*;
use leptos_router::{
    NavigateOptions,
    components::A,
    hooks::{use_navigate, use_query_map},
    params::ParamsMap,
};
use loupe_protocol::{AuditEvent, AuditExportQuery, AuditQuery, Page};

use crate::{
    api,
    components::{
        feedback::ErrorLine,
        period::{self, PeriodPicker},
    },
    format::{absolute_time, relative_time, time_zone},
    paged_list::PagedList,
    settings::ServerSettings,
    url_filters::with_param,
};

/// The trail's query, read from the URL; `None` while the period is unusable (the picker says
/// why on its field).
fn query_from_url(params: &ParamsMap) -> Option<AuditQuery> {
    let text = |key: &str| params.get(key).filter(|value| !value.trim().is_empty());
    let (from, to) = period::bounds(params).ok()?;
    Some(AuditQuery {
        actor: text("actor").map(|actor| actor.trim().to_owned()),
        action: text("action"),
        from,
        to,
        ..AuditQuery::default()
    })
}

/// Where the whole trail the filters match downloads as `format` (`csv` or `jsonl`).
fn export_href(query: &AuditQuery, format: &str) -> String {
    let export = AuditExportQuery {
        format: Some(format.to_owned()),
        actor: query.actor.clone(),
        action: query.action.clone(),
        from: query.from,
        to: query.to,
    };
    format!("/api/audit/export?{}", api::query_string(&export))
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let params = use_query_map();
    let navigate = use_navigate();
    let actions = LocalResource::new(api::audit_actions);
    let list = PagedList::<AuditEvent>::new();
    let PagedList {
        items: events,
        cursor,
        loading,
        error,
        ..
    } = list;
    let actor = RwSignal::new(String::new());
    let load = move |append: bool| match query_from_url(&params.read_untracked()) {
        Some(query) => list.load(
            append,
            move |cursor| async move { api::audit(&AuditQuery { cursor, ..query }).await },
            |_: &Page<AuditEvent>| {},
        ),
        None => list.clear(),
    };
    Effect::new(move |_| {
        params.track();
        actor.set(params.read().get("actor").unwrap_or_default());
        load(false);
    });

    // Filters write the URL; the effect above reloads from it.
    let set_param = move |key: &'static str, value: String| {
        let url = with_param("/admin/audit", &params.read_untracked(), key, &value);
        navigate(&url, NavigateOptions::default());
    };
    let current = move |key: &'static str| params.read().get(key).unwrap_or_default();
    let zone = time_zone();
    let settings = ServerSettings::get();

    view! {
        <form class="card filters" aria-label="Filters" on:submit={let set_param = set_param.clone(); move |event| { event.prevent_default(); set_param("actor", actor.get_untracked()); }}>
            <label>"Actor" <input data-test="audit-actor" bind:value=actor placeholder="username"
                on:change={let set_param = set_param.clone(); move |_| set_param("actor", actor.get_untracked())}/></label>
            <label>"Action"
                <select data-test="audit-action" prop:value=move || current("action")
                    on:change={let set_param = set_param.clone(); move |event| set_param("action", event_target_value(&event))}>
                    <option value="">"Any"</option>
                    {move || actions.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|action| {
                        let selected = current("action") == action;
                        view! { <option value=action.clone() selected=selected>{action.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <PeriodPicker set=Callback::new({let set_param = set_param.clone(); move |(key, value)| set_param(key, value)}) current=Signal::from(params)/>
        </form>
        <ErrorLine error=error/>
        {move || {
            if settings.downloads_disabled() {
                return view! { <p class="muted export-line" data-test="audit-export-disabled">"Exports are disabled by an administrator."</p> }.into_any();
            }
            let Some(query) = query_from_url(&params.read()) else {
                return ().into_any();
            };
            view! {
                <p class="export-line">"Export everything these filters match: "
                    <a href=export_href(&query, "csv") download="" data-test="audit-export-csv">"CSV"</a>" · "
                    <a href=export_href(&query, "jsonl") download="" data-test="audit-export-jsonl">"JSON Lines"</a>
                </p>
            }.into_any()
        }}
        <table class="table" data-test="audit-table">
            <thead><tr><th>"When "<span class="muted zone">{format!("({zone})")}</span></th><th>"Who"</th><th>"Action"</th><th>"Target"</th><th>"Detail"</th><th>"Address"</th></tr></thead>
            <tbody>
                <For each=move || events.get() key=|event| event.id let:event>
                    <tr data-test="audit-row">
                        <td class="when"><time data-test="audit-at" datetime=event.at.to_string()>{absolute_time(event.at)}</time>
                            <div class="muted">{relative_time(event.at)}</div></td>
                        <td>{event.actor.clone().unwrap_or_else(|| "—".into())}</td>
                        <td class="mono">{event.action.clone()}</td>
                        <td class="mono">{event.target.clone().map(target_view)}</td>
                        <td>{event.detail.clone().unwrap_or_default()}</td>
                        <td class="mono muted">{event.address.clone().unwrap_or_default()}</td>
                    </tr>
                </For>
            </tbody>
        </table>
        <Show when=move || events.with(Vec::is_empty) && !loading.get() && period::bounds(&params.read()).is_ok()>
            <div class="empty-state"><p>"No events match."</p></div>
        </Show>
        <Show when=move || cursor.with(Option::is_some)>
            <button class="button" data-test="audit-more" disabled=move || loading.get() on:click=move |_| load(true)>
                "Load more"
            </button>
        </Show>
    }
}

/// A target as a link to the page that shows it (`session:<id>`, `review:<id>`, `user:…`,
/// `group:…`, `connection:…`); anything else as text.
fn target_view(target: String) -> AnyView {
    let href = match target.split_once(':') {
        Some(("session", id)) => Some(format!("/sessions/{id}")),
        Some(("review", id)) => Some(format!("/reviews/{id}")),
        Some(("user", _)) => Some("/admin/users".to_owned()),
        Some(("group", _)) => Some("/admin/groups".to_owned()),
        Some(("connection", _)) => Some("/admin/connections".to_owned()),
        _ => None,
    };
    match href {
        Some(href) => view! { <A href=href attr:data-test="audit-target">{target}</A> }.into_any(),
        None => target.into_any(),
    }
}
