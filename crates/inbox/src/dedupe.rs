//! Bounded, insertion-ordered set of delivery ids.
//!
//! Ids are kept as 64-bit fingerprints (SipHash with a random per-process key) rather than
//! strings. A new id is wrongly taken for a duplicate only if its fingerprint equals one of the
//! remembered ones: probability n/2⁶⁴, about 5·10⁻¹⁴ per delivery with the default window full
//! (one in 10⁵ years at 3.5 deliveries/s), and the key is unknown outside the process, so it
//! cannot be aimed at. The durable source of truth is the id strings on disk, re-fingerprinted
//! on open.
//!
//! Layout: the fingerprints sit once, oldest first, in a ring; a hash table holds only each
//! one's 4-byte position in the ring, found by the fingerprint itself (already a keyed hash, so
//! it is the table hash). At the default window (917,504 ids) that is ~19 bytes per id, 18 MB,
//! against 55 MB for the earlier set of 128-bit fingerprints beside a doubling eviction queue:
//! the index is the part of the inbox's memory that grows with traffic. (A hash table that
//! both inserts and removes keeps tombstones and rehashes in place only below half its load
//! limit, so its slots cost ~11 bytes per id in steady state; 4-byte slots keep that small.)

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

pub struct Dedupe {
    /// Fingerprints, oldest first.
    ring: VecDeque<u64>,
    /// Sequence number (wrapping) of `ring[0]`; an id's sequence number never changes.
    first: u32,
    /// Sequence numbers of the ids in `ring`, hashed by fingerprint.
    table: HashTable<u32>,
    capacity: usize,
    key: RandomState,
}

/// Sequence numbers are `u32` and wrap, so the window must stay well below 2³².
const MAX_CAPACITY: usize = 1 << 31;

/// Largest single growth of the ring, in ids.
const MAX_STEP: usize = 1 << 16;

impl Dedupe {
    pub fn new(capacity: usize) -> Self {
        Self {
            ring: VecDeque::new(),
            first: 0,
            table: HashTable::new(),
            capacity: capacity.min(MAX_CAPACITY),
            key: RandomState::new(),
        }
    }

    fn fingerprint(&self, id: &str) -> u64 {
        self.key.hash_one(id)
    }

    /// Records `id`; returns false if it was already remembered. Past `capacity` the oldest
    /// remembered id is forgotten.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.capacity == 0 {
            return true;
        }
        let fp = self.fingerprint(id);
        let Self {
            ring, first, table, ..
        } = self;
        let at = |seq: u32| seq.wrapping_sub(*first) as usize;
        if table.find(fp, |&seq| ring[at(seq)] == fp).is_some() {
            return false;
        }
        if ring.len() >= self.capacity
            && let Some(old) = ring.pop_front()
        {
            let old_seq = *first;
            if let Ok(entry) = table.find_entry(old, |&seq| seq == old_seq) {
                entry.remove();
            }
            *first = first.wrapping_add(1);
        }
        if ring.len() == ring.capacity() {
            // Grow by an eighth, not double: this ring is the index's biggest part, and
            // doubling would leave up to half of it unused for as long as the process lives.
            let room = self.capacity - ring.len();
            ring.reserve_exact((ring.len() / 8).clamp(1024, MAX_STEP).min(room));
        }
        let first = *first;
        let at = |seq: u32| seq.wrapping_sub(first) as usize;
        // `ring.len()` < capacity ≤ 2³¹ here, so it fits a u32.
        let seq = first.wrapping_add(ring.len() as u32);
        ring.push_back(fp);
        table.insert_unique(fp, seq, |&s| ring[at(s)]);
        true
    }

    /// Whether `id` is remembered (without recording it).
    pub fn contains(&self, id: &str) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let fp = self.fingerprint(id);
        let (ring, first) = (&self.ring, self.first);
        self.table
            .find(fp, |&seq| ring[seq.wrapping_sub(first) as usize] == fp)
            .is_some()
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashSet, VecDeque};

    use proptest::prelude::*;

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

    #[test]
    fn contains_answers_without_remembering() {
        let mut d = Dedupe::new(2);
        assert!(!d.contains("a"));
        assert!(d.insert("a"), "asking did not record it");
        assert!(d.contains("a"));
        d.insert("b");
        d.insert("c"); // evicts a
        assert!(!d.contains("a"));
        assert!(d.contains("b") && d.contains("c"));
        assert!(!Dedupe::new(0).contains("a"));
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let mut d = Dedupe::new(4);
        d.first = u32::MAX - 5;
        for round in 0..3 {
            for i in 0..20 {
                assert!(d.insert(&format!("{round}-{i}")));
                assert!(!d.insert(&format!("{round}-{i}")));
            }
            assert!(d.insert(&format!("{round}-0")), "evicted long ago");
        }
        assert_eq!(d.len(), 4);
        assert_eq!(d.table.len(), 4);
    }

    fn bytes(d: &Dedupe) -> usize {
        d.ring.capacity() * 8 + d.table.allocation_size()
    }

    #[test]
    fn the_default_window_costs_under_20_bytes_per_id() {
        let n = crate::Options::default().dedupe_capacity;
        let mut d = Dedupe::new(n);
        for i in 0..n + 1000 {
            d.insert(&format!("delivery-{i}"));
            if i == n / 3 {
                let per_id = bytes(&d) as f64 / d.len() as f64;
                assert!(per_id < 20.0, "{per_id:.1} bytes per id a third of the way");
            }
        }
        let per_id = bytes(&d) as f64 / d.len() as f64;
        assert!(per_id < 20.0, "{per_id:.1} bytes per id for {n} ids");
        assert_eq!(d.len(), n);
        assert!(!d.insert(&format!("delivery-{}", n)));
        assert!(d.insert("delivery-5"), "the oldest are forgotten");
    }

    proptest! {
        /// Same answers as the obvious model: a set plus a FIFO of what it holds.
        #[test]
        fn behaves_like_a_set_with_fifo_eviction(
            capacity in 0usize..12,
            ids in proptest::collection::vec(0u8..40, 0..300),
        ) {
            let mut d = Dedupe::new(capacity);
            let mut set = HashSet::new();
            let mut order = VecDeque::new();
            for id in ids {
                let id = id.to_string();
                let expected = if capacity == 0 {
                    true
                } else if set.contains(&id) {
                    false
                } else {
                    set.insert(id.clone());
                    order.push_back(id.clone());
                    if order.len() > capacity {
                        let old = order.pop_front().unwrap();
                        set.remove(&old);
                    }
                    true
                };
                prop_assert_eq!(d.insert(&id), expected, "id {}", id);
                prop_assert_eq!(d.len(), order.len());
                prop_assert_eq!(d.table.len(), order.len());
            }
        }
    }
}
