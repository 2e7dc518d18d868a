//! `/admin/groups`: groups and their members. Connections name groups as their reviewers, and
//! sessions are shared with groups.

use leptos::{prelude::*, task::spawn_local};
use loupe_protocol::{Group, NewGroup, User};

use crate::{
    api::{self, ApiResult},
    auth::Auth,
    components::feedback::{ErrorLine, ErrorPanel},
};

#[component]
pub fn GroupsPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let data = LocalResource::new(|| async {
        Ok::<_, api::ApiFailure>((api::groups().await?, api::users().await?))
    });
    let error = RwSignal::new(None::<String>);
    let refresh = Callback::new(move |()| data.refetch());
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let create = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let new = NewGroup {
            name: name.get(),
            description: description.get(),
        };
        run(
            async move { api::create_group(&new).await.map(drop) },
            error,
            refresh,
        );
        name.set(String::new());
        description.set(String::new());
    };
    view! {
        <Show when=move || auth.is_admin()>
            <form class="card form-row" on:submit=create data-test="group-form">
                <label>"Name" <input data-test="new-group-name" required bind:value=name/></label>
                <label class="grow">"Description" <input data-test="new-group-description" bind:value=description/></label>
                <button class="button primary" type="submit" data-test="create-group">"Add group"</button>
            </form>
        </Show>
        <ErrorLine error=error/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || data.get().map(|answer| match answer {
                Ok((groups, _)) if groups.is_empty() => view! {
                    <div class="empty-state"><p>"No groups yet."</p></div>
                }.into_any(),
                Ok((groups, users)) => groups
                    .into_iter()
                    .map(|group| view! { <GroupCard group=group users=users.clone() error=error on_change=refresh/> })
                    .collect_view()
                    .into_any(),
                Err(failure) => view! { <ErrorPanel message=failure.to_string() retry=refresh/> }.into_any(),
            })}
        </Transition>
    }
}

/// Runs a change, then reloads; a failure is shown above the list.
fn run(
    call: impl Future<Output = ApiResult<()>> + 'static,
    error: RwSignal<Option<String>>,
    on_change: Callback<()>,
) {
    spawn_local(async move {
        match call.await {
            Ok(()) => error.set(None),
            Err(failure) => error.set(Some(failure.to_string())),
        }
        on_change.run(());
    });
}

#[component]
fn GroupCard(
    group: Group,
    users: Vec<User>,
    error: RwSignal<Option<String>>,
    on_change: Callback<()>,
) -> impl IntoView {
    let auth = expect_context::<Auth>();
    let admin = auth.is_admin();
    let chosen = RwSignal::new(String::new());
    let candidates: Vec<User> = users
        .into_iter()
        .filter(|user| !group.members.iter().any(|member| member.id == user.id))
        .collect();
    let group_id = group.id.clone();
    let members = group
        .members
        .iter()
        .map(|member| {
            let (group_id, user_id) = (group.id.clone(), member.id.clone());
            let remove = admin.then(|| view! {
                <button class="chip-remove" aria-label=format!("Remove {}", member.username) on:click=move |_| {
                    let (group_id, user_id) = (group_id.clone(), user_id.clone());
                    run(async move { api::remove_member(&group_id, &user_id).await }, error, on_change);
                }>"×"</button>
            });
            view! { <span class="chip" data-test="member">{member.username.clone()}{remove}</span> }
        })
        .collect_view();
    let delete_id = group.id.clone();
    let name = group.name.clone();
    view! {
        <div class="card group" data-test="group-card" data-group=group.name.clone()>
            <div class="group-head">
                <h3 class="mono">{group.name.clone()}</h3>
                <span class="muted">{group.description.clone()}</span>
                {admin.then(|| view! {
                    <button class="button danger small" data-test="delete-group" on:click=move |_| {
                        let confirmed = window()
                            .confirm_with_message(&format!("Delete the group {name}? Its members stay."))
                            .unwrap_or(false);
                        if confirmed {
                            let id = delete_id.clone();
                            run(async move { api::delete_group(&id).await }, error, on_change);
                        }
                    }>"Delete"</button>
                })}
            </div>
            <div class="chips">
                {members}
                {group.members.is_empty().then(|| view! { <span class="muted">"No members"</span> })}
            </div>
            {admin.then(|| view! {
                <form class="form-row" on:submit=move |event| {
                    event.prevent_default();
                    let (group_id, user_id) = (group_id.clone(), chosen.get());
                    if !user_id.is_empty() {
                        run(async move { api::add_member(&group_id, &user_id).await }, error, on_change);
                    }
                }>
                    <select aria-label="User to add" data-test="member-choice" on:change=move |event| chosen.set(event_target_value(&event))>
                        <option value="">"Add a member…"</option>
                        {candidates.iter().map(|user| view! {
                            <option value=user.id.clone()>{format!("{} ({})", user.username, user.display_name)}</option>
                        }).collect_view()}
                    </select>
                    <button class="button small" type="submit" data-test="add-member">"Add"</button>
                </form>
            })}
        </div>
    }
}
