//! Label and field selectors, with the syntax and semantics of the real apiserver.
//!
//! Labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, `a>1`, `a<1`,
//! comma-separated (AND). `!=` and `notin` also match objects without the label.
//! Fields: `f=v`, `f==v`, `f!=v`, comma-separated, with `\` escaping `,`, `=`, `!` and `\`;
//! only the fields the type supports (others are a 400 "field label not supported").

use serde_json::Value;

use super::resources::ResourceType;

/// A selector that could not be parsed or uses an unsupported field (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct SelectorError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed label selector (empty = everything).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<LabelReq>);

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for term in split_terms(s) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_label_term(term)?);
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an object (full JSON) matches.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
            LabelReq::Gt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            LabelReq::Lt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_label_term(term: &str) -> Result<LabelReq, SelectorError> {
    let bad = || SelectorError(format!("unable to parse requirement: {term:?}"));
    let key_ok = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    };
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        return key_ok(key)
            .then(|| LabelReq::NotExists(key.to_owned()))
            .ok_or_else(bad);
    }
    for (op, ctor) in [
        ("==", LabelReq::Eq as fn(String, String) -> LabelReq),
        ("!=", LabelReq::NotEq),
        ("=", LabelReq::Eq),
    ] {
        if let Some((k, v)) = term.split_once(op) {
            let (k, v) = (k.trim(), v.trim());
            return key_ok(k)
                .then(|| ctor(k.to_owned(), v.to_owned()))
                .ok_or_else(bad);
        }
    }
    for (op, gt) in [('>', true), ('<', false)] {
        if let Some((k, v)) = term.split_once(op) {
            let (k, n) = (k.trim(), v.trim().parse::<i64>().map_err(|_| bad())?);
            if !key_ok(k) {
                return Err(bad());
            }
            return Ok(if gt {
                LabelReq::Gt(k.to_owned(), n)
            } else {
                LabelReq::Lt(k.to_owned(), n)
            });
        }
    }
    let words: Vec<&str> = term.splitn(2, char::is_whitespace).collect();
    if let [key, rest] = words[..] {
        let rest = rest.trim();
        let (notin, set) = if let Some(set) = rest.strip_prefix("notin") {
            (true, set)
        } else if let Some(set) = rest.strip_prefix("in") {
            (false, set)
        } else {
            return Err(bad());
        };
        let set = set.trim();
        let inner = set
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .ok_or_else(bad)?;
        let values: Vec<String> = inner
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        if !key_ok(key) {
            return Err(bad());
        }
        return Ok(if notin {
            LabelReq::NotIn(key.to_owned(), values)
        } else {
            LabelReq::In(key.to_owned(), values)
        });
    }
    key_ok(term)
        .then(|| LabelReq::Exists(term.to_owned()))
        .ok_or_else(bad)
}

/// A parsed field selector, resolved against one resource type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(&'static str, bool, String)>);

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter for `rt`.
    pub fn parse(s: &str, rt: &ResourceType) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for term in split_unescaped(s, ',') {
            if term.trim().is_empty() {
                continue;
            }
            let (field, equal, value) = split_field_term(&term).ok_or_else(|| {
                SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                ))
            })?;
            let path = rt
                .field_path(&field)
                .ok_or_else(|| SelectorError(format!("field label not supported: {field}")))?;
            reqs.push((path, equal, value));
        }
        Ok(FieldSelector(reqs))
    }

    /// A selector on the namespace (used for namespaced collection paths).
    pub fn namespace(ns: &str) -> Self {
        FieldSelector(vec![("metadata.namespace", true, ns.to_owned())])
    }

    /// A selector on the name (used for watches of a single object path).
    pub fn name(name: &str) -> Self {
        FieldSelector(vec![("metadata.name", true, name.to_owned())])
    }

    /// Adds the requirements of `other`.
    pub fn and(mut self, other: FieldSelector) -> Self {
        self.0.extend(other.0);
        self
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an object (full JSON) matches.
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, equal, want)| {
            let got = field_value(object, path);
            (got == *want) == *equal
        })
    }
}

/// The string value of a field as the apiserver's field sets render it (`""` if absent).
fn field_value(object: &Value, path: &str) -> String {
    let mut v = object;
    for part in path.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => return String::new(),
        }
    }
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Splits `s` on `sep` not preceded by a backslash, keeping escapes in the parts.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            out.last_mut().expect("never empty").extend(['\\', c]);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(String::new());
        } else {
            out.last_mut().expect("never empty").push(c);
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// `f=v`, `f==v`, `f!=v` → (field, equal, value), honouring escapes.
fn split_field_term(term: &str) -> Option<(String, bool, String)> {
    let bytes: Vec<char> = term.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            '\\' => i += 2,
            '!' if bytes.get(i + 1) == Some(&'=') => {
                let field: String = bytes[..i].iter().collect();
                let value: String = bytes[i + 2..].iter().collect();
                return Some((field.trim().to_owned(), false, unescape(&value)));
            }
            '=' => {
                let field: String = bytes[..i].iter().collect();
                let skip = if bytes.get(i + 1) == Some(&'=') { 2 } else { 1 };
                let value: String = bytes[i + skip..].iter().collect();
                return Some((field.trim().to_owned(), true, unescape(&value)));
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::resources::by_name;
    use super::*;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns1", "labels": labels}})
    }

    #[test]
    fn label_operators() {
        let o = obj(json!({"app": "db", "tier": "gold", "n": "5"}));
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&o);
        assert!(m(""));
        assert!(m("app=db"));
        assert!(m("app==db"));
        assert!(!m("app!=db"));
        assert!(m("missing!=x"), "!= matches objects without the label");
        assert!(m("app in (web, db)"));
        assert!(!m("app notin (web,db)"));
        assert!(m("missing notin (x)"));
        assert!(!m("missing in (x)"));
        assert!(m("app"));
        assert!(!m("!app"));
        assert!(m("!missing"));
        assert!(m("app=db,tier in (gold,silver),!missing"));
        assert!(!m("app=db,tier=silver"));
        assert!(m("n>4") && !m("n>5") && m("n<6"));
        assert!(LabelSelector::parse("app in db").is_err());
        assert!(LabelSelector::parse("a b c").is_err());
    }

    #[test]
    fn field_selectors_follow_the_type() {
        let event = by_name("Event").unwrap();
        let pv = by_name("pv").unwrap();
        let e = json!({"metadata": {"name": "e1", "namespace": "db"}, "reason": "FailedMount",
            "type": "Warning", "involvedObject": {"kind": "Pod", "name": "p,1"},
            "source": {"component": "kubelet"}});
        let m = |s: &str| FieldSelector::parse(s, event).unwrap().matches(&e);
        assert!(m("metadata.name=e1"));
        assert!(m("metadata.namespace==db"));
        assert!(m("reason=FailedMount,type!=Normal"));
        assert!(m("involvedObject.kind=Pod,involvedObject.name=p\\,1"));
        assert!(m("source=kubelet"));
        assert!(m("involvedObject.uid="), "absent fields are empty strings");
        assert!(!m("type=Normal"));
        assert_eq!(
            FieldSelector::parse("spec.claimRef.name=x", pv),
            Err(SelectorError(
                "field label not supported: spec.claimRef.name".into()
            ))
        );
        assert!(FieldSelector::parse("reason", event).is_err());
        let pod = by_name("Pod").unwrap();
        let p = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "hostNetwork": true},
            "status": {"phase": "Running"}});
        let pm = |s: &str| FieldSelector::parse(s, pod).unwrap().matches(&p);
        assert!(pm(
            "spec.nodeName=n1,status.phase=Running,spec.hostNetwork=true"
        ));
        assert!(!pm("spec.nodeName!=n1"));
    }
}
