//! Shared helpers of the binary's end-to-end tests.

#![allow(dead_code)]

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ktd_sim::{GenerateOptions, KubeApiServer, TrueNasServer, World};
use tokio_util::sync::CancellationToken;

/// Kills the child if the test fails before it could stop it.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM and expects a clean exit within 30 s.
pub fn stop(mut child: Guard) {
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            return;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A generated world served in this process: one cluster's apiserver and the TrueNAS.
pub struct Sim {
    /// Runs the servers.
    pub rt: tokio::runtime::Runtime,
    /// The world as generated.
    pub world: World,
    /// The fake apiserver of the first cluster.
    pub kube: KubeApiServer,
    /// The TrueNAS simulator.
    pub nas: TrueNasServer,
    shutdown: CancellationToken,
}

impl Sim {
    /// Serves a one-cluster world of `volumes` volumes with one snapshot each.
    pub fn start(volumes: usize) -> Sim {
        Sim::serve(ktd_sim::generate(&GenerateOptions {
            volumes,
            snapshots_per_volume: 1,
            clusters: 1,
            ..GenerateOptions::default()
        }))
    }

    /// Serves `world` (its first cluster and its TrueNAS).
    pub fn serve(world: World) -> Sim {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let shutdown = CancellationToken::new();
        let addr = "127.0.0.1:0".parse().unwrap();
        let kube = rt
            .block_on(KubeApiServer::start(
                world.clusters[0].clone(),
                addr,
                shutdown.clone(),
            ))
            .unwrap();
        let nas = rt
            .block_on(TrueNasServer::start(
                world.nas.clone(),
                addr,
                shutdown.clone(),
            ))
            .unwrap();
        Sim {
            rt,
            world,
            kube,
            nas,
            shutdown,
        }
    }

    /// The API key clients use.
    pub fn api_key(&self) -> String {
        self.world.nas.api_keys[0].key.clone()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
