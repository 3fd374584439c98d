//! The run's seed, when none is given: drawn here and nowhere else.
//!
//! A JSON number above 2^53 is rounded by JavaScript and by jq before 1.7,
//! so a seed copied from a report would repeat a different run. Drawn seeds
//! therefore stay below 2^53; `--seed` still takes any `u64`, and such a
//! seed is reported as given (`docs/json.md` says so).

/// Seeds drawn are below this: every one is exact as a JSON number in any
/// reader (an IEEE double holds every whole number up to 2^53).
pub(crate) const DRAWN_BELOW: u64 = 1 << 53;

/// A fresh seed for a run that was given none.
pub(crate) fn draw() -> u64 {
    rand::random::<u64>() % DRAWN_BELOW
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_seeds_are_exact_as_doubles() {
        // A draw that ignored the bound would land above it in all but one
        // of 2048 cases: a thousand draws cannot all miss it by chance.
        for _ in 0..1000 {
            let seed = draw();
            assert!(seed < DRAWN_BELOW, "{seed}");
            assert_eq!(seed as f64 as u64, seed);
        }
    }
}
