//! Sets of item indices.

/// A set of item indices (bitset), e.g. the items to exclude from a recommendation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemSet {
    words: Vec<u64>,
}

impl ItemSet {
    pub fn new(n_items: usize) -> ItemSet {
        ItemSet {
            words: vec![0; n_items.div_ceil(64)],
        }
    }

    /// The items of a history.
    pub fn from_history(n_items: usize, history: &[(u32, f32)]) -> ItemSet {
        let mut set = ItemSet::new(n_items);
        for &(item, _) in history {
            set.insert(item);
        }
        set
    }

    /// Adds `item` (growing the set if needed).
    pub fn insert(&mut self, item: u32) {
        let word = item as usize / 64;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (item % 64);
    }

    #[inline]
    pub fn contains(&self, item: u32) -> bool {
        self.words
            .get(item as usize / 64)
            .is_some_and(|w| w & (1 << (item % 64)) != 0)
    }

    pub fn clear(&mut self) {
        self.words.fill(0);
    }
}
