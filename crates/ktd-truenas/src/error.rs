//! What can go wrong talking to TrueNAS, and whether trying again can help.

use std::time::Duration;

/// A failed TrueNAS call (or connection). [`ClientError::retryable`] says whether the
/// client retries it by itself.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The configuration is unusable (bad URL, unreadable CA file, missing key). Not retryable.
    #[error("invalid TrueNAS configuration: {0}")]
    Config(String),
    /// Refused before sending anything: the API key would cross the network in clear text.
    /// Not retryable.
    #[error(
        "refusing to send the TrueNAS API key over plain {scheme}:// to the non-loopback host \
         {host}: TrueNAS 25.04+ revokes an API key used on an unencrypted connection from \
         another machine (and anyone on the path could read it). Use an https:// URL (set \
         tls.ca_file for a self-signed certificate); only if you accept the risk, set \
         allow_insecure_api_key: true"
    )]
    InsecureTransport {
        /// `http` or `ws`.
        scheme: String,
        /// The host.
        host: String,
    },
    /// 401 / ENOTAUTHENTICATED / AUTH_ERR / EXPIRED. Not retryable.
    #[error(
        "the API key was rejected or revoked by TrueNAS ({detail}): create a new key (Credentials \
         → API Keys) for a user with a read-only role and update the secret. A 25.04+ key is \
         revoked when it is used over plain HTTP from another machine"
    )]
    Unauthorized {
        /// What the server said.
        detail: String,
    },
    /// 403 / EACCES. Not retryable.
    #[error(
        "TrueNAS refused {method} ({detail}): the key's user lacks a read role, e.g. \
         READONLY_ADMIN (24.04+)"
    )]
    Forbidden {
        /// The method.
        method: String,
        /// What the server said.
        detail: String,
    },
    /// The method does not exist on this release (e.g. `zfs.snapshot.query` on 25.10, where
    /// `pool.snapshot.query` replaces it). Not retryable.
    #[error("TrueNAS has no method {method} on this release{hint}")]
    MethodNotFound {
        /// The method.
        method: String,
        /// A hint on what to use instead ("" when none).
        hint: String,
    },
    /// No answer in time. Retryable.
    #[error("{method} got no answer within {timeout:?} (TrueNAS busy or unreachable)")]
    Timeout {
        /// The method.
        method: String,
        /// The limit.
        timeout: Duration,
    },
    /// HTTP 5xx or a JSON-RPC internal error. Retryable.
    #[error("TrueNAS failed on {method}: {detail}")]
    Server {
        /// The method.
        method: String,
        /// Status and message.
        detail: String,
    },
    /// The server is rate limiting or at its concurrent-call limit. Retryable.
    #[error("TrueNAS is throttling {method}: {detail}")]
    Busy {
        /// The method.
        method: String,
        /// What it said.
        detail: String,
    },
    /// Could not connect, or the connection dropped while a call was pending. Retryable.
    #[error("connection to TrueNAS lost during {method}: {detail}")]
    Connection {
        /// The method (or `connect`).
        method: String,
        /// Why.
        detail: String,
    },
    /// The answer is not the JSON expected. Not retryable (the same call gives the same
    /// answer).
    #[error("TrueNAS answered {method} with malformed data: {detail}")]
    Malformed {
        /// The method.
        method: String,
        /// What was wrong.
        detail: String,
    },
    /// Writing an answer out (bundle collection) failed: disk full, closed pipe. Not
    /// retryable.
    #[error("could not write the answer of {method}: {detail}")]
    Output {
        /// The method.
        method: String,
        /// The I/O error.
        detail: String,
    },
    /// Any other error the method returned (validation, ENOENT, ...). Not retryable.
    #[error("{method} failed: {detail}")]
    Call {
        /// The method.
        method: String,
        /// The server's message.
        detail: String,
    },
    /// Too many consecutive failures: the client is not calling TrueNAS until `retry_in`
    /// has passed. Retryable (later).
    #[error(
        "circuit breaker open after {failures} consecutive TrueNAS failures (last: {last}); \
         next attempt in {retry_in:?}"
    )]
    CircuitOpen {
        /// Consecutive failures.
        failures: u32,
        /// The last failure.
        last: String,
        /// Until the probe.
        retry_in: Duration,
    },
}

impl ClientError {
    /// Whether waiting and trying again can help.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ClientError::Timeout { .. }
                | ClientError::Server { .. }
                | ClientError::Busy { .. }
                | ClientError::Connection { .. }
                | ClientError::CircuitOpen { .. }
        )
    }

    /// The method the error is about, when there is one.
    pub fn method(&self) -> Option<&str> {
        match self {
            ClientError::Forbidden { method, .. }
            | ClientError::MethodNotFound { method, .. }
            | ClientError::Timeout { method, .. }
            | ClientError::Server { method, .. }
            | ClientError::Busy { method, .. }
            | ClientError::Connection { method, .. }
            | ClientError::Malformed { method, .. }
            | ClientError::Output { method, .. }
            | ClientError::Call { method, .. } => Some(method),
            _ => None,
        }
    }

    /// Whether the server said the method does not exist.
    pub fn is_method_not_found(&self) -> bool {
        matches!(self, ClientError::MethodNotFound { .. })
    }

    /// Names `method` in an error built before the method was known (JSON-RPC answers).
    pub(crate) fn with_method(self, method: &str) -> Self {
        match self {
            ClientError::MethodNotFound { method: m, .. } if m.is_empty() => {
                ClientError::method_not_found(method)
            }
            mut e => {
                if let ClientError::Forbidden { method: m, .. }
                | ClientError::Timeout { method: m, .. }
                | ClientError::Server { method: m, .. }
                | ClientError::Busy { method: m, .. }
                | ClientError::Connection { method: m, .. }
                | ClientError::Malformed { method: m, .. }
                | ClientError::Call { method: m, .. } = &mut e
                    && (m.is_empty() || m.starts_with('('))
                {
                    *m = method.to_owned();
                }
                e
            }
        }
    }

    pub(crate) fn output(method: &str, e: &std::io::Error) -> Self {
        ClientError::Output {
            method: method.to_owned(),
            detail: e.to_string(),
        }
    }

    pub(crate) fn method_not_found(method: &str) -> Self {
        let hint = match method {
            "zfs.snapshot.query" => ": from 25.10 use pool.snapshot.query",
            "pool.snapshot.query" => ": before 25.10 use zfs.snapshot.query",
            _ => "",
        };
        ClientError::MethodNotFound {
            method: method.to_owned(),
            hint: hint.to_owned(),
        }
    }
}
