//! Text helpers for connectors that record what people write: @-mentions
//! as GitHub and GitLab read them, and cutting text to a byte budget.

/// The GitHub logins a text @-mentions, each once, in order: letters,
/// digits and hyphens, at most 39. An `@` inside a word (an email address)
/// or after a backtick is not a mention, nor is `@org/team`.
pub fn mentions(text: &str) -> Vec<&str> {
    mentions_with(text, &[])
}

/// The GitLab usernames a text @-mentions, each once, in order: GitLab
/// also allows dots and underscores. A dot that ends a sentence is not
/// part of the name.
pub fn gitlab_mentions(text: &str) -> Vec<&str> {
    mentions_with(text, &['.', '_'])
}

fn mentions_with<'a>(text: &'a str, also: &[char]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('@') {
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'`') {
            continue;
        }
        let rest = &text[i + 1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || also.contains(&c)))
            .unwrap_or(rest.len());
        let login = rest[..end].trim_end_matches(['-', '.']);
        if login.is_empty() || login.len() > 39 || login.starts_with(['-', '.']) {
            continue;
        }
        // `@org/team` names a team, not an account.
        if rest[end..].starts_with('/') {
            continue;
        }
        if !out.iter().any(|l| l.eq_ignore_ascii_case(login)) {
            out.push(login);
        }
    }
    out
}

/// The longest prefix of `text` within `max` bytes that ends on a
/// character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_skip_emails_teams_and_repeats() {
        assert_eq!(
            mentions("@alice please ask @Bob-1, not bob@example.com or @acme/core; @alice again"),
            vec!["alice", "Bob-1"]
        );
        assert_eq!(mentions("@ alone, @-x, (@carol)"), vec!["carol"]);
    }

    #[test]
    fn gitlab_names_keep_dots_and_underscores_but_not_a_full_stop() {
        assert_eq!(
            gitlab_mentions("ask @jane.doe and @ops_bot. Thanks @root."),
            vec!["jane.doe", "ops_bot", "root"]
        );
        assert_eq!(mentions("ask @jane.doe"), vec!["jane"]);
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("hi", 10), "hi");
    }
}
