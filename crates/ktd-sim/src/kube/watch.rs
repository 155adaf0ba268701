//! WATCH: newline-delimited WatchEvents over a chunked response, one task per watch.
//!
//! Semantics follow the real apiserver (reference §1.3–1.8): RV unset or `"0"` starts with
//! synthetic ADDED events for the current state; another RV starts strictly after it;
//! `sendInitialEvents=true` streams the state and ends it with the annotated BOOKMARK;
//! BOOKMARKs only with `allowWatchBookmarks=true` (periodically and before the timeout
//! closes the stream); a too-old RV or a compaction is HTTP 200 plus one ERROR event with
//! a 410 `Expired` Status. With selectors, an object that starts matching arrives as
//! ADDED and one that stops matching as DELETED (its new state), as upstream does.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::list::{Render, object_body};
use super::resources::ResourceType;
use super::selectors::{FieldSelector, LabelSelector};
use super::server::{failure, status};
use super::store::{Change, ChangeType, Expired, WatchBegin, WatchStart};

/// Watch timeout when the client sends no `timeoutSeconds` (the apiserver picks 30–60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// How many history entries a watch reads per lock.
const BATCH: usize = 512;

/// How long a watch hit by an injected `Drop` fault streams before its connection dies.
const INJECTED_DROP_AFTER: Duration = Duration::from_millis(200);

/// Starts a watch; the response streams until the timeout, a drop, a 410 or shutdown.
pub(crate) fn start(
    shared: Arc<Shared>,
    rt: &'static ResourceType,
    query: &HashMap<String, String>,
    labels: LabelSelector,
    fields: FieldSelector,
    render: Render,
    drop_fault: bool,
) -> Response {
    let param = |k: &str| query.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let rv = match param("resourceVersion").map(str::parse::<u64>) {
        None => None,
        Some(Ok(rv)) => Some(rv),
        Some(Err(_)) => {
            return failure(
                400,
                "BadRequest",
                "resourceVersion: Invalid value: must be an integer",
                None,
            );
        }
    };
    let send_initial = param("sendInitialEvents").map(|v| v == "true" || v == "1");
    let rv_match = param("resourceVersionMatch");
    if send_initial.is_some() && rv_match != Some("NotOlderThan") {
        return failure(
            422,
            "Invalid",
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            None,
        );
    }
    if send_initial.is_none() && rv_match.is_some() {
        return failure(
            422,
            "Invalid",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            None,
        );
    }
    let start = match (send_initial, rv) {
        (Some(true), _) | (None, None | Some(0)) => WatchStart::Snapshot,
        (Some(false), None | Some(0)) => WatchStart::After(shared.store.current_rv()),
        (_, Some(rv)) => WatchStart::After(rv),
    };
    let bookmarks = matches!(param("allowWatchBookmarks"), Some("true" | "1"));
    let timeout = match param("timeoutSeconds").map(str::parse::<u64>) {
        Some(Ok(secs)) if secs > 0 => Duration::from_secs(secs),
        _ => DEFAULT_TIMEOUT,
    };
    let (tx, rx) = mpsc::channel(16);
    let watch = Watch {
        rt,
        labels,
        fields,
        render,
        bookmarks,
        drop: shared.drop_token().child_token(),
        tx,
        shared,
    };
    let begin = match watch.shared.store.begin_watch(rt, start) {
        Ok(begin) => begin,
        Err(expired) => {
            let body = Bytes::from(error_line(expired));
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
        }
    };
    let drop = watch.drop.clone();
    let marker = send_initial == Some(true);
    let drop_after = drop_fault.then_some(INJECTED_DROP_AFTER);
    watch
        .shared
        .tasks
        .clone()
        .spawn(watch.run(begin, marker, timeout, drop_after));
    // The body ends when the task ends, and fails (connection aborted) when dropped.
    let stream = futures::stream::unfold((rx, drop, false), |(mut rx, drop, done)| async move {
        if done {
            return None;
        }
        tokio::select! {
            biased;
            () = drop.cancelled() => Some((
                Err(std::io::Error::other("watch connection dropped")),
                (rx, drop, true),
            )),
            item = rx.recv() => item.map(|bytes| (Ok(bytes), (rx, drop, false))),
        }
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache, private"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// `{"type":"ERROR","object":<410 Expired Status>}` and a newline.
fn error_line(e: Expired) -> Vec<u8> {
    let message = format!("too old resource version: {} ({})", e.requested, e.oldest);
    line("ERROR", &status(410, "Expired", &message, None))
}

fn line(event: &str, object: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    push_line(&mut out, event, object);
    out
}

fn push_line(out: &mut Vec<u8>, event: &str, object: &Value) {
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    serde_json::to_writer(&mut *out, object).expect("JSON values serialize");
    out.extend_from_slice(b"}\n");
}

struct Watch {
    shared: Arc<Shared>,
    rt: &'static ResourceType,
    labels: LabelSelector,
    fields: FieldSelector,
    render: Render,
    bookmarks: bool,
    /// Cancelled by `drop_watches` (parent) or an injected drop: the connection dies.
    drop: CancellationToken,
    tx: mpsc::Sender<Bytes>,
}

/// Why the wait between drains ended.
enum Wake {
    Changed,
    Bookmark,
    Timeout,
    Stop,
}

impl Watch {
    async fn run(
        self,
        begin: WatchBegin,
        marker: bool,
        timeout: Duration,
        drop_after: Option<Duration>,
    ) {
        let WatchBegin {
            epoch,
            mut position,
            initial,
            mut wake,
        } = begin;
        let mut buf = Vec::new();
        for object in &initial {
            if self.matches(object) {
                self.push(&mut buf, "ADDED", object);
                if buf.len() > 64 * 1024 && !self.send(&mut buf).await {
                    return;
                }
            }
        }
        drop(initial);
        if marker && self.bookmarks {
            push_line(&mut buf, "BOOKMARK", &self.bookmark(position, true));
        }
        if !self.send(&mut buf).await {
            return;
        }
        let now = Instant::now();
        let deadline = now + timeout;
        let interval =
            Duration::from_millis(self.shared.bookmark_interval_ms.load(Ordering::Relaxed));
        let mut next_bookmark = now + interval;
        let drop_at = drop_after.map(|d| now + d);
        loop {
            match self.drain(&mut position, epoch).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(expired) => {
                    let mut buf = error_line(expired);
                    self.send(&mut buf).await;
                    return;
                }
            }
            let woke = tokio::select! {
                () = self.shared.shutdown.cancelled() => Wake::Stop,
                () = self.drop.cancelled() => Wake::Stop,
                () = tokio::time::sleep_until(drop_at.unwrap_or(deadline)), if drop_at.is_some() => {
                    self.drop.cancel();
                    Wake::Stop
                }
                () = tokio::time::sleep_until(deadline) => Wake::Timeout,
                () = tokio::time::sleep_until(next_bookmark), if self.bookmarks => Wake::Bookmark,
                changed = wake.changed() => if changed.is_ok() { Wake::Changed } else { Wake::Stop },
            };
            match woke {
                Wake::Changed => {}
                Wake::Stop => return,
                Wake::Timeout if !self.bookmarks => return,
                Wake::Bookmark | Wake::Timeout => {
                    if let Err(expired) = self.drain(&mut position, epoch).await {
                        let mut buf = error_line(expired);
                        self.send(&mut buf).await;
                        return;
                    }
                    let mut buf = line("BOOKMARK", &self.bookmark(position, false));
                    if !self.send(&mut buf).await || matches!(woke, Wake::Timeout) {
                        return;
                    }
                    next_bookmark = Instant::now() + interval;
                }
            }
        }
    }

    /// Sends every change after `position`; `Ok(false)` if the client is gone.
    async fn drain(&self, position: &mut u64, epoch: u64) -> Result<bool, Expired> {
        loop {
            let (changes, reached) = self
                .shared
                .store
                .changes_since(self.rt, *position, epoch, BATCH)?;
            let mut buf = Vec::new();
            for change in &changes {
                if let Some(event) = self.event_of(change) {
                    self.push(&mut buf, event, &change.object);
                }
            }
            *position = reached;
            if !self.send(&mut buf).await {
                return Ok(false);
            }
            if changes.len() < BATCH {
                return Ok(true);
            }
        }
    }

    /// The event type this watch sees for a change, if any (selectors applied).
    fn event_of(&self, change: &Change) -> Option<&'static str> {
        let now = self.matches(&change.object);
        match change.kind {
            ChangeType::Added => now.then_some("ADDED"),
            ChangeType::Deleted => now.then_some("DELETED"),
            ChangeType::Modified => {
                let before = change.prev.as_deref().is_some_and(|p| self.matches(p));
                match (before, now) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
        }
    }

    fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }

    fn push(&self, buf: &mut Vec<u8>, event: &str, object: &Value) {
        match self.render {
            Render::Full => push_line(buf, event, object),
            render => push_line(buf, event, &object_body(self.rt, render, object)),
        }
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Value {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        match self.render {
            Render::Meta => {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata})
            }
            _ => {
                json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": metadata})
            }
        }
    }

    /// Sends and clears `buf` (nothing if empty); `false` if the stream is over.
    async fn send(&self, buf: &mut Vec<u8>) -> bool {
        if buf.is_empty() {
            return true;
        }
        let bytes = Bytes::from(std::mem::take(buf));
        tokio::select! {
            sent = self.tx.send(bytes) => sent.is_ok(),
            () = self.drop.cancelled() => false,
            () = self.shared.shutdown.cancelled() => false,
        }
    }
}
