//! "Did you mean ...?" suggestions for misspelt names.

/// Edit distance between `a` and `b`, if it is at most `limit`:
/// insertions, deletions, substitutions and transpositions of adjacent
/// characters each cost one (the "optimal string alignment" variant of
/// Damerau-Levenshtein, so `pnog` is one edit from `pong`).
///
/// The table is not finished once no path through it can come back under
/// the limit: a row's smallest entry is at least the smaller of the
/// previous row's smallest and the one before's plus one (each step costs
/// at least nothing, a transposition one), so once a row is over `limit`
/// and the one before it is at `limit` or over, every later row is over
/// too. With many names of similar lengths the whole tables were most of
/// the parse of a description full of unknown names.
pub(crate) fn edit_distance_within(a: &str, b: &str, limit: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the dynamic-programming table: i-2, i-1 and i, and
    // the smallest entries of the last two.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    let mut previous_min = 0;
    for i in 1..=a.len() {
        current[0] = i;
        let mut current_min = i;
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1).min(current[j - 1] + 1).min(previous[j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
            current_min = current_min.min(best);
        }
        if current_min > limit && previous_min >= limit {
            return None;
        }
        previous_min = current_min;
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    Some(previous[b.len()]).filter(|&d| d <= limit)
}

/// The candidate closest to `name`, if it is close enough to be a plausible
/// typo: about a third of the name's length in edits, so one-letter names
/// get no suggestion and `pnog` gets `pong`.
pub(crate) fn closest<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let length = name.chars().count();
    let limit = (length + 1) / 3;
    candidates
        .into_iter()
        // At least one edit per character of difference in length: the
        // table (the costly part, with many names) is only for the others.
        .filter(|candidate| candidate.chars().count().abs_diff(length) <= limit)
        .filter_map(|candidate| Some((edit_distance_within(name, candidate, limit)?, candidate)))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// Hint text for an unknown `name` of some `kind` ("protection domains"):
/// suggests the closest candidate and lists them all.
pub(crate) fn hint<'a, I>(name: &str, kind: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str> + Clone,
{
    let all = list(candidates.clone());
    match closest(name, candidates) {
        Some(best) => format!("did you mean `{best}`? {kind}: {all}"),
        None if all.is_empty() => format!("there are no {kind}"),
        None => format!("{kind}: {all}"),
    }
}

/// `a`, `b`, `c` — names quoted and comma-separated.
pub(crate) fn list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole distance.
    fn edit_distance(a: &str, b: &str) -> usize {
        edit_distance_within(a, b, usize::MAX).unwrap()
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("pnog", "pong"), 1);
        assert_eq!(edit_distance("pririty", "priority"), 1);
    }

    #[test]
    fn closest_needs_a_plausible_typo() {
        let names = ["ping", "pong", "timer"];
        assert_eq!(closest("pnog", names), Some("pong"));
        assert_eq!(closest("timr", names), Some("timer"));
        assert_eq!(closest("serial", names), None);
        assert_eq!(closest("c", ["b"]), None);
    }

    /// Stopping early changes no answer: every pair of short strings over
    /// three letters (so with transpositions), every limit.
    #[test]
    fn within_is_the_distance_under_the_limit() {
        let mut words = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = words
                .iter()
                .filter(|w| w.len() == words.last().unwrap().len())
                .flat_map(|w| ["a", "b", "c"].map(|c| format!("{w}{c}")))
                .collect();
            words.extend(longer);
        }
        for a in words.iter().step_by(3) {
            for b in &words {
                let d = edit_distance(a, b);
                for limit in 0..=6 {
                    assert_eq!(edit_distance_within(a, b, limit), (d <= limit).then_some(d), "{a} {b} {limit}");
                }
            }
        }
    }

    /// Skipping candidates by length changes no answer: they are those
    /// whose distance is over the limit anyway.
    #[test]
    fn closest_is_the_nearest_within_the_limit() {
        let names = ["a", "ab", "abc", "abcd", "abcdef", "abcdefgh", "bacd", "ébcd", "xyzxyzxyz", "abdc", ""];
        for name in names.iter().chain(&["abce", "abcdefg", "acbdef", "é", "xyzxyz", "abcdefghijk"]) {
            let limit = (name.chars().count() + 1) / 3;
            let nearest = names
                .iter()
                .map(|c| (edit_distance(name, c), *c))
                .filter(|&(d, _)| d <= limit)
                .min_by_key(|&(d, _)| d)
                .map(|(_, c)| c);
            assert_eq!(closest(name, names), nearest, "{name}");
        }
    }

    #[test]
    fn hint_lists_candidates() {
        assert_eq!(
            hint("pnog", "protection domains", ["ping", "pong"]),
            "did you mean `pong`? protection domains: `ping`, `pong`"
        );
        assert_eq!(hint("x", "memory regions", [] as [&str; 0]), "there are no memory regions");
    }
}
