//! Escaping of untrusted text (anything that came from a history or results.json) for the
//! three contexts the reports use: HTML text/attributes, JSON inside `<script>`, and XML.

/// Escapes text for HTML element content and quoted attribute values.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Serializes a JSON value so that it can sit inside a `<script>` element: no `<`, `>` or `&`
/// can close the element or open a comment, and U+2028/2029 cannot end a JS string.
pub fn json_for_script(value: &serde_json::Value) -> String {
    script_safe(&value.to_string())
}

/// Makes already-serialized JSON text safe inside `<script>` (see [`json_for_script`]).
pub fn script_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text for XML content and attributes; drops characters XML 1.0 cannot carry at all
/// (most control characters), since a history may contain any byte sequence.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            _ => out.push(c),
        }
    }
    out
}

/// Shortens a display string to at most `max_chars` characters, marking the cut.
pub fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Longest text kept whole in a `title` or `<details>` of a cut string: enough for a
/// 3,000-character key, bounded so a hostile run cannot bloat the page.
pub const WHOLE_CHARS_MAX: usize = 20_000;

/// Escaped text cut to `max_chars`; when cut, the whole (up to [`WHOLE_CHARS_MAX`]) is kept
/// in a `<details>` element, so a long key stays readable without pushing columns away.
pub fn cut_html(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return html(text);
    }
    format!(
        "<details class=\"long\"><summary>{}</summary><span class=\"whole\">{}</span></details>",
        html(&truncate(text, max_chars)),
        html(&truncate(text, WHOLE_CHARS_MAX))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_html_keeps_the_whole_behind_a_summary() {
        assert_eq!(cut_html("k<1>", 10), "k&lt;1&gt;");
        let long = "k".repeat(3000);
        let cut = cut_html(&long, 40);
        assert!(cut.starts_with("<details class=\"long\"><summary>"));
        assert!(cut.contains(&long));
        assert!(cut.contains(&format!("{}…", "k".repeat(39))));
    }

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(
            html("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn script_json_cannot_close_the_element() {
        let v = serde_json::json!({"v": "</script><script>alert(1)</script>\u{2028}"});
        let s = json_for_script(&v);
        assert!(!s.contains('<') && !s.contains('>'));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn xml_drops_control_characters() {
        assert_eq!(xml("a\u{1}b<"), "a\u{FFFD}b&lt;");
    }
}
