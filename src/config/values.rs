//! Typed value helpers shared by every component's parser: whole numbers with a floor,
//! Java-style booleans, charset names, lists, and the edit distance behind "did you mean".
//! No I/O; each returns what is accepted as its error, for [`super::Keys::bad`].

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word` (the first of equals), if it is close enough to be a
/// likely typo: at most 2 edits, or a third of the longer word's length. Further than that a
/// suggestion points at an unrelated key (`batchSiz` is not a typo of `type`).
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(word.chars().count().max(c.chars().count()) / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A whole number of at least `min` `unit`s.
pub fn parse_u64(s: &str, min: u64, unit: &str) -> Result<u64, String> {
    let expected = || {
        if min == 0 {
            format!("a whole number of {unit} (0 or more)")
        } else {
            format!("a whole number of {unit}, at least {min}")
        }
    };
    match s.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(expected()),
    }
}

/// `true` or `false` in any case. Flume reads anything but `true` as false, so a typo there
/// silently turns a feature off; here it is an error.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    if s.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if s.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("true or false (Flume would read anything but `true` as false)".into())
    }
}

/// Whether `s` names UTF-8 as Java's charset names do.
pub fn is_utf8_name(s: &str) -> bool {
    s.eq_ignore_ascii_case("utf-8") || s.eq_ignore_ascii_case("utf8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_picks_the_smallest_edit_distance() {
        assert_eq!(edit_distance("capacty", "capacity"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            nearest("chanels", ["sources", "channels", "sinks"]),
            Some("channels")
        );
        assert_eq!(
            nearest("capacty", ["transactionCapacity", "capacity"]),
            Some("capacity")
        );
        assert_eq!(nearest("x", []), None);
    }

    #[test]
    fn numbers_and_booleans_say_what_is_accepted() {
        assert_eq!(parse_u64("5", 1, "events"), Ok(5));
        assert_eq!(
            parse_u64("0", 1, "events").expect_err("below the floor"),
            "a whole number of events, at least 1"
        );
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert!(parse_bool("yes").is_err());
    }
}
