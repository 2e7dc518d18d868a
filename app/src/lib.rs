//! Loupe's web client: the shell (header, navigation, footer) and one page per route.

mod api;
mod components;
mod pages;

use leptos::prelude::*;
use leptos_router::{
    components::{Redirect, Route, Router, Routes},
    path,
};

use crate::{
    components::shell::{Footer, Header},
    pages::{
        admin::AdminPage, not_found::NotFound, reviews::ReviewsPage, run::RunPage,
        session_detail::SessionDetailPage, sessions::SessionsPage,
    },
};

#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <div class="shell" data-test="app-shell">
                <Header/>
                <main class="page" id="main" tabindex="-1">
                    <Routes fallback=NotFound>
                        <Route path=path!("/") view=|| view! { <Redirect path="/sessions"/> }/>
                        <Route path=path!("/sessions") view=SessionsPage/>
                        <Route path=path!("/sessions/:id") view=SessionDetailPage/>
                        <Route path=path!("/reviews") view=ReviewsPage/>
                        <Route path=path!("/run") view=RunPage/>
                        <Route path=path!("/admin") view=AdminPage/>
                    </Routes>
                </main>
                <Footer/>
            </div>
        </Router>
    }
}
