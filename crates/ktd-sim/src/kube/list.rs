//! Wire shapes of lists and objects: `<Kind>List`, `PartialObjectMetadata(List)`, Tables,
//! and the opaque continue tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

use super::resources::ResourceType;
use super::store::{Cursor, Key, Page};
use super::table;

/// The representation the client asked for (from its `Accept` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// The objects themselves.
    Full,
    /// `PartialObjectMetadata` / `PartialObjectMetadataList` (`meta.k8s.io/v1`).
    Meta,
    /// A `meta.k8s.io/v1` Table (kubectl's human output).
    Table(Include),
}

/// What a Table row embeds (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The full object.
    Object,
}

impl Render {
    /// Reads the `Accept` header (first acceptable type wins) and `includeObject`.
    pub fn negotiate(accept: Option<&str>, include_object: Option<&str>) -> Render {
        let include = match include_object {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        };
        for media in accept.unwrap_or("").split(',') {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            if !matches!(params[0], "application/json" | "*/*" | "application/*") {
                continue;
            }
            let as_ = params.iter().find_map(|p| p.strip_prefix("as="));
            match as_ {
                None => return Render::Full,
                Some("Table") => return Render::Table(include),
                Some("PartialObjectMetadata" | "PartialObjectMetadataList") => return Render::Meta,
                Some(_) => continue,
            }
        }
        Render::Full
    }
}

/// A continue token: the list's RV and the last key returned.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContinueToken {
    v: String,
    /// The RV all pages are read at.
    pub rv: u64,
    ns: String,
    name: String,
    /// Items left after `name` (absent when selectors made counting meaningless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    left: Option<u64>,
}

impl ContinueToken {
    /// A token continuing after `key` at `rv`, with `left` items remaining (if counted).
    pub fn new(rv: u64, key: &Key, left: Option<u64>) -> Self {
        ContinueToken {
            v: "ktd-sim/v1".into(),
            rv,
            ns: key.0.clone(),
            name: key.1.clone(),
            left,
        }
    }

    /// The opaque string form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("plain struct"))
    }

    /// Parses a token; the error text follows the apiserver's.
    pub fn decode(token: &str) -> Result<Self, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|e| format!("continue key is not valid: {e}"))?;
        let token: ContinueToken = serde_json::from_slice(&bytes)
            .map_err(|e| format!("continue key is not valid: {e}"))?;
        if token.v != "ktd-sim/v1" {
            return Err("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into());
        }
        Ok(token)
    }

    /// Where the list continues.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            key: (self.ns.clone(), self.name.clone()),
            remaining: self.left,
        }
    }
}

/// Serializes an object without `kind`/`apiVersion` (items of built-in lists).
struct Bare<'a>(&'a Value);

impl Serialize for Bare<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(m) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in m {
                    if k != "kind" && k != "apiVersion" {
                        map.serialize_entry(k, v)?;
                    }
                }
                map.end()
            }
            other => other.serialize(s),
        }
    }
}

/// `{"kind":"PartialObjectMetadata",...}` for an object.
pub fn partial(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// The list metadata of a page.
fn list_meta(page: &Page, token: Option<String>) -> Value {
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(token) = token {
        meta["continue"] = token.into();
        if let Some(n) = page.remaining {
            meta["remainingItemCount"] = n.into();
        }
    }
    meta
}

/// The response body of a list page.
pub fn list_body(rt: &ResourceType, render: Render, page: &Page) -> Vec<u8> {
    let token = page
        .more_after
        .as_ref()
        .map(|key| ContinueToken::new(page.rv, key, page.remaining).encode());
    let meta = list_meta(page, token);
    match render {
        Render::Table(include) => {
            let items: Vec<&Value> = page.items.iter().map(|o| &**o).collect();
            let mut t = table::table(rt, &items, include);
            t["metadata"] = meta;
            serde_json::to_vec(&t).expect("JSON values serialize")
        }
        Render::Meta | Render::Full => {
            let (kind, api_version) = if render == Render::Meta {
                (
                    "PartialObjectMetadataList".to_owned(),
                    "meta.k8s.io/v1".to_owned(),
                )
            } else {
                (format!("{}List", rt.kind), rt.api_version())
            };
            // Write the envelope by hand so items stream straight from the store.
            let mut out = Vec::with_capacity(256 + page.items.len() * 1024);
            out.extend_from_slice(b"{\"kind\":");
            serde_json::to_writer(&mut out, &kind).expect("string");
            out.extend_from_slice(b",\"apiVersion\":");
            serde_json::to_writer(&mut out, &api_version).expect("string");
            out.extend_from_slice(b",\"metadata\":");
            serde_json::to_writer(&mut out, &meta).expect("JSON values serialize");
            out.extend_from_slice(b",\"items\":[");
            for (i, item) in page.items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let written = match render {
                    Render::Meta => serde_json::to_writer(&mut out, &partial(item)),
                    _ if rt.builtin => serde_json::to_writer(&mut out, &Bare(item)),
                    _ => serde_json::to_writer(&mut out, &**item),
                };
                written.expect("JSON values serialize");
            }
            out.extend_from_slice(b"]}");
            out
        }
    }
}

/// One object in the requested representation (GET and watch events).
pub fn object_body(rt: &ResourceType, render: Render, object: &Value) -> Value {
    match render {
        Render::Full => object.clone(),
        Render::Meta => partial(object),
        Render::Table(include) => table::table(rt, &[object], include),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = ContinueToken::new(42, &("ns".into(), "name-1".into()), Some(7));
        let s = t.encode();
        assert!(!s.contains("name-1"), "opaque: {s}");
        assert_eq!(ContinueToken::decode(&s), Ok(t));
        let cursor = ContinueToken::decode(&s).unwrap().cursor();
        assert_eq!(cursor.key, ("ns".into(), "name-1".into()));
        assert_eq!(cursor.remaining, Some(7));
        assert!(ContinueToken::decode("not a token").is_err());
        let other = URL_SAFE_NO_PAD.encode(br#"{"v":"meta.k8s.io/v1","rv":1,"ns":"","name":""}"#);
        assert!(ContinueToken::decode(&other).is_err());
    }

    #[test]
    fn accept_negotiation() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            Render::negotiate(Some(kubectl), None),
            Render::Table(Include::Metadata)
        );
        assert_eq!(
            Render::negotiate(Some(kubectl), Some("Object")),
            Render::Table(Include::Object)
        );
        assert_eq!(
            Render::negotiate(Some("application/json"), None),
            Render::Full
        );
        assert_eq!(Render::negotiate(None, None), Render::Full);
        let meta = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
        assert_eq!(Render::negotiate(Some(meta), None), Render::Meta);
        assert_eq!(
            Render::negotiate(
                Some("application/vnd.kubernetes.protobuf,application/json"),
                None
            ),
            Render::Full
        );
    }
}
