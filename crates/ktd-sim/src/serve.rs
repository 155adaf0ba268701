//! Serving a whole world: one fake kube-apiserver per cluster and one TrueNAS simulator,
//! on loopback (or a chosen address), until shutdown.

use std::net::{IpAddr, SocketAddr};

use tokio_util::sync::CancellationToken;

use crate::kube::KubeApiServer;
use crate::truenas::TrueNasServer;
use crate::world::World;

/// Where to listen.
#[derive(Clone, Copy, Debug)]
pub struct Bind {
    /// Address (loopback by default).
    pub ip: IpAddr,
    /// TrueNAS port (0 = any free port).
    pub truenas_port: u16,
    /// First apiserver port; cluster `i` gets `kube_port + i` (0 = any free ports).
    pub kube_port: u16,
}

impl Default for Bind {
    fn default() -> Self {
        Bind {
            ip: IpAddr::from([127, 0, 0, 1]),
            truenas_port: 0,
            kube_port: 0,
        }
    }
}

/// The running servers of a world.
pub struct SimServers {
    /// `(cluster name, apiserver)` in world order.
    pub clusters: Vec<(String, KubeApiServer)>,
    /// The TrueNAS simulator.
    pub truenas: TrueNasServer,
    /// The API key clients should use (the world's first non-revoked key).
    pub api_key: Option<String>,
}

impl SimServers {
    /// Starts every server of `world`; they stop when `shutdown` is cancelled.
    pub async fn start(
        world: World,
        bind: Bind,
        shutdown: CancellationToken,
    ) -> std::io::Result<SimServers> {
        let api_key = world
            .nas
            .api_keys
            .iter()
            .find(|k| !k.revoked)
            .map(|k| k.key.clone());
        let truenas = TrueNasServer::start(
            world.nas,
            SocketAddr::new(bind.ip, bind.truenas_port),
            shutdown.child_token(),
        )
        .await?;
        let mut clusters = Vec::with_capacity(world.clusters.len());
        for (i, cluster) in world.clusters.into_iter().enumerate() {
            let port = if bind.kube_port == 0 {
                0
            } else {
                bind.kube_port
                    .saturating_add(u16::try_from(i).unwrap_or(u16::MAX))
            };
            let name = cluster.name.clone();
            let server = KubeApiServer::start(
                cluster,
                SocketAddr::new(bind.ip, port),
                shutdown.child_token(),
            )
            .await?;
            clusters.push((name, server));
        }
        Ok(SimServers {
            clusters,
            truenas,
            api_key,
        })
    }

    /// A kubeconfig (YAML) with one context per simulated cluster, named after it.
    pub fn kubeconfig(&self) -> String {
        let mut clusters = String::new();
        let mut contexts = String::new();
        let mut users = String::new();
        for (name, server) in &self.clusters {
            clusters.push_str(&format!(
                "- name: {name}\n  cluster:\n    server: {}\n",
                server.url()
            ));
            contexts.push_str(&format!(
                "- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n"
            ));
            users.push_str(&format!("- name: {name}\n  user: {{}}\n"));
        }
        let current = self
            .clusters
            .first()
            .map(|(n, _)| n.as_str())
            .unwrap_or_default();
        format!(
            "apiVersion: v1\nkind: Config\npreferences: {{}}\ncurrent-context: {current}\nclusters:\n{clusters}contexts:\n{contexts}users:\n{users}"
        )
    }
}
