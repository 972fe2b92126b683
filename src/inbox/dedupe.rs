//! Bounded, insertion-ordered set of delivery ids.
//!
//! Ids are kept as 128-bit fingerprints (two independently keyed SipHash values) rather than
//! strings: ~50 bytes per id instead of ~120, and a false "duplicate" needs a 128-bit
//! collision (probability ~n²/2¹²⁹, i.e. nil at a million ids). The keys are random per
//! process; the durable source of truth is the id strings on disk, re-fingerprinted on open.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};

pub struct Dedupe {
    set: HashSet<u128>,
    order: VecDeque<u128>,
    capacity: usize,
    k1: RandomState,
    k2: RandomState,
}

impl Dedupe {
    pub fn new(capacity: usize) -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity,
            k1: RandomState::new(),
            k2: RandomState::new(),
        }
    }

    fn fingerprint(&self, id: &str) -> u128 {
        (u128::from(self.k1.hash_one(id)) << 64) | u128::from(self.k2.hash_one(id))
    }

    /// Records `id`; returns false if it was already remembered. Past `capacity` the oldest
    /// remembered id is forgotten.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.capacity == 0 {
            return true;
        }
        let fp = self.fingerprint(id);
        if !self.set.insert(fp) {
            return false;
        }
        self.order.push_back(fp);
        if self.order.len() > self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_evicts_oldest() {
        let mut d = Dedupe::new(3);
        assert!(d.insert("a"));
        assert!(!d.insert("a"));
        assert!(d.insert("b"));
        assert!(d.insert("c"));
        assert!(d.insert("d")); // evicts a
        assert_eq!(d.len(), 3);
        assert!(d.insert("a"));
        assert!(!d.insert("d"));
    }
}
