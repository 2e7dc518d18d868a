//! `/admin/…`: users, groups, connections and the audit trail. Administrators change things; auditors read.

mod audit;
mod connections;
mod groups;
mod users;

pub use audit::AuditPage;
pub use connections::ConnectionsPage;
pub use groups::GroupsPage;
pub use users::UsersPage;

use leptos::prelude::*;
use leptos_router::components::{A, Outlet};

use crate::{auth::Auth, pages::not_found::NotAllowed};

#[component]
pub fn AdminLayout() -> impl IntoView {
    let auth = expect_context::<Auth>();
    view! {
        <section class="page-head">
            <h1 data-test="page-title">"Admin"</h1>
        </section>
        <Show when=move || auth.sees_admin() fallback=|| view! { <NotAllowed for_whom="Administrators and auditors"/> }>
        <nav class="tabs" aria-label="Administration">
            <A href="/admin/users" attr:data-test="tab-users">"Users"</A>
            <A href="/admin/groups" attr:data-test="tab-groups">"Groups"</A>
            <A href="/admin/connections" attr:data-test="tab-connections">"Connections"</A>
            <A href="/admin/audit" attr:data-test="tab-audit">"Audit trail"</A>
        </nav>
        <Outlet/>
        </Show>
    }
}
