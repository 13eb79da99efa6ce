//! Substring search and replacement over bytes. `str::find(&str)` and `str::replace` pull in
//! core's Two-Way searcher (over 1 KB of wasm); the haystacks here are short error bodies and
//! headers, where a plain scan is just as fast.

/// The byte offset of the first `needle` in `haystack`.
pub fn find(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return Some(0);
    }
    (0..=h.len().checked_sub(n.len())?).find(|&i| h.get(i..i + n.len()) == Some(n))
}

/// True when `needle` occurs in `haystack`.
pub fn contains(haystack: &str, needle: &str) -> bool {
    find(haystack, needle).is_some()
}

/// `haystack` with every non-overlapping `needle` replaced by `with`.
pub fn replace_all(haystack: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return haystack.to_string();
    }
    let mut out = String::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(i) = find(rest, needle) {
        out.push_str(rest.get(..i).unwrap_or(""));
        out.push_str(with);
        rest = rest.get(i + needle.len()..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// At most `max_bytes` of `text`, cut at a character boundary.
pub fn truncate(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_like_std() {
        for (h, n) in [("abcabc", "ca"), ("abc", "abcd"), ("", "a"), ("aaa", "aa"), ("<TITLE>x</title>", "</title>"), ("é<title>", "<title>")] {
            assert_eq!(find(h, n), h.find(n), "{h} / {n}");
            assert_eq!(contains(h, n), h.contains(n));
        }
    }

    #[test]
    fn replaces_like_std() {
        for (h, n, w) in [("a-key-b-key", "key", "[x]"), ("keykey", "key", ""), ("none", "key", "x"), ("aaa", "aa", "b")] {
            assert_eq!(replace_all(h, n, w), h.replace(n, w));
        }
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("hi", 10), "hi");
    }
}
