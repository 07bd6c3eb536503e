//! "Did you mean ...?": the nearest known word to a typo.

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
pub fn nearest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_word_and_strangers_nothing() {
        let keys = ["MAVEN_IMAGE", "MAVEN_MODE", "TAG"];
        assert_eq!(nearest("MAVN_IMAGE", keys.into_iter()), Some("MAVEN_IMAGE"));
        assert_eq!(nearest("eg", ["egg", "roll"].into_iter()), Some("egg"));
        assert_eq!(nearest("COMPLETELY_ELSE", keys.into_iter()), None);
    }
}
