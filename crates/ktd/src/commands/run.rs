//! `ktd run`: the daemon.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use ktd_kube::{KnownObjects, KubeSource};
use ktd_log::EventLog;
use ktd_log::embedded::RedbLog;
use ktd_log::jetstream::JetStreamLog;
use ktd_truenas::{Poller, PollerState, TrueNasClient, TrueNasConfig};
use tokio_util::sync::CancellationToken;

use crate::config::{LogConfig, RunConfig};
use crate::daemon::{self, BatchOptions, Ingest};

/// Runs the daemon until SIGINT/SIGTERM.
pub async fn run(
    config: Option<&std::path::Path>,
    context: Option<String>,
) -> anyhow::Result<ExitCode> {
    let mut cfg = RunConfig::load(config)?;
    if let Some(context) = context {
        cfg.kubernetes.get_or_insert_with(Default::default).context = Some(context);
    }
    let shutdown = CancellationToken::new();
    let abort = CancellationToken::new();
    spawn_signal_handler(shutdown.clone(), abort.clone());
    match &cfg.log {
        LogConfig::Embedded { path } => {
            let log = RedbLog::open(path).await.with_context(|| {
                format!("cannot open the embedded event log {}", path.display())
            })?;
            run_with(Arc::new(log), &cfg, shutdown, abort).await
        }
        LogConfig::Nats(js) => {
            let log = JetStreamLog::connect(js.clone())
                .await
                .context("cannot connect to NATS JetStream")?;
            run_with(Arc::new(log), &cfg, shutdown, abort).await
        }
    }
}

async fn run_with<L: EventLog>(
    log: Arc<L>,
    cfg: &RunConfig,
    shutdown: CancellationToken,
    abort: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let ingest = Ingest::new(log.clone(), shutdown.clone());
    if let Some(kube) = &cfg.kubernetes {
        let mut known = KnownObjects::new(kube.instance.clone());
        daemon::replay_observations(&*log, |env| known.apply(env)).await?;
        let client = kube
            .client()
            .await
            .context("cannot build a Kubernetes client")?;
        ingest.source(
            "kubernetes",
            KubeSource::new(client, kube.clone()).known(known).stream(),
        );
        tracing::info!(instance = %kube.instance, "watching Kubernetes");
    }
    if let Some(nas) = &cfg.truenas {
        let mut state = PollerState::rebuild(&nas.instance, std::iter::empty());
        daemon::replay_observations(&*log, |env| state.apply(env)).await?;
        ingest.source(
            "truenas",
            truenas_source(nas.clone(), state, shutdown.clone()),
        );
        tracing::info!(instance = %nas.instance, url = %nas.url, "polling TrueNAS");
    }
    ingest.ticks(cfg.instance.clone(), cfg.tick_interval());
    let views = tokio::spawn({
        let (log, config, instance, stop) = (
            log.clone(),
            cfg.findings.clone(),
            cfg.instance.clone(),
            shutdown.clone(),
        );
        async move {
            let result = daemon::views::run(log, config, &instance, stop.clone()).await;
            if result.is_err() {
                stop.cancel(); // findings are part of the job: stop rather than ingest blind
            }
            result
        }
    });
    eprintln!("ktd run: ingesting; Ctrl-C to stop");
    let ingested = ingest.run(BatchOptions::default(), abort).await;
    // Ingest stopped (shutdown, or a fatal log error that also cancelled `shutdown`).
    let views_failed = match views.await {
        Ok(Ok(stats)) => {
            tracing::info!(
                folded = stats.folded,
                appended = stats.appended,
                "findings consumer stopped"
            );
            None
        }
        Ok(Err(e)) => Some(format!("the findings consumer failed: {e}")),
        Err(e) => Some(format!("the findings consumer panicked: {e}")),
    };
    match (ingested, views_failed) {
        (Err(e), _) => Err(anyhow::Error::new(e).context(
            "the event log refused a write; nothing of the failed batch was stored, and it will be observed again on the next start",
        )),
        (Ok(_), Some(why)) => anyhow::bail!(
            "{why}; the observations ingested so far are in the log and the findings are rebuilt from them on the next start"
        ),
        (Ok(stats), None) => {
            eprintln!(
                "ktd run: stopped cleanly; {} events appended ({} already in the log) in {} batches",
                stats.appended, stats.duplicates, stats.batches
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Connects (retrying while TrueNAS is unreachable: ktd may start before its NAS), then
/// polls every `poll_interval`.
fn truenas_source(
    config: TrueNasConfig,
    state: PollerState,
    shutdown: CancellationToken,
) -> impl futures::Stream<Item = ktd_model::Envelope> + Send + 'static {
    let stop = shutdown.clone();
    let connect = async move {
        let mut backoff = std::time::Duration::from_secs(1);
        loop {
            match TrueNasClient::connect(config.clone()).await {
                Ok(client) => return Some((client, config, state)),
                Err(e) if e.retryable() => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot reach TrueNAS yet");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.cancelled() => return None,
                    }
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(60));
                }
                Err(e) => {
                    tracing::error!(error = %e, "TrueNAS refused ktd; not polling it (fix the configuration and restart)");
                    eprintln!("ktd run: TrueNAS: {e}");
                    return None;
                }
            }
        }
    };
    futures::stream::once(connect)
        .filter_map(|x| async move { x })
        .flat_map(move |(client, config, state)| {
            Poller::new(client, config.instance.clone(), state).stream(stop.clone())
        })
        .flat_map(futures::stream::iter)
}

/// First SIGINT/SIGTERM: graceful shutdown. Second: stop retrying. Third: exit now.
fn spawn_signal_handler(shutdown: CancellationToken, abort: CancellationToken) {
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            wait_for_signal().await;
            count += 1;
            match count {
                1 => {
                    eprintln!(
                        "ktd run: shutting down (draining pending events; signal again to stop retrying)"
                    );
                    shutdown.cancel();
                }
                2 => {
                    eprintln!("ktd run: no more retries (signal again to exit immediately)");
                    abort.cancel();
                }
                _ => std::process::exit(130),
            }
        }
    });
}

/// Waits for SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
