//! `/admin/users`: everyone who may log in, their role and state; administrators add users and
//! change roles, disable and enable them.

use leptos::{prelude::*, task::spawn_local};
use loupe_protocol::{NewUser, Role, User, UserChanges};

use crate::{
    api,
    auth::Auth,
    components::feedback::{ErrorLine, ErrorPanel},
    format::{absolute_time, relative_time},
};

#[component]
pub fn UsersPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let users = LocalResource::new(api::users);
    let error = RwSignal::new(None::<String>);
    let refresh = Callback::new(move |()| users.refetch());
    view! {
        <Show when=move || auth.is_admin()>
            <NewUserForm error=error on_created=refresh/>
        </Show>
        <ErrorLine error=error/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || users.get().map(|answer| match answer {
                Ok(list) => view! { <UserTable users=list error=error on_change=refresh/> }.into_any(),
                Err(failure) => view! { <ErrorPanel message=failure.to_string() retry=refresh/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn NewUserForm(error: RwSignal<Option<String>>, on_created: Callback<()>) -> impl IntoView {
    let username = RwSignal::new(String::new());
    let display_name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new(Role::User);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let display = display_name.get();
        let new = NewUser {
            username: username.get(),
            display_name: (!display.trim().is_empty()).then_some(display),
            role: role.get(),
            password: password.get(),
        };
        spawn_local(async move {
            match api::create_user(&new).await {
                Ok(_) => {
                    error.set(None);
                    username.set(String::new());
                    display_name.set(String::new());
                    password.set(String::new());
                    on_created.run(());
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };
    view! {
        <form class="card form-row" on:submit=submit data-test="user-form">
            <label>"Username" <input data-test="new-username" required bind:value=username/></label>
            <label>"Display name" <input data-test="new-display-name" bind:value=display_name/></label>
            <label>"Role"
                <select data-test="new-role" on:change=move |event| {
                    role.set(Role::parse(&event_target_value(&event)).unwrap_or(Role::User));
                }>
                    {Role::ALL.map(|option| view! {
                        <option value=option.as_str() selected=move || role.get() == option>{option.as_str()}</option>
                    })}
                </select>
            </label>
            <label>"Password" <input data-test="new-password" type="password" autocomplete="new-password" required bind:value=password/></label>
            <button class="button primary" type="submit" data-test="create-user">"Add user"</button>
        </form>
    }
}

fn change_user(
    id: String,
    changes: UserChanges,
    error: RwSignal<Option<String>>,
    on_change: Callback<()>,
) {
    spawn_local(async move {
        match api::update_user(&id, &changes).await {
            Ok(_) => {
                error.set(None);
                on_change.run(());
            }
            Err(failure) => {
                error.set(Some(failure.to_string()));
                // Put the controls back to what the server holds.
                on_change.run(());
            }
        }
    });
}

#[component]
fn UserTable(
    users: Vec<User>,
    error: RwSignal<Option<String>>,
    on_change: Callback<()>,
) -> impl IntoView {
    let auth = expect_context::<Auth>();
    let rows = users
        .into_iter()
        .map(|user| {
            let groups = user.groups.iter().map(|group| group.name.clone()).collect::<Vec<_>>().join(", ");
            let (role_id, toggle_id) = (user.id.clone(), user.id.clone());
            let disabled = user.disabled;
            let role_cell = if auth.is_admin() {
                view! {
                    <select aria-label=format!("Role of {}", user.username) data-test="user-role"
                        on:change=move |event| {
                            let role = Role::parse(&event_target_value(&event));
                            change_user(role_id.clone(), UserChanges { role, ..Default::default() }, error, on_change);
                        }>
                        {Role::ALL.map(|option| view! {
                            <option value=option.as_str() selected=user.role == option>{option.as_str()}</option>
                        })}
                    </select>
                }
                .into_any()
            } else {
                view! { <span class="badge role">{user.role.as_str()}</span> }.into_any()
            };
            let toggle = auth.is_admin().then(|| {
                view! {
                    <button class="button small" data-test="user-toggle" on:click=move |_| {
                        change_user(toggle_id.clone(), UserChanges { disabled: Some(!disabled), ..Default::default() }, error, on_change);
                    }>
                        {if disabled { "Enable" } else { "Disable" }}
                    </button>
                }
            });
            view! {
                <tr data-test="user-row" data-username=user.username.clone()>
                    <td class="mono">{user.username.clone()}</td>
                    <td>{user.display_name.clone()}</td>
                    <td>{role_cell}</td>
                    <td>
                        {if disabled {
                            view! { <span class="badge danger-badge">"disabled"</span> }.into_any()
                        } else {
                            view! { <span class="badge ok-badge">"active"</span> }.into_any()
                        }}
                    </td>
                    <td>{groups}</td>
                    <td title=absolute_time(user.created_at)>{relative_time(user.created_at)}</td>
                    <td>{toggle}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="table" data-test="users-table">
            <thead><tr><th>"Username"</th><th>"Name"</th><th>"Role"</th><th>"State"</th><th>"Groups"</th><th>"Created"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
