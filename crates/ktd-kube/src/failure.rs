//! Watcher errors: what they mean for a human, and which of them are worth an event.
//!
//! kube-runtime's watcher yields errors as stream items and retries by itself (with
//! [`default_backoff`](kube::runtime::WatchStreamExt::default_backoff)). A persistent
//! failure therefore arrives as one error per backoff tick; [`FailureGate`] turns that into
//! one `WatchFailed` event per failure episode (a new episode starts when the failure
//! changes, or after the kind was healthy or quiet for [`QUIET`]).

use std::time::Duration;

use ktd_model::{KubeKind, Timestamp};
use kube::runtime::watcher;

/// After this long without an error the next error starts a new episode (and is reported
/// again). The default backoff tops out at 30 s (plus jitter), so a persistent failure
/// stays within one episode.
pub const QUIET: Duration = Duration::from_secs(120);

/// What went wrong, as far as the reaction to it is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// 403: RBAC does not allow `verb` on the kind.
    Forbidden {
        /// `list` or `watch`.
        verb: &'static str,
    },
    /// 404: the apiserver does not serve the kind (snapshot CRDs not installed).
    NotServed,
    /// The apiserver could not be reached (connection refused, TLS, timeout).
    Unreachable,
    /// The apiserver answered with another error status.
    Status {
        /// HTTP status code.
        code: u16,
    },
    /// The apiserver's answer could not be read.
    Unreadable,
    /// 410 Expired: the watcher re-lists by itself; routine, not reported.
    Expired,
    /// An established watch stream broke; the watcher resumes from its last
    /// resourceVersion at once. Routine, not reported (if resuming fails, that is).
    Interrupted,
}

impl Failure {
    /// Whether this failure deserves a `WatchFailed` event (routine ones only get logged).
    pub(crate) fn is_reported(&self) -> bool {
        !matches!(self, Failure::Expired | Failure::Interrupted)
    }
}

/// Classifies a watcher error; returns the failure and the verb it happened on.
pub(crate) fn classify(err: &watcher::Error) -> (Failure, &'static str) {
    match err {
        watcher::Error::InitialListFailed(e) => (client_failure(e, "list", false), "list"),
        watcher::Error::WatchStartFailed(e) => (client_failure(e, "watch", false), "watch"),
        watcher::Error::WatchFailed(e) => (client_failure(e, "watch", true), "watch"),
        watcher::Error::WatchError(status) => (status_failure(status.code, "watch"), "watch"),
        watcher::Error::NoResourceVersion => (Failure::Unreadable, "list"),
    }
}

fn status_failure(code: u16, verb: &'static str) -> Failure {
    match code {
        403 => Failure::Forbidden { verb },
        404 => Failure::NotServed,
        410 => Failure::Expired,
        code => Failure::Status { code },
    }
}

fn client_failure(e: &kube::Error, verb: &'static str, established: bool) -> Failure {
    match e {
        kube::Error::Api(status) => status_failure(status.code, verb),
        kube::Error::SerdeError(_) | kube::Error::FromUtf8(_) => Failure::Unreadable,
        _ if established => Failure::Interrupted,
        kube::Error::ReadEvents(_) | kube::Error::HyperError(_) | kube::Error::Service(_) => {
            Failure::Unreachable
        }
        _ => Failure::Unreachable,
    }
}

/// The human text of a failure: what happened, why, and what to do.
pub(crate) fn message(kind: KubeKind, failure: &Failure, err: &watcher::Error) -> String {
    let plural = kind.plural();
    let group = if kind.group().is_empty() {
        "the core API group".to_owned()
    } else {
        format!("API group \"{}\"", kind.group())
    };
    let detail = detail(err);
    let verb = classify(err).1;
    match failure {
        Failure::Forbidden { .. } => format!(
            "ktd's service account may not {verb} {plural} in {group}: grant it list and watch on \
             {plural} (see the ClusterRole in deploy/ RBAC) (apiserver: {detail})"
        ),
        Failure::NotServed if kind.group() == "snapshot.storage.k8s.io" => format!(
            "the snapshot.storage.k8s.io/v1 CRDs are not installed (VolumeSnapshot* kinds cannot \
             be observed): install the external-snapshotter CRDs, or remove the snapshot kinds \
             from `kinds` (apiserver: {detail})"
        ),
        Failure::NotServed => format!(
            "the apiserver does not serve {} {plural} (404): is the API disabled or is this \
             Kubernetes release too old? (apiserver: {detail})",
            kind.api_version()
        ),
        Failure::Unreachable => format!(
            "cannot reach the Kubernetes apiserver to {verb} {plural}: check the URL or \
             kubeconfig context, the network and the apiserver's health; retrying with backoff \
             ({detail})"
        ),
        Failure::Status { code } => format!(
            "the apiserver failed to {verb} {plural} with HTTP {code}; retrying with backoff \
             (apiserver: {detail})"
        ),
        Failure::Unreadable => format!(
            "the apiserver's answer for {plural} could not be read (is a proxy rewriting it?); \
             retrying with backoff ({detail})"
        ),
        Failure::Expired | Failure::Interrupted => {
            format!("the watch of {plural} restarted: {detail}")
        }
    }
}

/// The most specific description of an error: the apiserver's own message when there is
/// one, else the error chain.
fn detail(err: &watcher::Error) -> String {
    let status = match err {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s))
        | watcher::Error::WatchError(s) => Some(s),
        _ => None,
    };
    if let Some(s) = status
        && !s.message.is_empty()
    {
        return s.message.clone();
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Rate-limits failure reports: one per episode.
#[derive(Debug, Default)]
pub(crate) struct FailureGate {
    /// The failure of the current episode and when it was last seen.
    last: Option<(Failure, Timestamp)>,
}

impl FailureGate {
    /// Records a failure; true when it starts a new episode and must be reported.
    pub(crate) fn report(&mut self, failure: &Failure, now: Timestamp) -> bool {
        let new_episode = match &self.last {
            Some((last, at)) => last != failure || now.since(*at) >= QUIET,
            None => true,
        };
        self.last = Some((failure.clone(), now));
        new_episode
    }

    /// The kind delivered data again: the episode is over.
    pub(crate) fn healthy(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_unix_secs(secs)
    }

    #[test]
    fn one_report_per_episode() {
        let mut g = FailureGate::default();
        let forbidden = Failure::Forbidden { verb: "list" };
        assert!(g.report(&forbidden, t(0)));
        assert!(!g.report(&forbidden, t(1)));
        assert!(
            !g.report(&forbidden, t(31)),
            "backoff ticks are the same episode"
        );
        assert!(
            g.report(&Failure::Unreachable, t(32)),
            "a different failure is news"
        );
        assert!(g.report(&forbidden, t(33)));
        assert!(
            g.report(&forbidden, t(33 + 120)),
            "after a quiet period it is news again"
        );
        g.healthy();
        assert!(
            g.report(&forbidden, t(154)),
            "after recovery it is news again"
        );
    }

    #[test]
    fn status_codes_map_to_failures() {
        let status = |code| {
            watcher::Error::InitialListFailed(kube::Error::Api(Box::new(kube::core::Status {
                code,
                message: "nope".into(),
                ..kube::core::Status::default()
            })))
        };
        assert_eq!(
            classify(&status(403)).0,
            Failure::Forbidden { verb: "list" }
        );
        assert_eq!(classify(&status(404)).0, Failure::NotServed);
        assert_eq!(classify(&status(410)).0, Failure::Expired);
        assert_eq!(classify(&status(500)).0, Failure::Status { code: 500 });
        let msg = message(
            KubeKind::VolumeAttachment,
            &Failure::Forbidden { verb: "list" },
            &status(403),
        );
        assert!(
            msg.contains("may not list volumeattachments in API group \"storage.k8s.io\""),
            "{msg}"
        );
        let msg = message(KubeKind::VolumeSnapshot, &Failure::NotServed, &status(404));
        assert!(msg.contains("CRDs are not installed"), "{msg}");
    }
}
