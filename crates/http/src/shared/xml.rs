//! Writing a tree of values as XML, for the legacy APIs that answer in it. A JSON object is an
//! element per key (in order), an array repeats its parent's element name, a string or number
//! is escaped text, and `null`, `""` and `false`... are written as the caller built them (an
//! empty string becomes an empty element, `<website/>`). Keys that are not XML names are
//! written as `<entry key="...">` so that no user-chosen key can break the document.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde_json::Value;

/// `value` as an XML document whose root element is `root`, indented by two spaces, with the
/// `<?xml version="1.0" encoding="UTF-8"?>` declaration.
pub fn document(root: &str, value: &Value) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing to a Vec cannot fail.
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    element(&mut w, root, value);
    let mut out = String::from_utf8(w.into_inner()).unwrap_or_default();
    out.push('\n');
    out
}

fn element(w: &mut Writer<Vec<u8>>, name: &str, value: &Value) {
    let (tag, key) = if is_xml_name(name) { (name, None) } else { ("entry", Some(name)) };
    let mut start = BytesStart::new(tag);
    if let Some(k) = key {
        start.push_attribute(("key", k));
    }
    let text = match value {
        Value::Null => String::new(),
        Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            for v in items {
                element(w, name, v);
            }
            return;
        }
        Value::Object(map) => {
            if map.is_empty() {
                let _ = w.write_event(Event::Empty(start));
                return;
            }
            let _ = w.write_event(Event::Start(start.borrow()));
            for (k, v) in map {
                element(w, k, v);
            }
            let _ = w.write_event(Event::End(BytesEnd::new(tag)));
            return;
        }
    };
    if text.is_empty() {
        let _ = w.write_event(Event::Empty(start));
    } else {
        let _ = w.write_event(Event::Start(start.borrow()));
        let _ = w.write_event(Event::Text(BytesText::new(&strip_invalid(&text))));
        let _ = w.write_event(Event::End(BytesEnd::new(tag)));
    }
}

/// Characters XML 1.0 cannot hold (most control characters) are dropped.
fn strip_invalid(s: &str) -> String {
    s.chars().filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')).collect()
}

/// Whether `s` is a plain XML element name (ASCII letters, digits, `_`, `-`, `.`, starting
/// with a letter or `_`, not starting with `xml`).
fn is_xml_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !s.to_ascii_lowercase().starts_with("xml")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn trees_become_elements_and_empty_values_empty_elements() {
        let doc = document("result", &json!({"id": 7, "website": "", "meta": {"lang": "en", "a b": "<x>"}}));
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<result>\n  <id>7</id>\n  <website/>\n  <meta>\n    \
             <lang>en</lang>\n    <entry key=\"a b\">&lt;x&gt;</entry>\n  </meta>\n</result>\n"
        );
        assert_eq!(document("result", &json!(42)), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<result>42</result>\n");
    }
}
