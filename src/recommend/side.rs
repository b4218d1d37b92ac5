//! Side information for the item-item model: attribute values as postings per
//! item and as features per user.

use super::attributes::Attributes;
use super::data::Dataset;
use super::ease::{SideInfo, UserFeatures};
use super::fit::MAX_USER_FEATURES;

/// Where each attribute's values start in one numbering of all values, and the total.
fn value_offsets(attributes: &Attributes) -> (Vec<usize>, usize) {
    let mut first = Vec::with_capacity(attributes.vocab.len());
    let mut total = 0usize;
    for values in &attributes.vocab {
        first.push(total);
        total += values.len();
    }
    (first, total)
}

/// For each attribute value shared by at least two warm items, those items (indices of
/// `item_ids`, ascending).
pub(super) fn value_postings(attributes: &Attributes, item_ids: &[String]) -> Vec<Vec<u32>> {
    let aligned = attributes.aligned(item_ids);
    let (first, total) = value_offsets(&aligned);
    let mut postings = vec![Vec::new(); total];
    for item in 0..item_ids.len() {
        for &(attribute, value) in aligned.row(item) {
            postings[first[attribute as usize] + value as usize].push(item as u32);
        }
    }
    // Attribute rows hold each value once, so an item appears once per posting.
    postings.retain(|items| items.len() >= 2);
    postings
}

/// Each user's features: the user-attribute values shared by at least two users, at most
/// [`MAX_USER_FEATURES`] of them (the most common), numbered densely.
pub(super) fn user_features(attributes: &Attributes, user_ids: &[String]) -> UserFeatures {
    let aligned = attributes.aligned(user_ids);
    let (first, total) = value_offsets(&aligned);
    let global = |&(attribute, value): &(u32, u32)| first[attribute as usize] + value as usize;
    let mut counts = vec![0usize; total];
    for user in 0..user_ids.len() {
        for entry in aligned.row(user) {
            counts[global(entry)] += 1;
        }
    }
    let mut ranked: Vec<usize> = (0..total).filter(|&v| counts[v] >= 2).collect();
    ranked.sort_by_key(|&v| (std::cmp::Reverse(counts[v]), v));
    ranked.truncate(MAX_USER_FEATURES);
    let mut dense = vec![u32::MAX; total];
    for (f, &v) in ranked.iter().enumerate() {
        dense[v] = f as u32;
    }
    let mut out = UserFeatures {
        count: ranked.len(),
        offsets: Vec::with_capacity(user_ids.len() + 1),
        ids: Vec::new(),
    };
    out.offsets.push(0);
    for user in 0..user_ids.len() {
        // Attribute rows hold each value once, and `dense` is one-to-one.
        out.ids.extend(
            aligned
                .row(user)
                .iter()
                .map(|e| dense[global(e)])
                .filter(|&f| f != u32::MAX),
        );
        out.offsets.push(out.ids.len());
    }
    out
}

/// Side information of strength `weight` for `data`: one value counts `weight ×` the mean
/// squared interaction weight per item (the mean diagonal of the Gram matrix).
pub(super) fn side_info<'a>(
    postings: &'a [Vec<u32>],
    data: &Dataset,
    weight: f32,
) -> Option<SideInfo<'a>> {
    if weight <= 0.0 || postings.is_empty() {
        return None;
    }
    let mass: f64 = data
        .values
        .iter()
        .map(|&w| f64::from(w) * f64::from(w))
        .sum();
    Some(SideInfo {
        postings,
        weight: f64::from(weight) * mass / data.n_items().max(1) as f64,
    })
}
