//! Text as the signals see it: words, phrase cues and MinHash sketches for
//! near-duplicate search.

use std::collections::BTreeMap;

/// The words of a message in lower case. Quoted lines (`> ...`), fenced
/// code and links are left out: quoting someone, pasting a log or a URL
/// says nothing about the author's own voice, and would make a reply look
/// like a copy of what it quotes.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_code = !in_code;
            continue;
        }
        if in_code || trimmed.starts_with('>') {
            continue;
        }
        for raw in line.split_whitespace() {
            if raw.contains("://") || raw.starts_with("www.") {
                continue;
            }
            let mut word = String::new();
            for c in raw.chars() {
                let c = match c {
                    '\u{2019}' | '\u{2018}' => '\'',
                    c => c,
                };
                if c.is_alphanumeric() || (c == '\'' && !word.is_empty()) {
                    word.extend(c.to_lowercase());
                } else if c == '-' && !word.is_empty() {
                    word.push('-');
                } else {
                    push_word(&mut out, &mut word);
                }
            }
            push_word(&mut out, &mut word);
        }
    }
    out
}

fn push_word(out: &mut Vec<String>, word: &mut String) {
    let trimmed = word.trim_end_matches(['\'', '-']);
    if !trimmed.is_empty() {
        out.push(trimmed.to_string());
    }
    word.clear();
}

/// A phrase of one or more words, matched as consecutive words. A word
/// ending in `*` matches any word starting with it (`abandon*` covers
/// abandoned and abandoning); a `*` alone matches any one word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    words: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Word(String),
    Prefix(String),
    Any,
}

impl Pattern {
    fn matches(&self, word: &str) -> bool {
        match self {
            Pattern::Word(w) => w == word,
            Pattern::Prefix(p) => word.starts_with(p.as_str()),
            Pattern::Any => true,
        }
    }
}

impl Phrase {
    pub fn new(text: &str) -> Option<Self> {
        let patterns: Vec<Pattern> = text
            .split_whitespace()
            .filter_map(|raw| {
                if raw == "*" {
                    return Some(Pattern::Any);
                }
                let prefix = raw.ends_with('*');
                let mut found = words(raw.trim_end_matches('*'));
                // A pattern word is one word; punctuation inside it (as in
                // `can't`) is kept by `words`, anything else split off.
                let word = found.drain(..).next()?;
                Some(if prefix {
                    Pattern::Prefix(word)
                } else {
                    Pattern::Word(word)
                })
            })
            .collect();
        let has_word = patterns.iter().any(|p| !matches!(p, Pattern::Any));
        (has_word).then_some(Self { words: patterns })
    }

    pub fn found_in(&self, text: &[String]) -> bool {
        let n = self.words.len();
        text.len() >= n
            && text.windows(n).any(|w| {
                w.iter()
                    .zip(&self.words)
                    .all(|(got, want)| want.matches(got))
            })
    }
}

/// How many hash functions a sketch holds, and how they are banded for
/// locality-sensitive hashing. With 32 bands of 4 rows, two texts of
/// similarity 0.5 become candidates with probability 0.87, of 0.6 with
/// 0.99, and of 0.3 with 0.23; every candidate is then checked against the
/// threshold.
pub const HASHES: usize = 128;
pub const ROWS: usize = 4;
pub const BANDS: usize = HASHES / ROWS;

/// Characters per shingle.
pub const SHINGLE: usize = 4;

/// A MinHash sketch of a text's word shingles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sketch([u64; HASHES]);

impl Sketch {
    /// Sketches the text's character shingles of `k` characters, over its
    /// words joined by single spaces (the whole text when shorter than
    /// `k`). Character shingles keep short paraphrases close: "please merge
    /// this and cut a release now" and "merge this and cut the release now
    /// please" share most of theirs, and few word triples. `None` for a
    /// text without words.
    pub fn of(words: &[String], k: usize) -> Option<Self> {
        if words.is_empty() {
            return None;
        }
        let joined: Vec<char> = words.join(" ").chars().collect();
        let k = k.clamp(1, joined.len());
        let mut mins = [u64::MAX; HASHES];
        for shingle in joined.windows(k) {
            let base = fnv1a(shingle);
            for (i, slot) in mins.iter_mut().enumerate() {
                let h = mix(base ^ SEEDS[i]);
                if h < *slot {
                    *slot = h;
                }
            }
        }
        Some(Self(mins))
    }

    /// The estimated Jaccard similarity of the two shingle sets.
    pub fn similarity(&self, other: &Sketch) -> f64 {
        let same = self.0.iter().zip(&other.0).filter(|(a, b)| a == b).count();
        same as f64 / HASHES as f64
    }

    fn band(&self, band: usize) -> u64 {
        let rows = &self.0[band * ROWS..(band + 1) * ROWS];
        rows.iter().fold(band as u64, |acc, r| mix(acc ^ r))
    }
}

/// The pairs of sketches (by index, lower first) that share a band, each
/// once. Buckets are ordered so the result does not depend on hashing
/// order.
pub fn candidate_pairs(sketches: &[(usize, &Sketch)]) -> Vec<(usize, usize)> {
    let mut pairs = std::collections::BTreeSet::new();
    for band in 0..BANDS {
        let mut buckets: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (index, sketch) in sketches {
            buckets.entry(sketch.band(band)).or_default().push(*index);
        }
        for members in buckets.values() {
            for (i, a) in members.iter().enumerate() {
                for b in &members[i + 1..] {
                    pairs.insert((*a.min(b), *a.max(b)));
                }
            }
        }
    }
    pairs.into_iter().collect()
}

fn fnv1a(chars: &[char]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut buf = [0u8; 4];
    for c in chars {
        for b in c.encode_utf8(&mut buf).bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The splitmix64 finaliser: spreads every input bit over the output.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fixed seeds, one per hash function, so that sketches are the same in
/// every run and every build.
const SEEDS: [u64; HASHES] = {
    let mut seeds = [0u64; HASHES];
    let mut i = 0;
    while i < HASHES {
        seeds[i] = mix(0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 + 1));
        i += 1;
    }
    seeds
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_skip_quotes_code_and_links() {
        let text = "> you said: Hand it over\nWe can\u{2019}t wait -- see https://x.example/a\n```\nlog line\n```\nRe-release NOW!";
        assert_eq!(
            words(text),
            vec!["we", "can't", "wait", "see", "re-release", "now"]
        );
    }

    #[test]
    fn phrases_match_consecutive_words_and_prefixes() {
        let text = words("This project looks abandoned; please add a new maintainer.");
        let found = |p: &str| Phrase::new(p).is_some_and(|p| p.found_in(&text));
        assert!(found("new maintainer"));
        assert!(found("abandon*"));
        assert!(found("looks * please"));
        assert!(found("proj* looks"));
        assert!(!found("maintainer new"));
        assert!(!found("abandon"));
        assert!(Phrase::new("  ").is_none());
        assert!(Phrase::new("* *").is_none());
    }

    #[test]
    fn similar_texts_share_a_band_and_different_ones_rarely_do() {
        let a = words(
            "Please merge this pull request now, the whole community has been waiting for months",
        );
        let b = words(
            "Please merge this pull request now, the whole community has been waiting for weeks",
        );
        let c = words("The build on arm64 fails with a linker error after the last toolchain bump");
        let (sa, sb, sc) = (
            Sketch::of(&a, SHINGLE).unwrap(),
            Sketch::of(&b, SHINGLE).unwrap(),
            Sketch::of(&c, SHINGLE).unwrap(),
        );
        assert!(sa.similarity(&sb) > 0.6, "{}", sa.similarity(&sb));
        assert!(sa.similarity(&sc) < 0.2, "{}", sa.similarity(&sc));
        let pairs = candidate_pairs(&[(0, &sa), (1, &sb), (2, &sc)]);
        assert!(pairs.contains(&(0, 1)), "{pairs:?}");
        assert!(!pairs.contains(&(0, 2)) && !pairs.contains(&(1, 2)));
        assert_eq!(Sketch::of(&a, SHINGLE), Sketch::of(&a, SHINGLE));
        assert!(Sketch::of(&[], SHINGLE).is_none());
        let short = |t: &str| Sketch::of(&words(t), SHINGLE).unwrap();
        let paraphrase = short("Please merge this and cut a release now, we all need it.")
            .similarity(&short(
                "Merge this and cut a release now please. We all need this!",
            ));
        assert!(paraphrase >= 0.5, "{paraphrase}");
    }
}
