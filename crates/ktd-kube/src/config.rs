//! Configuration of the Kubernetes source and construction of its [`Client`].

use std::path::PathBuf;

use ktd_model::KubeKind;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::{Deserialize, Serialize};

/// Read timeout of every request (kube-runtime's watch idle timeout: 290 s + 5 s).
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(295);

/// What the Kubernetes source watches, and how it reaches the apiserver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KubeSourceConfig {
    /// Name of this cluster in ktd (the `instance` of `SourceId::kubernetes`, part of every
    /// event id and NATS subject). Default `default`.
    pub instance: String,
    /// kubeconfig context to use. Default: the file's `current-context`.
    pub context: Option<String>,
    /// kubeconfig file. Default: `$KUBECONFIG`, then `~/.kube/config`, then the in-cluster
    /// service account (when neither `kubeconfig` nor `context` is set).
    pub kubeconfig: Option<PathBuf>,
    /// Explicit apiserver URL (e.g. `http://127.0.0.1:8001` for `kubectl proxy`, or the
    /// simulator in tests). Takes precedence over kubeconfig and in-cluster configuration;
    /// no credentials are sent.
    pub url: Option<String>,
    /// Objects per LIST page. Default 500 (client-go's and kube-runtime's default); lower
    /// it to bound the memory of a relist on very large clusters.
    pub page_size: u32,
    /// Kinds to watch, by kind (`CSIDriver`), plural (`persistentvolumes`) or short name
    /// (`pv`, `pvc`, `vs`, …). Default: all twelve (`KubeKind::ALL`).
    #[serde(with = "kind_names")]
    #[schemars(with = "Vec<String>")]
    pub kinds: Vec<KubeKind>,
    /// Which Pods to watch (the CSI driver's).
    pub pods: PodSelection,
    /// Which core/v1 Events to watch (the storage-related ones).
    pub events: EventSelection,
}

impl Default for KubeSourceConfig {
    fn default() -> Self {
        KubeSourceConfig {
            instance: "default".into(),
            context: None,
            kubeconfig: None,
            url: None,
            page_size: 500,
            kinds: KubeKind::ALL.to_vec(),
            pods: PodSelection::default(),
            events: EventSelection::default(),
        }
    }
}

/// `kinds` as Kubernetes spells them (`CSIDriver`), accepting plurals and short names.
mod kind_names {
    use ktd_model::KubeKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(kinds: &[KubeKind], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(kinds.iter().map(|k| k.as_str()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<KubeKind>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|k| k.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Which Pods the source watches: democratic-csi's controller and node pods by default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PodSelection {
    /// Only Pods in this namespace. Default: every namespace.
    pub namespace: Option<String>,
    /// Server-side label selector. Default `app.kubernetes.io/name=democratic-csi` (the
    /// label democratic-csi's Helm chart puts on its controller and node pods).
    pub label_selector: Option<String>,
    /// Server-side field selector (e.g. `spec.nodeName=node-1`). Default: none.
    pub field_selector: Option<String>,
}

impl Default for PodSelection {
    fn default() -> Self {
        PodSelection {
            namespace: None,
            label_selector: Some("app.kubernetes.io/name=democratic-csi".into()),
            field_selector: None,
        }
    }
}

/// Which core/v1 Events the source watches: those about storage objects (any reason), and
/// those about anything else (Pods, mostly) whose reason is about volumes.
///
/// Field selectors cannot express "kind is one of …", so `involved_kinds` and `reasons` are
/// applied by the source after receipt (other Events are read and dropped, never stored);
/// `field_selector` is applied by the apiserver. With both lists empty every Event is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EventSelection {
    /// Only Events in this namespace. Default: every namespace.
    pub namespace: Option<String>,
    /// Server-side field selector (e.g. `type=Warning`). Default: none.
    pub field_selector: Option<String>,
    /// Keep every Event whose `involvedObject.kind` is one of these. Default:
    /// PersistentVolumeClaim, PersistentVolume, VolumeSnapshot, VolumeSnapshotContent,
    /// VolumeAttachment (where the PV controller, external-provisioner, -attacher, -resizer
    /// and snapshotter record provisioning, binding, attach, resize and snapshot outcomes).
    pub involved_kinds: Vec<String>,
    /// Also keep Events about any other object with one of these reasons. Default: the
    /// kubelet's and attach-detach controller's volume reasons, which are recorded against
    /// Pods (`FailedMount`, `FailedAttachVolume`, …).
    pub reasons: Vec<String>,
}

impl Default for EventSelection {
    fn default() -> Self {
        EventSelection {
            namespace: None,
            field_selector: None,
            involved_kinds: [
                "PersistentVolumeClaim",
                "PersistentVolume",
                "VolumeSnapshot",
                "VolumeSnapshotContent",
                "VolumeAttachment",
            ]
            .map(String::from)
            .to_vec(),
            // kubernetes pkg/kubelet/events/event.go
            reasons: [
                "FailedAttachVolume",
                "FailedDetachVolume",
                "FailedMount",
                "FailedUnMount",
                "FailedMapVolume",
                "AlreadyMountedVolume",
                "SuccessfulAttachVolume",
                "SuccessfulMountVolume",
                "VolumeResizeFailed",
                "VolumeResizeSuccessful",
                "FileSystemResizeFailed",
                "FileSystemResizeSuccessful",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl EventSelection {
    /// Whether a raw Event (its JSON) passes the client-side filters.
    pub fn keeps(&self, event: &serde_json::Value) -> bool {
        if self.involved_kinds.is_empty() && self.reasons.is_empty() {
            return true;
        }
        let field = |pointer: &str| {
            event
                .pointer(pointer)
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
        };
        let kind = field("/involvedObject/kind");
        let reason = field("/reason");
        self.involved_kinds.iter().any(|k| k == kind) || self.reasons.iter().any(|r| r == reason)
    }
}

/// Why a Kubernetes client could not be built. Not retryable: the configuration or the
/// environment must change.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `url` is not a valid URL.
    #[error("`{url}` is not a valid apiserver URL ({reason}); expected e.g. https://10.0.0.1:6443")]
    Url {
        /// The configured URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The kubeconfig file could not be read or parsed.
    #[error(
        "cannot read the kubeconfig {path}: check the path (or unset `kubeconfig` to use $KUBECONFIG / ~/.kube/config)"
    )]
    ReadKubeconfig {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig has no usable context/cluster/user.
    #[error("the kubeconfig has no usable context{}: list them with `kubectl config get-contexts`", context.as_deref().map(|c| format!(" `{c}`")).unwrap_or_default())]
    Kubeconfig {
        /// The requested context, if any.
        context: Option<String>,
        /// The underlying error.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Neither a kubeconfig nor an in-cluster service account was found.
    #[error(
        "no Kubernetes configuration found: set `kubeconfig`/`context` or `url`, export KUBECONFIG, or run ktd in a pod with a service account"
    )]
    Infer(#[source] kube::config::InferConfigError),
    /// The client could not be created from a valid configuration (TLS setup).
    #[error("cannot create the Kubernetes client (TLS or proxy configuration)")]
    Build(#[source] kube::Error),
}

impl KubeSourceConfig {
    /// The kinds to watch, each once, in `KubeKind` order.
    pub fn watched_kinds(&self) -> Vec<KubeKind> {
        let mut kinds = self.kinds.clone();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// Builds the client: from `url` if set; else from `kubeconfig`/`context` if set; else
    /// inferred (`$KUBECONFIG`, `~/.kube/config`, in-cluster service account). Clone the
    /// result for every watcher (it shares one connection pool).
    pub async fn client(&self) -> Result<Client, ClientError> {
        let config = if let Some(url) = &self.url {
            let uri = url
                .parse()
                .map_err(|e: http::uri::InvalidUri| ClientError::Url {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
            kube::Config::new(uri)
        } else if self.kubeconfig.is_some() || self.context.is_some() {
            let options = KubeConfigOptions {
                context: self.context.clone(),
                ..KubeConfigOptions::default()
            };
            let kubeconfig_error = |source| ClientError::Kubeconfig {
                context: self.context.clone(),
                source,
            };
            match &self.kubeconfig {
                Some(path) => {
                    let file = Kubeconfig::read_from(path).map_err(|source| {
                        ClientError::ReadKubeconfig {
                            path: path.clone(),
                            source,
                        }
                    })?;
                    kube::Config::from_custom_kubeconfig(file, &options)
                        .await
                        .map_err(kubeconfig_error)?
                }
                None => kube::Config::from_kubeconfig(&options)
                    .await
                    .map_err(kubeconfig_error)?,
            }
        } else {
            kube::Config::infer().await.map_err(ClientError::Infer)?
        };
        let mut config = config;
        if config.read_timeout.is_none() {
            // kube 5 sets no read timeout: a LIST the apiserver never answers would stall
            // its watcher forever. Healthy watches are closed by the server after 290 s
            // (kube-runtime's `timeoutSeconds`), so this never cuts one short.
            config.read_timeout = Some(READ_TIMEOUT);
            config.reset_reader_on_write = true;
        }
        Client::try_from(config).map_err(ClientError::Build)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_watch_everything_and_parse_from_yaml_like_json() {
        let c: KubeSourceConfig = serde_json::from_str(r#"{"instance": "prod"}"#).unwrap();
        assert_eq!(c.instance, "prod");
        assert_eq!(c.watched_kinds(), KubeKind::ALL.to_vec());
        assert_eq!(c.page_size, 500);
        let c: KubeSourceConfig =
            serde_json::from_str(r#"{"kinds": ["pv", "CSIDriver", "volumesnapshots"]}"#).unwrap();
        assert_eq!(
            c.watched_kinds(),
            [
                KubeKind::PersistentVolume,
                KubeKind::CsiDriver,
                KubeKind::VolumeSnapshot
            ]
        );
        let text = serde_json::to_string(&c).unwrap();
        assert!(text.contains(r#""kinds":["PersistentVolume","CSIDriver","VolumeSnapshot"]"#));
        let typo = serde_json::from_str::<KubeSourceConfig>(r#"{"kinds": ["pvv"]}"#);
        assert!(
            typo.unwrap_err()
                .to_string()
                .contains("unknown Kubernetes kind `pvv`")
        );
        let bad = serde_json::from_str::<KubeSourceConfig>(r#"{"instanse": "prod"}"#);
        assert!(bad.unwrap_err().to_string().contains("unknown field"));
    }

    #[test]
    fn event_selection_keeps_storage_objects_and_volume_reasons() {
        let ev = |kind: &str, reason: &str| serde_json::json!({"involvedObject": {"kind": kind}, "reason": reason});
        let sel = EventSelection::default();
        assert!(sel.keeps(&ev("PersistentVolumeClaim", "ProvisioningFailed")));
        assert!(sel.keeps(&ev("PersistentVolumeClaim", "Anything")));
        assert!(sel.keeps(&ev("Pod", "FailedMount")));
        assert!(
            !sel.keeps(&ev("Pod", "Pulled")),
            "ordinary pod events stay out"
        );
        assert!(!sel.keeps(&ev("Deployment", "ScalingReplicaSet")));
        let all = EventSelection {
            involved_kinds: vec![],
            reasons: vec![],
            ..EventSelection::default()
        };
        assert!(all.keeps(&ev("Deployment", "x")));
    }

    #[tokio::test]
    async fn a_bad_url_says_what_is_expected() {
        let c = KubeSourceConfig {
            url: Some("not a url".into()),
            ..KubeSourceConfig::default()
        };
        let Err(err) = c.client().await else {
            panic!("`not a url` was accepted");
        };
        let err = err.to_string();
        assert!(err.contains("not a valid apiserver URL"), "{err}");
    }
}
