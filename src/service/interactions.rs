//! The durable per-model interaction logs (`POST /interactions`) and their
//! in-memory per-user view, kept in the store at `<model>/interactions.ndjson`.
//!
//! On local disk the log is that one file, appended and fsynced per request
//! (the layout older releases wrote). On an object store, where appending is
//! not a primitive, each request's events are one segment object under
//! `<model>/interactions/`, and the log is compacted into one segment once
//! it holds [`MAX_SEGMENTS`] of them (or too many events): a log of N
//! requests costs N small PUTs plus one rewrite per [`MAX_SEGMENTS`], and a
//! restart reads at most [`MAX_SEGMENTS`] + 1 objects per model. See
//! [`crate::storage::Store::append_log`].
//!
//! With a coordination database the log is its `interactions` table
//! instead: a request's events are one committed insert, and a user's
//! logged items are read from it on every `/recommend`, so every replica
//! sees an event as soon as it is answered. Retention is the same count per
//! model, trimmed every [`TRIM_EVERY`] appends of this replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::recommend::Interactions;
use crate::storage::db::{Database, InteractionRow};
use crate::storage::{LogContents, Store, StoreError};

/// File of logged interactions inside a model's directory.
pub const LOG_FILE: &str = "interactions.ndjson";

/// Segments a remote log may hold before it is compacted into one.
pub const MAX_SEGMENTS: usize = 64;

/// Appends (per model, per replica) between trims of a database log.
pub const TRIM_EVERY: usize = 64;

/// One logged interaction, as stored (one JSON object per line).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LoggedInteraction {
    pub user: String,
    pub item: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f32>,
    /// Unix seconds; the logging time when the caller gave none.
    pub timestamp: i64,
}

fn log_key(model: &str) -> String {
    format!("{model}/{LOG_FILE}")
}

/// Parses a log; an unreadable (e.g. torn last) line is skipped.
fn parse(bytes: &[u8]) -> Vec<LoggedInteraction> {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<LoggedInteraction>(line).ok())
        .collect()
}

fn encode(events: &[LoggedInteraction]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for event in events {
        // Serializing strings, numbers and an option cannot fail.
        if serde_json::to_writer(&mut bytes, event).is_ok() {
            bytes.push(b'\n');
        }
    }
    bytes
}

fn read_contents(store: &Store, model: &str) -> Result<LogContents, StoreError> {
    let key = log_key(model);
    store.block(|s| async move { s.read_log(&key).await })?
}

/// Reads a model's whole interaction log (empty when there is none). Runs
/// on a blocking thread.
fn read_log(store: &Store, model: &str) -> Result<Vec<LoggedInteraction>, StoreError> {
    Ok(parse(&read_contents(store, model)?.bytes))
}

fn to_row(e: &LoggedInteraction) -> InteractionRow {
    InteractionRow {
        user: e.user.clone(),
        item: e.item.clone(),
        value: e.value,
        timestamp: e.timestamp,
    }
}

fn from_row(r: InteractionRow) -> LoggedInteraction {
    LoggedInteraction {
        user: r.user,
        item: r.item,
        value: r.value,
        timestamp: r.timestamp,
    }
}

/// Appends logged interactions to training interactions. A logged event without a
/// value counts 1; values and timestamps are kept only when the training data has them.
pub fn append_logged(data: &mut Interactions, logged: &[LoggedInteraction]) {
    for event in logged {
        data.users.push(event.user.clone());
        data.items.push(event.item.clone());
        if let Some(values) = &mut data.values {
            values.push(event.value.unwrap_or(1.0));
        }
        if let Some(times) = &mut data.timestamps {
            times.push(event.timestamp);
        }
    }
}

/// Per-user logged items of one model (in logging order).
#[derive(Default)]
struct ModelLog {
    by_user: HashMap<String, Vec<String>>,
    /// Events in the stored log.
    events: usize,
    /// Objects the stored log is made of (segments on a remote store).
    parts: usize,
}

impl ModelLog {
    fn add(&mut self, events: &[LoggedInteraction]) {
        self.events += events.len();
        for event in events {
            self.by_user
                .entry(event.user.clone())
                .or_default()
                .push(event.item.clone());
        }
    }
}

/// The durable interaction logs of every model, with their in-memory per-user view
/// (loaded from the store on first use).
pub struct InteractionLogs {
    store: Store,
    /// The cluster's log, when a database coordinates replicas.
    db: Option<Database>,
    /// Appends per model since the last trim of the database log.
    appends: Mutex<HashMap<String, usize>>,
    /// Events kept per model: once a log exceeds this by a quarter, it is rewritten with
    /// the newest `max_events` only (amortised, atomic).
    max_events: usize,
    models: Mutex<HashMap<String, Arc<Mutex<ModelLog>>>>,
}

impl InteractionLogs {
    pub fn new(store: Store, db: Option<Database>, max_events: usize) -> InteractionLogs {
        InteractionLogs {
            store,
            db,
            appends: Mutex::new(HashMap::new()),
            max_events: max_events.max(1),
            models: Mutex::new(HashMap::new()),
        }
    }

    /// Rewrites the model's log with its newest `max_events` events and
    /// rebuilds the in-memory view from them.
    fn compact(&self, model: &str, log: &mut ModelLog) -> Result<(), StoreError> {
        let contents = read_contents(&self.store, model)?;
        let events = parse(&contents.bytes);
        let keep = &events[events.len().saturating_sub(self.max_events)..];
        let bytes = encode(keep);
        let key = log_key(model);
        self.store
            .block(|s| async move { s.replace_log(&key, &contents, bytes.into()).await })??;
        *log = ModelLog {
            parts: 1,
            ..ModelLog::default()
        };
        log.add(keep);
        Ok(())
    }

    fn model_log(&self, model: &str) -> Result<Arc<Mutex<ModelLog>>, StoreError> {
        if let Some(log) = self.lock_models().get(model) {
            return Ok(log.clone());
        }
        let contents = read_contents(&self.store, model)?;
        let mut log = ModelLog {
            parts: contents.parts.len(),
            ..ModelLog::default()
        };
        log.add(&parse(&contents.bytes));
        let mut models = self.lock_models();
        Ok(models
            .entry(model.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(log)))
            .clone())
    }

    fn lock_models(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Mutex<ModelLog>>>> {
        self.models.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `events` to the model's stored log (durably) and to the
    /// in-memory view. Runs on a blocking thread.
    pub fn append(&self, model: &str, events: &[LoggedInteraction]) -> Result<(), StoreError> {
        if let Some(db) = &self.db {
            let (name, rows) = (
                model.to_string(),
                events.iter().map(to_row).collect::<Vec<_>>(),
            );
            db.block(|db| async move { db.append_interactions(&name, &rows).await })?;
            let trim = {
                let mut appends = self.appends.lock().unwrap_or_else(|e| e.into_inner());
                let n = appends.entry(model.to_string()).or_insert(0);
                *n += 1;
                n.is_multiple_of(TRIM_EVERY)
            };
            if trim {
                let (name, keep) = (model.to_string(), self.max_events);
                if let Err(e) =
                    db.block(|db| async move { db.trim_interactions(&name, keep).await })
                {
                    tracing::warn!(model, error = %e, "cannot trim the interaction log");
                }
            }
            return Ok(());
        }
        let log = self.model_log(model)?;
        let mut guard = log.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = encode(events);
        let key = log_key(model);
        self.store
            .block(|s| async move { s.append_log(&key, bytes.into()).await })??;
        guard.add(events);
        guard.parts += 1;
        let remote = self.store.local_root().is_none();
        if guard.events > self.max_events + self.max_events / 4
            || (remote && guard.parts > MAX_SEGMENTS)
        {
            self.compact(model, &mut guard)?;
        }
        Ok(())
    }

    /// A model's whole log (empty when there is none), for retraining. Runs
    /// on a blocking thread.
    pub fn read_all(&self, model: &str) -> Result<Vec<LoggedInteraction>, StoreError> {
        match &self.db {
            Some(db) => {
                let name = model.to_string();
                let rows = db.block(|db| async move { db.model_interactions(&name).await })?;
                Ok(rows.into_iter().map(from_row).collect())
            }
            None => read_log(&self.store, model),
        }
    }

    /// The items logged for `user` of `model`, oldest first.
    pub async fn user_items(
        self: &Arc<Self>,
        model: &str,
        user: &str,
    ) -> Result<Vec<String>, StoreError> {
        if let Some(db) = &self.db {
            let (model, user) = (model.to_string(), user.to_string());
            return db
                .call(|db| async move { db.user_interactions(&model, &user).await })
                .await;
        }
        let cached = self.lock_models().get(model).cloned();
        let log = match cached {
            Some(log) => log,
            None => {
                let logs = self.clone();
                let name = model.to_string();
                tokio::task::spawn_blocking(move || logs.model_log(&name))
                    .await
                    .map_err(|e| StoreError::Unavailable {
                        op: "read_log",
                        key: log_key(model),
                        reason: e.to_string(),
                    })??
            }
        };
        let guard = log.lock().unwrap_or_else(|e| e.into_inner());
        Ok(guard.by_user.get(user).cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: &str, item: &str, timestamp: i64) -> LoggedInteraction {
        LoggedInteraction {
            user: user.into(),
            item: item.into(),
            value: None,
            timestamp,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn logged_interactions_survive_a_restart_and_compaction_keeps_the_newest() {
        let cache = tempfile::tempdir().unwrap();
        let store = Store::in_memory(cache.path());
        let logs = Arc::new(InteractionLogs::new(store.clone(), None, 8));
        let appender = logs.clone();
        tokio::task::spawn_blocking(move || {
            for i in 0..12 {
                appender
                    .append("shop", &[event("u1", &format!("i{i}"), i)])
                    .unwrap();
            }
        })
        .await
        .unwrap();
        // The 11th event passes 8 + 8/4: compacted to the newest 8, then one more append.
        let items = logs.user_items("shop", "u1").await.unwrap();
        assert_eq!(items.first().map(String::as_str), Some("i3"));
        assert_eq!(items.len(), 9);

        let reopened = Arc::new(InteractionLogs::new(store.clone(), None, 8));
        assert_eq!(reopened.user_items("shop", "u1").await.unwrap(), items);
        let events = tokio::task::spawn_blocking(move || read_log(&store, "shop"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(events.len(), 9);
        assert_eq!(events[8], event("u1", "i11", 11));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remote_log_is_compacted_once_it_has_too_many_segments() {
        let cache = tempfile::tempdir().unwrap();
        let store = Store::in_memory(cache.path());
        let logs = Arc::new(InteractionLogs::new(store.clone(), None, 10_000));
        let appender = logs.clone();
        let listed = tokio::task::spawn_blocking(move || {
            for i in 0..(MAX_SEGMENTS as i64 + 5) {
                appender.append("shop", &[event("u1", "a", i)]).unwrap();
            }
            store
                .block(|s| async move { s.list("shop/interactions").await })
                .unwrap()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(listed.len() <= 6, "{} segments", listed.len());
        let items = logs.user_items("shop", "u1").await.unwrap();
        assert_eq!(items.len(), MAX_SEGMENTS + 5);
    }
}
