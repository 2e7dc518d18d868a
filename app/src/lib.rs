//! Loupe's web client: the shell (header, navigation, footer) and one page per route. Every page
//! but the login page sits under [`auth::Protected`], which sends visitors without a login to it.

mod api;
mod auth;
mod clipboard;
mod components;
mod format;
mod live;
mod paged_list;
mod pages;
mod session_feed;
mod settings;
mod url_filters;
mod xterm;

use leptos::prelude::*;
use leptos_router::{
    components::{ParentRoute, Redirect, Route, Router, Routes},
    path,
};

use crate::{
    auth::{Auth, Protected},
    components::shell::{Footer, Header},
    live::LiveChannel,
    pages::{
        admin::{AdminLayout, AuditPage, ConnectionsPage, GroupsPage, UsersPage},
        login::LoginPage,
        not_found::NotFound,
        reviews::{ReviewDetailPage, ReviewsPage},
        run::RunPage,
        session_detail::SessionDetailPage,
        sessions::SessionsPage,
        tokens::TokensPage,
    },
    settings::ServerSettings,
};

#[component]
pub fn App() -> impl IntoView {
    provide_context(Auth {
        user: RwSignal::new(None),
    });
    ServerSettings::provide();
    LiveChannel::provide();
    view! {
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <div class="shell" data-test="app-shell">
                <Header/>
                <main class="page" id="main" tabindex="-1">
                    <Routes fallback=NotFound>
                        <Route path=path!("/login") view=LoginPage/>
                        <ParentRoute path=path!("") view=Protected>
                            <Route path=path!("/") view=|| view! { <Redirect path="/sessions"/> }/>
                            <Route path=path!("/sessions") view=SessionsPage/>
                            <Route path=path!("/sessions/:id") view=SessionDetailPage/>
                            <Route path=path!("/reviews") view=ReviewsPage/>
                            <Route path=path!("/reviews/:id") view=ReviewDetailPage/>
                            <Route path=path!("/run") view=RunPage/>
                            <Route path=path!("/tokens") view=TokensPage/>
                            <ParentRoute path=path!("/admin") view=AdminLayout>
                                <Route path=path!("") view=|| view! { <Redirect path="/admin/users"/> }/>
                                <Route path=path!("/users") view=UsersPage/>
                                <Route path=path!("/groups") view=GroupsPage/>
                                <Route path=path!("/connections") view=ConnectionsPage/>
                                <Route path=path!("/audit") view=AuditPage/>
                            </ParentRoute>
                        </ParentRoute>
                    </Routes>
                </main>
                <Footer/>
            </div>
        </Router>
    }
}
