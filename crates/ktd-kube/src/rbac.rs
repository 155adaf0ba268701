//! The Kubernetes permissions the source needs: `list` and `watch` on every watched kind,
//! nothing else (no `get` of single objects, never Secrets). The Helm chart's ClusterRole
//! in `deploy/` must grant at least these; [`cluster_role_yaml`] renders them.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::config::KubeSourceConfig;

/// Verbs the source uses on every watched resource.
pub const VERBS: [&str; 2] = ["list", "watch"];

/// One RBAC rule: an API group and its resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// API group (`""` for core).
    pub group: &'static str,
    /// Resource plurals in that group.
    pub resources: Vec<&'static str>,
}

/// The rules the configured source needs, one per API group.
pub fn required_rules(config: &KubeSourceConfig) -> Vec<Rule> {
    let mut groups = BTreeMap::<&'static str, Vec<&'static str>>::new();
    for kind in config.watched_kinds() {
        groups.entry(kind.group()).or_default().push(kind.plural());
    }
    groups
        .into_iter()
        .map(|(group, resources)| Rule { group, resources })
        .collect()
}

/// A ClusterRole named `name` granting exactly [`required_rules`].
pub fn cluster_role_yaml(name: &str, config: &KubeSourceConfig) -> String {
    let mut out = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {name}\nrules:\n"
    );
    for rule in required_rules(config) {
        let _ = writeln!(out, "  - apiGroups: [\"{}\"]", rule.group);
        let _ = writeln!(out, "    resources: [{}]", quoted(&rule.resources));
        let _ = writeln!(out, "    verbs: [{}]", quoted(&VERBS));
    }
    out
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_covered_once() {
        let rules = required_rules(&KubeSourceConfig::default());
        let groups: Vec<_> = rules.iter().map(|r| r.group).collect();
        assert_eq!(groups, ["", "snapshot.storage.k8s.io", "storage.k8s.io"]);
        let n: usize = rules.iter().map(|r| r.resources.len()).sum();
        assert_eq!(n, 12);
        let yaml = cluster_role_yaml("ktd-read", &KubeSourceConfig::default());
        assert!(yaml.contains("resources: [\"volumesnapshots\", \"volumesnapshotcontents\", \"volumesnapshotclasses\"]"), "{yaml}");
        assert!(!yaml.contains("secrets"));
    }
}
