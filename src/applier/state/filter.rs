//! A set that answers "certainly not in it" or "perhaps": Bloom filters
//! sized from what they hold, so their memory follows the ids and keys
//! MySQL holds (about 1.5 bytes each) rather than a fixed size that fills
//! up, or a map of every value (tens of bytes each).
//!
//! It is built with room for twice what it is given. Once that room is
//! used, another filter (twice as large as all before it) takes the new
//! values: nothing is ever read again to grow it, and a lookup asks each
//! filter, of which there are a handful (they double). Every filter keeps
//! false positives under about 0.4 % when full, so a "perhaps" that MySQL
//! then denies stays rare; it is never a wrong answer, only a SELECT.

use std::hash::{Hash, Hasher};

use crate::task::TaskId;

/// Bits per value a filter has room for, and bit positions per value:
/// about 0.3 % false positives when it holds all it has room for.
const BITS_PER_VALUE: usize = 12;
const HASHES: u64 = 8;
/// Room of the smallest filter: a small board still gets a filter that
/// takes a while to fill (96 KiB).
pub const MIN_ROOM: usize = 1 << 16;

/// The 64-bit hash a filter stores of a value. The same in one process
/// (std's `DefaultHasher::new` has fixed keys), which is all it needs: a
/// filter is built afresh from MySQL by every process.
pub fn hash_key(key: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

pub fn hash_id(id: &TaskId) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.0.as_u128().hash(&mut hasher);
    hasher.finish()
}

pub struct Filter {
    /// Oldest first; values go into the last.
    layers: Vec<Layer>,
}

struct Layer {
    bits: Vec<u64>,
    /// How many values it has room for, and holds.
    room: usize,
    held: usize,
}

impl Layer {
    fn with_room(room: usize) -> Layer {
        let words = (room * BITS_PER_VALUE).div_ceil(64).max(1);
        Layer {
            bits: vec![0; words],
            room,
            held: 0,
        }
    }

    /// Double hashing: the second hash is the first, mixed (the
    /// splitmix64 finalizer), and odd; positions are mapped onto the bits
    /// by multiplication (no modulo bias worth the name, no division).
    fn positions(&self, hash: u64) -> impl Iterator<Item = usize> {
        let mut b = hash;
        b = (b ^ (b >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        b = (b ^ (b >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        b = (b ^ (b >> 31)) | 1;
        let bits = (self.bits.len() * 64) as u128;
        (0..HASHES).map(move |i| {
            let h = hash.wrapping_add(i.wrapping_mul(b));
            ((u128::from(h) * bits) >> 64) as usize
        })
    }

    fn insert(&mut self, hash: u64) {
        for bit in self.positions(hash) {
            self.bits[bit / 64] |= 1 << (bit % 64);
        }
        self.held += 1;
    }

    fn may_contain(&self, hash: u64) -> bool {
        self.positions(hash)
            .all(|bit| self.bits[bit / 64] & (1 << (bit % 64)) != 0)
    }
}

impl Filter {
    /// A filter holding `hashes`, with room for as many again.
    pub fn of(hashes: &[u64]) -> Filter {
        let mut filter = Filter::with_room(2 * hashes.len());
        for hash in hashes {
            filter.insert(*hash);
        }
        filter
    }

    /// An empty filter with room for `room` values (at least
    /// [`MIN_ROOM`]); past that it grows by another, as any filter does.
    pub fn with_room(room: usize) -> Filter {
        Filter {
            layers: vec![Layer::with_room(room.max(MIN_ROOM))],
        }
    }

    /// Adds a value, unless it may be held already (its bits are set for
    /// good: repeats, such as every update of a task, take no room).
    pub fn insert(&mut self, hash: u64) {
        if self.may_contain(hash) {
            return;
        }
        let last = self.layers.last().expect("a filter has a layer");
        if last.held >= last.room {
            let room = self.layers.iter().map(|l| l.room).sum::<usize>() * 2;
            self.layers.push(Layer::with_room(room));
        }
        self.layers
            .last_mut()
            .expect("a filter has a layer")
            .insert(hash);
    }

    /// False: the value was certainly never inserted.
    pub fn may_contain(&self, hash: u64) -> bool {
        self.layers.iter().any(|layer| layer.may_contain(hash))
    }

    /// Values inserted (not counting those it already seemed to hold).
    pub fn held(&self) -> usize {
        self.layers.iter().map(|l| l.held).sum()
    }

    /// Bytes of bits.
    pub fn bytes(&self) -> usize {
        self.layers.iter().map(|l| l.bits.len() * 8).sum()
    }

    pub fn layers(&self) -> usize {
        self.layers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn false_positives(filter: &Filter, probes: std::ops::Range<u64>) -> usize {
        probes
            .filter(|i| filter.may_contain(hash_key(&format!("never-{i}"))))
            .count()
    }

    #[test]
    fn every_value_inserted_is_found_and_others_rarely_are() {
        let hashes: Vec<u64> = (0..200_000).map(|i| hash_key(&format!("k{i}"))).collect();
        let mut filter = Filter::of(&hashes);
        assert_eq!(filter.layers(), 1);
        assert!(hashes.iter().all(|h| filter.may_contain(*h)));
        // Fill the room it was built with: still one filter, and false
        // positives under 0.5 %.
        for i in 200_000..400_000 {
            filter.insert(hash_key(&format!("k{i}")));
        }
        assert_eq!(filter.layers(), 1);
        let held = filter.held();
        assert!((398_000..=400_000).contains(&held), "{held} held");
        for i in 0..1_000 {
            filter.insert(hash_key(&format!("k{i}")));
        }
        assert_eq!(filter.held(), held, "repeats take no room");
        let fp = false_positives(&filter, 0..100_000);
        assert!(fp < 500, "{fp} false positives in 100,000");
        assert!((0..400_000).all(|i| filter.may_contain(hash_key(&format!("k{i}")))));
    }

    #[test]
    fn memory_follows_what_it_holds() {
        let small = Filter::of(&[]);
        assert_eq!(small.bytes(), MIN_ROOM * BITS_PER_VALUE / 8);
        let hashes: Vec<u64> = (0..1_000_000u64)
            .map(|i| hash_id(&TaskId(uuid::Uuid::from_u128(u128::from(i)))))
            .collect();
        let big = Filter::of(&hashes);
        // 2 × 1,000,000 values of room at 12 bits: 3 MB, not the 40+ MB a
        // map of every id took.
        assert_eq!(big.bytes(), 3_000_000);
    }

    #[test]
    fn a_full_filter_grows_by_another_without_losing_any_value() {
        let mut filter = Filter::of(&[]);
        let n = 4 * MIN_ROOM as u64;
        for i in 0..n {
            filter.insert(hash_key(&format!("v{i}")));
        }
        // MIN_ROOM, then 2 × MIN_ROOM: the third holds the rest.
        assert_eq!(filter.layers(), 3);
        assert!(filter.held() > 3 * MIN_ROOM, "{} held", filter.held());
        assert!((0..n).all(|i| filter.may_contain(hash_key(&format!("v{i}")))));
        let fp = false_positives(&filter, 0..100_000);
        assert!(fp < 1_000, "{fp} false positives in 100,000 over 3 filters");
    }

    #[test]
    fn ids_and_keys_hash_apart_and_alike() {
        let id = TaskId(uuid::Uuid::from_u128(42));
        assert_eq!(hash_id(&id), hash_id(&TaskId(uuid::Uuid::from_u128(42))));
        assert_ne!(hash_id(&id), hash_id(&TaskId(uuid::Uuid::from_u128(43))));
        assert_eq!(hash_key("a"), hash_key("a"));
        assert_ne!(hash_key("a"), hash_key("b"));
    }
}
