//! Cutting a JSON list into its elements as the bytes arrive, so that a 170 MB answer is
//! read one element at a time: each element is then parsed on its own, straight into a
//! normalized type, and nothing holds the whole answer as a value.
//!
//! Two shapes:
//! - a plain list (`[e, e, …]`: every `*.query` result);
//! - a tree (`pool.dataset.query` with `flat: false`): a list of objects whose `children`
//!   lists hold more objects. Each object is handed over alone, its `children` replaced by
//!   `[]`, as soon as it closes — children before their parent, and never more than one
//!   object per tree level in memory.
//!
//! The splitter follows only what it needs (strings, brackets, commas, and the keys of the
//! objects of a tree); each element is fully checked when it is parsed.

use crate::error::ClientError;

/// Where an object of the tree being read stands, for its own keys.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    /// Not an object, or not at its own level.
    None,
    /// Expecting a key (after `{` or `,`).
    Expect,
    /// Reading a key.
    Reading,
    /// After a key, before `:`.
    After,
    /// After `:` of an ordinary key: the value comes.
    Value,
    /// After `:` of the tree key: a list here holds the children.
    TreeValue,
    /// Inside or after a value.
    InValue,
}

/// One element being read.
#[derive(Debug)]
struct Element {
    /// Its bytes from earlier chunks (and around its children), when it spans chunks.
    buf: Vec<u8>,
    /// Containers open inside it.
    depth: u32,
    /// Key state at its own level (tree mode).
    key: Key,
    /// The key being read.
    key_buf: Vec<u8>,
}

/// Where a list stands.
#[derive(Debug)]
enum Phase {
    /// After `[`: an element or `]`.
    First,
    /// After `,`: an element.
    Next,
    /// Inside an element.
    In(Element),
    /// After an element: `,` or `]`.
    After,
}

/// Splits one JSON list (see the module documentation).
#[derive(Debug)]
pub(crate) struct ListSplitter {
    /// The method whose answer this is (for errors).
    method: String,
    /// The key holding children (tree mode).
    tree_key: Option<&'static [u8]>,
    /// Open lists: the answer's, then children lists being read.
    lists: Vec<Phase>,
    /// Whether the answer's list was opened (and, with `lists` empty, closed).
    started: bool,
    in_string: bool,
    /// The last byte of the previous chunk was a backslash inside a string.
    escaped: bool,
    /// Bytes fed before the current chunk.
    offset: u64,
    /// Elements handed over.
    elements: u64,
    /// The first bytes, for the error when the answer is not a list.
    head: Vec<u8>,
}

/// How many bytes of a non-list answer an error quotes.
const QUOTE: usize = 80;

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

impl ListSplitter {
    /// A splitter for a plain list answered by `method`.
    pub(crate) fn list(method: &str) -> Self {
        Self::new(method, None)
    }

    /// A splitter for a tree of objects nested in `key` lists (`children`).
    pub(crate) fn tree(method: &str, key: &'static str) -> Self {
        Self::new(method, Some(key.as_bytes()))
    }

    fn new(method: &str, tree_key: Option<&'static [u8]>) -> Self {
        ListSplitter {
            method: method.to_owned(),
            tree_key,
            lists: Vec::new(),
            started: false,
            in_string: false,
            escaped: false,
            offset: 0,
            elements: 0,
            head: Vec::new(),
        }
    }

    /// Elements handed over so far.
    pub(crate) fn elements(&self) -> u64 {
        self.elements
    }

    fn malformed(&self, detail: String) -> ClientError {
        ClientError::Malformed {
            method: self.method.clone(),
            detail,
        }
    }

    fn syntax(&self, at: usize, what: &str) -> ClientError {
        self.malformed(format!(
            "not JSON at byte {}: {what}",
            self.offset + at as u64
        ))
    }

    /// Reads the next `chunk` of the answer, handing each complete element to `each` (which
    /// may stop the reading with an error).
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        each: &mut dyn FnMut(&[u8]) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        if self.head.len() < QUOTE {
            let n = (QUOTE - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..n]);
        }
        // Start of the bytes of the innermost element not yet copied to its buffer.
        let mut seg = match self.lists.last() {
            Some(Phase::In(_)) => Some(0),
            _ => None,
        };
        let mut i = 0;
        let len = chunk.len();
        while i < len {
            if self.escaped {
                self.escaped = false;
                i += 1;
                continue;
            }
            if self.in_string {
                let reading_key = matches!(
                    self.lists.last(),
                    Some(Phase::In(Element {
                        key: Key::Reading,
                        depth: 1,
                        ..
                    }))
                );
                let Some(k) = memchr::memchr2(b'"', b'\\', &chunk[i..]) else {
                    if reading_key {
                        self.key_bytes(&chunk[i..]);
                    }
                    break;
                };
                let j = i + k;
                if reading_key {
                    self.key_bytes(&chunk[i..j]);
                }
                if chunk[j] == b'\\' {
                    if reading_key {
                        // An escaped key is never the tree key (TrueNAS writes it plainly).
                        self.key_bytes(b"\\");
                    }
                    if j + 1 < len {
                        i = j + 2;
                    } else {
                        self.escaped = true;
                        i = len;
                    }
                } else {
                    self.in_string = false;
                    if let Some(Phase::In(e)) = self.lists.last_mut()
                        && e.key == Key::Reading
                        && e.depth == 1
                    {
                        e.key = Key::After;
                    }
                    i = j + 1;
                }
                continue;
            }
            let b = chunk[i];
            let tree_key = self.tree_key;
            let Some(phase) = self.lists.last_mut() else {
                // Before the answer's list, or after it.
                if is_ws(b) {
                    i += 1;
                    continue;
                }
                if self.started {
                    return Err(self.syntax(i, "data after the end of the list"));
                }
                if b != b'[' {
                    let quote = String::from_utf8_lossy(&self.head);
                    return Err(
                        self.malformed(format!("expected a list, got {}", quote.trim_start()))
                    );
                }
                self.started = true;
                self.lists.push(Phase::First);
                i += 1;
                continue;
            };
            match phase {
                Phase::First | Phase::Next => {
                    if is_ws(b) {
                        i += 1;
                        continue;
                    }
                    match b {
                        b']' if matches!(phase, Phase::First) => {
                            self.lists.pop();
                            i += 1;
                            seg = self.resume(i);
                        }
                        b']' | b',' => return Err(self.syntax(i, "a list element is missing")),
                        _ => {
                            *phase = Phase::In(Element {
                                buf: Vec::new(),
                                depth: 0,
                                key: Key::None,
                                key_buf: Vec::new(),
                            });
                            seg = Some(i);
                            // Read this byte again as the element's first.
                        }
                    }
                }
                Phase::After => {
                    match b {
                        b',' => *phase = Phase::Next,
                        b']' => {
                            self.lists.pop();
                            seg = self.resume(i + 1);
                        }
                        _ if is_ws(b) => {}
                        _ => return Err(self.syntax(i, "expected `,` or `]` after a list element")),
                    }
                    i += 1;
                }
                Phase::In(e) => match b {
                    b'"' => {
                        self.in_string = true;
                        if e.depth == 1 {
                            match e.key {
                                Key::Expect => {
                                    e.key = Key::Reading;
                                    e.key_buf.clear();
                                }
                                Key::Value | Key::TreeValue => e.key = Key::InValue,
                                _ => {}
                            }
                        }
                        i += 1;
                    }
                    b'{' | b'[' => {
                        if e.depth == 1 && e.key == Key::TreeValue && b == b'[' {
                            // A children list: its objects are elements of their own.
                            let start = seg.take().unwrap_or(i);
                            e.buf.extend_from_slice(&chunk[start..i]);
                            e.buf.extend_from_slice(b"[]");
                            e.key = Key::InValue;
                            self.lists.push(Phase::First);
                            i += 1;
                            continue;
                        }
                        if e.depth == 0 && b == b'{' && tree_key.is_some() {
                            e.key = Key::Expect;
                        } else if e.depth == 1 && matches!(e.key, Key::Value | Key::TreeValue) {
                            e.key = Key::InValue;
                        }
                        e.depth += 1;
                        i += 1;
                    }
                    b'}' | b']' => {
                        if e.depth == 0 {
                            // The end of the list right after a scalar element.
                            if b != b']' {
                                return Err(self.syntax(i, "unbalanced `}`"));
                            }
                            self.emit(chunk, seg.take(), i, each)?;
                            self.lists.pop();
                            i += 1;
                            seg = self.resume(i);
                            continue;
                        }
                        e.depth -= 1;
                        i += 1;
                        if e.depth == 0 {
                            self.emit(chunk, seg.take(), i, each)?;
                            if let Some(p) = self.lists.last_mut() {
                                *p = Phase::After;
                            }
                        } else if e.depth == 1 && e.key != Key::None {
                            e.key = Key::InValue;
                        }
                    }
                    b',' => {
                        if e.depth == 0 {
                            self.emit(chunk, seg.take(), i, each)?;
                            if let Some(p) = self.lists.last_mut() {
                                *p = Phase::Next;
                            }
                        } else if e.depth == 1 && e.key != Key::None {
                            e.key = Key::Expect;
                        }
                        i += 1;
                    }
                    b':' => {
                        if e.depth == 1 && e.key == Key::After {
                            e.key = if tree_key == Some(e.key_buf.as_slice()) {
                                Key::TreeValue
                            } else {
                                Key::Value
                            };
                        }
                        i += 1;
                    }
                    _ => {
                        if e.depth == 1 && !is_ws(b) && matches!(e.key, Key::Value | Key::TreeValue)
                        {
                            e.key = Key::InValue;
                        }
                        i += 1;
                    }
                },
            }
        }
        if let (Some(start), Some(Phase::In(e))) = (seg, self.lists.last_mut()) {
            e.buf.extend_from_slice(&chunk[start..]);
        }
        self.offset += len as u64;
        Ok(())
    }

    /// After a list closed at `at`: the parent element (a tree object) captures again.
    fn resume(&self, at: usize) -> Option<usize> {
        match self.lists.last() {
            Some(Phase::In(_)) => Some(at),
            _ => None,
        }
    }

    fn key_bytes(&mut self, bytes: &[u8]) {
        if let Some(Phase::In(e)) = self.lists.last_mut() {
            // Keys longer than the tree key cannot match: keep only a little.
            if e.key_buf.len() < 64 {
                e.key_buf.extend_from_slice(bytes);
            }
        }
    }

    /// Hands over the innermost element, ending at `end` of `chunk`.
    fn emit(
        &mut self,
        chunk: &[u8],
        seg: Option<usize>,
        end: usize,
        each: &mut dyn FnMut(&[u8]) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        let Some(Phase::In(e)) = self.lists.last_mut() else {
            return Ok(());
        };
        let start = seg.unwrap_or(end);
        self.elements += 1;
        if e.buf.is_empty() {
            each(&chunk[start..end])
        } else {
            e.buf.extend_from_slice(&chunk[start..end]);
            let buf = std::mem::take(&mut e.buf);
            each(&buf)
        }
    }

    /// The answer is complete: checks the list was closed. Returns the number of elements.
    pub(crate) fn finish(self) -> Result<u64, ClientError> {
        if !self.started {
            return Err(self.malformed("the answer is empty".into()));
        }
        if !self.lists.is_empty() || self.in_string {
            return Err(self.malformed(format!(
                "the answer ended after {} bytes, inside the list (truncated)",
                self.offset
            )));
        }
        Ok(self.elements)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(mut s: ListSplitter, chunks: &[&[u8]]) -> Result<Vec<String>, ClientError> {
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut |e| {
                out.push(String::from_utf8(e.to_vec()).unwrap());
                Ok(())
            })?;
        }
        let n = s.finish()?;
        assert_eq!(n as usize, out.len());
        Ok(out)
    }

    /// The same elements however the document is cut: whole, at every byte, byte by byte.
    fn check(make: impl Fn() -> ListSplitter, doc: &str, expected: &[&str]) {
        let doc = doc.as_bytes();
        let trim =
            |v: Vec<String>| -> Vec<String> { v.iter().map(|e| e.trim().to_owned()).collect() };
        assert_eq!(trim(split(make(), &[doc]).unwrap()), expected, "whole");
        for cut in 0..=doc.len() {
            let (a, b) = doc.split_at(cut);
            assert_eq!(
                trim(split(make(), &[a, b]).unwrap()),
                expected,
                "cut at {cut}"
            );
        }
        let bytes: Vec<&[u8]> = doc.chunks(1).collect();
        assert_eq!(
            trim(split(make(), &bytes).unwrap()),
            expected,
            "byte by byte"
        );
    }

    #[test]
    fn a_list_is_cut_into_its_elements() {
        let doc = r#" [ {"name": "a\"]}", "l": [1, {"x": "}"}]}, 12 , "s\\", true, null,
                      [[]], {"k": {}} ] "#;
        check(
            || ListSplitter::list("m"),
            doc,
            &[
                r#"{"name": "a\"]}", "l": [1, {"x": "}"}]}"#,
                "12",
                r#""s\\""#,
                "true",
                "null",
                "[[]]",
                r#"{"k": {}}"#,
            ],
        );
        check(|| ListSplitter::list("m"), "[]", &[]);
        check(|| ListSplitter::list("m"), " [ ] \n", &[]);
    }

    #[test]
    fn a_tree_hands_over_each_object_alone_children_first() {
        let doc = r#"[{"name": "tank", "children": [
              {"name": "tank/a", "children": [], "used": 1},
              {"name": "tank/b", "x": {"children": [{"no": 1}]}, "children": [
                  {"name": "tank/b/c", "children": null}]}
            ], "used": {"parsed": 5}},
            {"children": [{"name": "p2/x"}], "name": "p2", "s": "\"children\": ["}]"#;
        check(
            || ListSplitter::tree("pool.dataset.query", "children"),
            doc,
            &[
                r#"{"name": "tank/a", "children": [], "used": 1}"#,
                r#"{"name": "tank/b/c", "children": null}"#,
                r#"{"name": "tank/b", "x": {"children": [{"no": 1}]}, "children": []}"#,
                r#"{"name": "tank", "children": [], "used": {"parsed": 5}}"#,
                r#"{"name": "p2/x"}"#,
                r#"{"children": [], "name": "p2", "s": "\"children\": ["}"#,
            ],
        );
    }

    #[test]
    fn broken_lists_fail_clearly() {
        let err = |doc: &str| {
            split(ListSplitter::list("pool.query"), &[doc.as_bytes()])
                .unwrap_err()
                .to_string()
        };
        let e = err(r#"{"message": "Invalid API key"}"#);
        assert!(
            e.contains("pool.query")
                && e.contains("expected a list")
                && e.contains("Invalid API key"),
            "{e}"
        );
        assert!(err("<html>maintenance</html>").contains("expected a list, got <html>"));
        assert!(err(r#"[{"a": 1}, {"b": "#).contains("truncated"));
        assert!(err(r#"[{"a": "unterminated"#).contains("truncated"));
        assert!(err("[1, 2] 3").contains("after the end"));
        assert!(err("[1, , 2]").contains("missing"));
        assert!(err("[1, 2,]").contains("missing"));
        assert!(err("[{}}]").contains("unbalanced") || err("[{}}]").contains("`,` or `]`"));
        assert!(err("").contains("empty"));
        assert!(err("   ").contains("empty"));
    }

    #[test]
    fn the_consumer_can_stop_the_reading() {
        let mut s = ListSplitter::list("m");
        let mut seen = 0;
        let r = s.feed(b"[1, 2, 3]", &mut |_| {
            seen += 1;
            if seen == 2 {
                Err(ClientError::Malformed {
                    method: "m".into(),
                    detail: "stop".into(),
                })
            } else {
                Ok(())
            }
        });
        assert!(r.is_err());
        assert_eq!(seen, 2);
    }
}
