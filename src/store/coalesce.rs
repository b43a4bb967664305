//! One charge per counter: a check that charges the same counter twice
//! (the same limit and key) is answered as one charge of the summed cost.
//!
//! The layer never builds such a check, but the [`Store`](super::Store)
//! API allows it, and charging the two parts one after the other gives a
//! wrong answer: the second part's refusal carries the retry-after of its
//! own cost on top of the first, not of the whole request's, and a request
//! that can never pass (2 x 3 units of a 5-unit burst) is not seen as
//! impossible. Summed, the request is judged as what it is.

use super::Charge;

/// `charges` with every counter once, the costs of repeated ones summed at
/// the first's place, and each kept charge's position in `charges`; `None`
/// (and no allocation) when no counter repeats.
pub(crate) fn coalesce<'a, H>(
    charges: &[Charge<'a, H>],
    same: impl Fn(&Charge<'a, H>, &Charge<'a, H>) -> bool,
) -> Option<(Vec<Charge<'a, H>>, Vec<usize>)> {
    let repeats = (1..charges.len()).any(|j| charges[..j].iter().any(|c| same(c, &charges[j])));
    if !repeats {
        return None;
    }
    let mut kept: Vec<Charge<'a, H>> = Vec::with_capacity(charges.len());
    let mut positions = Vec::with_capacity(charges.len());
    for (j, charge) in charges.iter().enumerate() {
        match kept.iter_mut().find(|k| same(k, charge)) {
            Some(k) => k.cost = k.cost.saturating_add(charge.cost),
            None => {
                kept.push(*charge);
                positions.push(j);
            }
        }
    }
    Some((kept, positions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Key;

    #[test]
    fn repeated_counters_are_summed_at_the_first_place() {
        let (a, b) = (1u8, 2u8);
        let (x, y) = (
            Key::owned("x", "t").expect("key"),
            Key::owned("y", "t").expect("key"),
        );
        let same = |p: &Charge<'_, u8>, q: &Charge<'_, u8>| p.handle == q.handle && p.key == q.key;
        let once = [
            Charge::new(&a, &x, 1),
            Charge::new(&b, &x, 2),
            Charge::new(&a, &y, 3),
        ];
        assert!(coalesce(&once, same).is_none(), "no counter twice");
        let twice = [
            Charge::new(&a, &x, 3),
            Charge::new(&b, &y, 1),
            Charge::new(&a, &x, 3),
            Charge::new(&b, &y, 2),
            Charge::new(&a, &y, 5),
        ];
        let (kept, positions) = coalesce(&twice, same).expect("repeats");
        let costs: Vec<u64> = kept.iter().map(|c| c.cost).collect();
        assert_eq!(costs, [6, 3, 5]);
        assert_eq!(positions, [0, 1, 4]);
    }
}
