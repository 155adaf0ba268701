//! `kubernetes.json`: a `kind: List` document as `kubectl get <kinds> -A -o json` prints
//! it (or a typed `<Kind>List` as the apiserver returns it), streamed one item at a time.

use std::fmt;
use std::path::Path;

use ktd_model::normalize::kube::normalize_as;
use ktd_model::{Event, KubeKind, ObjectKey};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{BundleError, Context, Msg, Out, malformed};

const HINT: &str = "kubernetes.json must be the `kind: List` document that `kubectl get pv,pvc,sc,volumeattachments,csidrivers,csinodes,nodes,volumesnapshots,volumesnapshotcontents,volumesnapshotclasses -A -o json` prints: re-create it that way, or with `ktd collect`";

/// Streams `path` into `ObjectApplied` / `ObjectRejected` events and skipped-kind reports.
pub(super) fn read_kubernetes(ctx: &Context, path: &Path, out: &Out) -> Result<(), BundleError> {
    let reader = out.open(path)?;
    let mut list = List {
        ctx,
        out,
        list_kind: None,
        pending: Vec::new(),
        without_kind: None,
        index: 0,
    };
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 16, reader));
    let parsed = serde::Deserializer::deserialize_map(&mut de, &mut list).and_then(|()| de.end());
    if let Some(e) = list.without_kind.take() {
        return Err(e);
    }
    parsed.map_err(|e| malformed(path, e.to_string(), HINT))?;
    list.finish(path)
}

struct List<'a> {
    ctx: &'a Context,
    out: &'a Out,
    /// The list's own `kind` (`List`, `PersistentVolumeList`), once read.
    list_kind: Option<String>,
    /// Items without `kind` read before the list's `kind` (kubectl sorts keys, so `items`
    /// comes first): they are typed by a `<Kind>List`, or an error in a `List`.
    pending: Vec<(u64, Value)>,
    /// Set when items lack a kind in a `kind: List` (the parse is stopped).
    without_kind: Option<BundleError>,
    index: u64,
}

impl List<'_> {
    /// The kind a `<Kind>List` gives its items.
    fn hint(&self) -> Option<KubeKind> {
        self.list_kind
            .as_deref()
            .and_then(|k| k.strip_suffix("List"))
            .and_then(KubeKind::from_kind)
    }

    /// Reads one item; gives it back when it has no kind and the list is a `kind: List`.
    fn item(&mut self, index: u64, item: Value) -> Result<(), Value> {
        let kind = match item.get("kind") {
            Some(Value::String(k)) => match KubeKind::from_kind(k) {
                Some(kind) => kind,
                None => {
                    self.out.send(Msg::Skipped(k.clone()));
                    return Ok(());
                }
            },
            _ => match (self.hint(), &self.list_kind) {
                (Some(kind), _) => kind,
                (None, None) => {
                    self.pending.push((index, item));
                    return Ok(());
                }
                (None, Some(_)) => return Err(item),
            },
        };
        let event = match normalize_as(kind, &item) {
            Ok(object) => Event::ObjectApplied { object },
            Err(e) => Event::ObjectRejected {
                kind,
                key: key_of(kind, &item),
                error: e.to_string(),
            },
        };
        self.out.send(Msg::Event(
            self.ctx.stamp.envelope(&self.ctx.kube_source, event),
        ));
        Ok(())
    }

    fn finish(&mut self, path: &Path) -> Result<(), BundleError> {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return Ok(());
        }
        if self.hint().is_none() {
            return Err(without_kind(path, &pending));
        }
        for (index, item) in pending {
            if let Err(item) = self.item(index, item) {
                return Err(without_kind(path, &[(index, item)]));
            }
        }
        Ok(())
    }
}

fn without_kind(path: &Path, pending: &[(u64, Value)]) -> BundleError {
    let first = pending
        .first()
        .map(|(index, item)| describe(*index, item))
        .unwrap_or_else(|| "?".into());
    BundleError::ItemsWithoutKind {
        path: path.to_owned(),
        items: pending.len().max(1) as u64,
        first,
    }
}

fn describe(index: u64, item: &Value) -> String {
    match item.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) => format!("item {index}, named {name:?}"),
        None => format!("item {index}"),
    }
}

fn key_of(kind: KubeKind, item: &Value) -> Option<ObjectKey> {
    let name = item.pointer("/metadata/name")?.as_str()?.to_owned();
    let namespace = item
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|_| kind.namespaced())
        .map(str::to_owned);
    Some(ObjectKey { namespace, name })
}

impl<'de> Visitor<'de> for &mut List<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes `kind: List` object with `items`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut saw_items = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "kind" => {
                    let kind: String = map.next_value()?;
                    self.list_kind = Some(kind);
                    if self.hint().is_none() && !self.pending.is_empty() {
                        return Err(self.stop_without_kind());
                    }
                }
                "items" => {
                    saw_items = true;
                    map.next_value_seed(Items(&mut *self))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_items {
            return Err(serde::de::Error::missing_field("items"));
        }
        Ok(())
    }
}

impl List<'_> {
    /// Records the error for items without kind and returns a parse error that stops reading.
    fn stop_without_kind<E: serde::de::Error>(&mut self) -> E {
        let path = self.ctx.dir.join(super::KUBERNETES_FILE);
        let pending = std::mem::take(&mut self.pending);
        self.without_kind = Some(without_kind(&path, &pending));
        E::custom("items without kind")
    }
}

struct Items<'b, 'a>(&'b mut List<'a>);

impl<'de> DeserializeSeed<'de> for Items<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of Kubernetes objects")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<Value>()? {
            let index = self.0.index;
            self.0.index += 1;
            if let Err(item) = self.0.item(index, item) {
                self.0.pending.push((index, item));
                return Err(self.0.stop_without_kind());
            }
        }
        Ok(())
    }
}
