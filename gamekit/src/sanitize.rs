//! GameKit's sanitizer (its common Lambda layer's `sanitizer.sanitize`), which
//! AdminAddAchievements runs over an achievement's id, title, descriptions and icon URLs
//! before storing them: tags that execute, load or link (`<img>`, `<a>`, `<script>`,
//! `<link>` and their closing tags) are removed; other tags stay.
//!
//! Its rule, kept exactly so stored text matches GameKit's byte for byte: each tag is a `<`
//! up to the next `>`; a tag is removed when, at any `<` in it, optional whitespace is
//! followed by `img`, `a`, `script`, `link` or one of them after a `/`, in any case. The
//! names are prefixes (`<abbr>` and `<address>` go too, as in GameKit), and a removed tag is
//! removed wherever it appears again.

/// The tag names whose tags are removed (prefixes, in any case).
const REMOVED: [&str; 8] = [
    "img", "a", "script", "link", "/img", "/a", "/script", "/link",
];

/// `text` with GameKit's removed tags taken out.
pub(crate) fn sanitize(text: &str) -> String {
    let mut out = text.to_string();
    for tag in tags(text) {
        if removed(tag) {
            out = out.replace(tag, "");
        }
    }
    out
}

/// The tags of `text` in order: each `<` up to the next `>`, scanning on after it.
fn tags(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = 0;
    std::iter::from_fn(move || {
        let open = rest + text[rest..].find('<')?;
        let close = open + text[open..].find('>')?;
        rest = close + 1;
        Some(&text[open..=close])
    })
}

/// Whether a tag is one GameKit removes.
fn removed(tag: &str) -> bool {
    tag.match_indices('<').any(|(at, _)| {
        let after = tag[at + 1..].trim_start();
        REMOVED.iter().any(|name| {
            after
                .get(..name.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(name))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    /// Each pair as GameKit's sanitizer stores it (checked against its Python).
    #[test]
    fn executable_and_linking_tags_go_and_others_stay() {
        for (given, stored) in [
            ("Hi <script>x</script><b>y</b>", "Hi x<b>y</b>"),
            ("Eat <img src=x onerror=alert(1)>bananas", "Eat bananas"),
            ("<a href='https://x'>link</a>", "link"),
            ("<LINK rel=stylesheet href=x>styled", "styled"),
            ("< script >alert(1)</ script>", "alert(1)</ script>"),
            (
                "<b>bold</b> and <i>italic</i>",
                "<b>bold</b> and <i>italic</i>",
            ),
            ("<abbr>GK</abbr>", "GK"),
            ("a < b and c > d", "a < b and c > d"),
            ("x <b <img>> y", "x > y"),
            ("<img><img>twice", "twice"),
            ("no tags at all", "no tags at all"),
            ("unclosed <script", "unclosed <script"),
            ("", ""),
        ] {
            assert_eq!(sanitize(given), stored, "{given:?}");
        }
    }
}
