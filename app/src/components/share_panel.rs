//! Sharing a session: who has access through a share (with a way to revoke each), a form to
//! share with a user or a group, and the session's link to send them.

use leptos::{prelude::*, task::spawn_local};
use loupe_protocol::{NewShare, Share};

use crate::{api, clipboard::copy_text, components::feedback::ErrorLine, format::absolute_time};

/// The panel for session `session_id`; `close` hides it. Shown only to whom may share it (its
/// owner or an administrator); the server checks that too.
#[component]
pub fn SharePanel(session_id: String, close: Callback<()>) -> impl IntoView {
    let directory = LocalResource::new(|| async {
        Ok::<_, api::ApiFailure>((api::users().await?, api::groups().await?))
    });
    let shares = RwSignal::new(Vec::<Share>::new());
    let chosen = RwSignal::new(String::new());
    let note = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let copied = RwSignal::new(false);
    let load = {
        let session_id = session_id.clone();
        move || {
            let session_id = session_id.clone();
            spawn_local(async move {
                match api::shares(&session_id).await {
                    Ok(found) => drop(shares.try_set(found)),
                    Err(failure) => drop(error.try_set(Some(failure.to_string()))),
                }
            });
        }
    };
    load();
    let submit = {
        let (session_id, load) = (session_id.clone(), load.clone());
        move |event: leptos::ev::SubmitEvent| {
            event.prevent_default();
            let value = chosen.get();
            let Some((kind, target)) = value.split_once(':') else {
                return error.set(Some("Pick a user or a group".into()));
            };
            let mut share = NewShare {
                note: Some(note.get()).filter(|note| !note.trim().is_empty()),
                ..NewShare::default()
            };
            if kind == "user" {
                share.users.push(target.to_owned())
            } else {
                share.groups.push(target.to_owned())
            }
            let (session_id, load) = (session_id.clone(), load.clone());
            spawn_local(async move {
                match api::share(&session_id, &share).await {
                    Ok(_) => {
                        error.try_set(None);
                        note.try_set(String::new());
                        load();
                    }
                    Err(failure) => drop(error.try_set(Some(failure.to_string()))),
                }
            });
        }
    };
    let revoke = {
        let session_id = session_id.clone();
        move |share: String| {
            let (session_id, load) = (session_id.clone(), load.clone());
            spawn_local(async move {
                match api::revoke_share(&session_id, &share).await {
                    Ok(()) => load(),
                    Err(failure) => drop(error.try_set(Some(failure.to_string()))),
                }
            });
        }
    };
    let link = web_sys::window()
        .and_then(|window| window.location().origin().ok())
        .map(|origin| format!("{origin}/sessions/{session_id}"))
        .unwrap_or_default();
    let copy_link = {
        let link = link.clone();
        move |_| {
            let link = link.clone();
            spawn_local(async move { copy_text(&link, copied).await });
        }
    };
    view! {
        <section class="card share-panel" data-test="share-panel" aria-label="Sharing">
            <h2 class="section-title">"Shared with"</h2>
            {move || {
                let list = shares.get();
                if list.is_empty() {
                    return view! { <p class="muted" data-test="share-none">"Nobody yet: only its owner, administrators and auditors see it."</p> }.into_any();
                }
                let revoke = revoke.clone();
                view! {
                    <ul class="share-list" data-test="share-list">
                        {list.into_iter().map(|share| {
                            let who = share.user.as_ref().map(|user| user.username.clone())
                                .or_else(|| share.group.as_ref().map(|group| format!("group {}", group.name)))
                                .unwrap_or_default();
                            let (id, revoke) = (share.id.clone(), revoke.clone());
                            view! {
                                <li data-test="share-entry">
                                    <strong data-test="share-who">{who}</strong>
                                    <span class="muted">{format!(" since {}", absolute_time(share.created_at))}</span>
                                    {share.note.clone().map(|note| view! { <span class="muted">{format!(" — {note}")}</span> })}
                                    " "<button class="button small danger" type="button" data-test="share-revoke" on:click=move |_| revoke(id.clone())>"Revoke"</button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            <form class="form-row" on:submit=submit data-test="share-form">
                <label>"Share with"
                    <select data-test="share-target" on:change=move |event| chosen.set(event_target_value(&event))>
                        <option value="">"Pick a user or a group…"</option>
                        {move || directory.get().and_then(Result::ok).map(|(users, groups)| view! {
                            <optgroup label="Users">{users.into_iter().map(|user| view! { <option value=format!("user:{}", user.id)>{format!("{} ({})", user.username, user.display_name)}</option> }).collect_view()}</optgroup>
                            <optgroup label="Groups">{groups.into_iter().map(|group| view! { <option value=format!("group:{}", group.id)>{group.name.clone()}</option> }).collect_view()}</optgroup>
                        })}
                    </select>
                </label>
                <label class="grow">"Note" <input data-test="share-note" bind:value=note placeholder="why they should look"/></label>
                <button class="button primary" type="submit" data-test="share-submit">"Share"</button>
            </form>
            <div class="form-row share-link">
                <label class="grow">"Link to send" <input readonly data-test="share-link" prop:value=link.clone()/></label>
                <button class="button" type="button" data-test="share-copy-link" on:click=copy_link>{move || if copied.get() { "Copied ✓" } else { "Copy link" }}</button>
                <button class="button" type="button" data-test="share-close" on:click=move |_| close.run(())>"Close"</button>
            </div>
            <ErrorLine error=error/>
        </section>
    }
}
