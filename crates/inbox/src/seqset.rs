//! The set of unfinished entry seqs, as a bitmap starting at the oldest unfinished one.
//!
//! Seqs are dense and handed out in increasing order, and entries finish roughly in order, so
//! one bit per seq between the oldest unfinished entry and the newest is far smaller than a
//! hash set (9–18 bytes per entry): a backlog of a million deliveries costs 125 KB. An entry
//! that never finishes keeps the bitmap's start back, costing one bit per later delivery.

use std::collections::VecDeque;

#[derive(Debug, Default)]
pub struct SeqSet {
    /// Seq of the first bit of `words[0]`; a multiple of 64.
    base: u64,
    words: VecDeque<u64>,
}

impl SeqSet {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Adds `seq`; false if it was already there.
    pub fn insert(&mut self, seq: u64) -> bool {
        let word_base = seq - seq % 64;
        if self.words.is_empty() {
            self.base = word_base;
        }
        while word_base < self.base {
            self.words.push_front(0);
            self.base -= 64;
        }
        let index = ((seq - self.base) / 64) as usize;
        if index >= self.words.len() {
            self.words.resize(index + 1, 0);
        }
        let bit = 1u64 << (seq % 64);
        let was = self.words[index] & bit != 0;
        self.words[index] |= bit;
        !was
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.locate(seq)
            .is_some_and(|(index, bit)| self.words[index] & bit != 0)
    }

    /// Removes `seq`; false if it was not there. Leading empty words are dropped.
    pub fn remove(&mut self, seq: u64) -> bool {
        let Some((index, bit)) = self.locate(seq) else {
            return false;
        };
        if self.words[index] & bit == 0 {
            return false;
        }
        self.words[index] &= !bit;
        while self.words.front() == Some(&0) {
            self.words.pop_front();
            self.base += 64;
        }
        if self.words.is_empty() {
            // Release the ring's memory after a burst drained.
            self.words = VecDeque::new();
        }
        true
    }

    fn locate(&self, seq: u64) -> Option<(usize, u64)> {
        let offset = seq.checked_sub(self.base)?;
        let index = usize::try_from(offset / 64).ok()?;
        (index < self.words.len()).then_some((index, 1u64 << (seq % 64)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_drained_backlog_leaves_nothing_behind() {
        let mut s = SeqSet::default();
        for seq in 1..=10_000 {
            assert!(s.insert(seq));
        }
        assert!(!s.insert(5));
        assert_eq!(s.len(), 10_000);
        assert!(s.words.len() <= 10_000 / 64 + 2, "one bit per seq");
        for seq in 1..=10_000 {
            assert!(s.remove(seq));
        }
        assert!(!s.remove(1));
        assert_eq!((s.len(), s.words.len()), (0, 0));
        // A stuck entry keeps the start back; later ones still come and go.
        s.insert(20_000);
        s.insert(20_001);
        s.insert(90_000);
        s.remove(20_001);
        s.remove(90_000);
        assert!(s.contains(20_000) && !s.contains(90_000) && !s.contains(19_999));
        assert_eq!(s.len(), 1);
    }

    proptest! {
        /// Any mix of inserts and removes, in any order, answers like a hash set.
        #[test]
        fn behaves_like_a_hash_set(ops in proptest::collection::vec((any::<bool>(), 0u64..2_000), 0..400)) {
            let mut bits = SeqSet::default();
            let mut model = HashSet::new();
            for (insert, seq) in ops {
                if insert {
                    prop_assert_eq!(bits.insert(seq), model.insert(seq));
                } else {
                    prop_assert_eq!(bits.remove(seq), model.remove(&seq));
                }
                prop_assert_eq!(bits.len(), model.len());
            }
            for seq in 0..2_100 {
                prop_assert_eq!(bits.contains(seq), model.contains(&seq));
            }
        }
    }
}
