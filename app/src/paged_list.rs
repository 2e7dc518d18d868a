//! A list read a page at a time by keyset cursor ("Load more") and read again from its first
//! page when its filters change. Reads can overlap (a filter changed while a page was out): only
//! the newest may fill the list, so an answer to an older filter never shows under a newer one.

use std::future::Future;

use leptos::{prelude::*, task::spawn_local};
use loupe_protocol::{Page, SessionPage};

use crate::api::ApiResult;

/// One page of a list: its items and the cursor of the page after it, if any.
pub trait ListPage {
    type Item;
    fn into_parts(self) -> (Vec<Self::Item>, Option<String>);
}

impl<T> ListPage for Page<T> {
    type Item = T;
    fn into_parts(self) -> (Vec<T>, Option<String>) {
        (self.items, self.next_cursor)
    }
}

impl ListPage for SessionPage {
    type Item = loupe_protocol::Session;
    fn into_parts(self) -> (Vec<loupe_protocol::Session>, Option<String>) {
        (self.items, self.next_cursor)
    }
}

/// The list's state, for the page to draw: what is listed, the next page's cursor, whether a
/// read is out, and why the last one failed.
pub struct PagedList<T: Send + Sync + 'static> {
    pub items: RwSignal<Vec<T>>,
    pub cursor: RwSignal<Option<String>>,
    pub loading: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
    /// The number of the newest read; an answer to any other is dropped.
    latest: StoredValue<u64>,
}

impl<T: Send + Sync + 'static> Clone for PagedList<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for PagedList<T> {}

impl<T: Send + Sync + 'static> PagedList<T> {
    /// An empty list that is about to be read (`loading`, so no "nothing matches" shows first).
    pub fn new() -> Self {
        PagedList {
            items: RwSignal::new(Vec::new()),
            cursor: RwSignal::new(None),
            loading: RwSignal::new(true),
            error: RwSignal::new(None),
            latest: StoredValue::new(0),
        }
    }

    /// Empties the list and drops any read still out: its filters cannot be used.
    pub fn clear(self) {
        self.latest.update_value(|read| *read += 1);
        self.items.set(Vec::new());
        self.cursor.set(None);
        self.loading.set(false);
    }

    /// Reads the first page (`append` false: it replaces the list, and `first` sees it before)
    /// or the page after the last one read (`append` true). `read` fetches the page that starts
    /// at the cursor it is given.
    pub fn load<P, F>(
        self,
        append: bool,
        read: impl FnOnce(Option<String>) -> F + 'static,
        first: impl FnOnce(&P) + 'static,
    ) where
        P: ListPage<Item = T> + 'static,
        F: Future<Output = ApiResult<P>> + 'static,
    {
        let number = self.latest.get_value() + 1;
        self.latest.set_value(number);
        let cursor = if append {
            self.cursor.get_untracked()
        } else {
            None
        };
        self.loading.set(true);
        spawn_local(async move {
            let answer = read(cursor).await;
            // The page may be gone, or a newer read under way: either way this answer is stale.
            if self.latest.try_get_value() != Some(number) {
                return;
            }
            match answer {
                Ok(page) => {
                    if !append {
                        first(&page);
                    }
                    let (items, next) = page.into_parts();
                    self.error.try_set(None);
                    self.cursor.try_set(next);
                    if append {
                        self.items.try_update(|list| list.extend(items));
                    } else {
                        self.items.try_set(items);
                    }
                }
                Err(failure) => drop(self.error.try_set(Some(failure.to_string()))),
            }
            self.loading.try_set(false);
        });
    }
}
