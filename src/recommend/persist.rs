//! Saving and loading a recommender: `weights.safetensors` (tensors by layer, F32; stored
//! histories as CSR I64/I32/F32 tensors) and `vocab.json` (item and user ids); everything
//! else lives in the serde [`RecommenderSpec`] the caller stores (e.g. in `model.json`).
//!
//! This module only encodes and decodes: [`Recommender::artifact_files`] returns the files'
//! bytes (the tensors encoded by [`crate::codec`], as the registry encodes networks) and the
//! registry writes them through its one synced write path.

use std::path::Path;

use ndarray::{Array1, Array2};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use crate::codec::{self, EncodeError, Tensor};

use super::attributes::Attributes;
use super::dae::Dae;
use super::ease::{Ease, UserFeatures};
use super::error::RecommendError;
use super::ivf::IvfIndex;
use super::model::{Parts, Recommender, RecommenderSpec, SPEC_FORMAT};

pub use crate::codec::WEIGHTS_FILE;
/// File holding the item and user ids, in index order.
pub const VOCAB_FILE: &str = "vocab.json";
/// File holding the item and user attributes, when the model has them.
pub const ATTRIBUTES_FILE: &str = "attributes.json";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredAttributes {
    /// One row per item index, cold-start items after the trained ones.
    items: Option<Attributes>,
    users: Option<Attributes>,
}

#[derive(Serialize, Deserialize)]
struct Vocab {
    items: Vec<String>,
    users: Vec<String>,
}

/// CSR offsets as `I64`.
fn offsets_tensor(name: &str, offsets: &[usize]) -> Tensor {
    Tensor::i64(name, offsets.iter().map(|&o| o as i64))
}

/// Indices as `I32`.
fn indices_tensor(name: &str, indices: &[u32]) -> Tensor {
    Tensor::i32(name, indices.iter().map(|&i| i as i32))
}

impl Recommender {
    /// The files of a saved recommender as `(file name, bytes)`: `weights.safetensors`,
    /// `vocab.json` and, with attributes, `attributes.json`. The caller stores them (the
    /// registry writes, fsyncs and publishes them) next to the spec
    /// ([`Recommender::spec`]); [`Recommender::load`] reads them back.
    ///
    /// # Errors
    /// [`RecommendError::Artifact`] on serialisation failure.
    pub fn artifact_files(&self) -> Result<Vec<(&'static str, Vec<u8>)>, RecommendError> {
        let n = self.n_warm();
        let mut raws = vec![
            Tensor::f32("popularity", vec![n], self.popularity[..n].iter().copied()),
            offsets_tensor("histories.offsets", &self.history_offsets),
            indices_tensor("histories.items", &self.history_items),
            Tensor::f32(
                "histories.weights",
                vec![self.history_weights.len()],
                self.history_weights.iter().copied(),
            ),
        ];
        if let Some(dae) = &self.dae {
            let h = dae.hidden();
            raws.push(Tensor::f32(
                "encoder.weight",
                vec![n, h],
                dae.encoder.iter().copied(),
            ));
            raws.push(Tensor::f32(
                "encoder.bias",
                vec![h],
                dae.encoder_bias.iter().copied(),
            ));
            raws.push(Tensor::f32(
                "decoder.weight",
                vec![h, n],
                dae.decoder.iter().copied(),
            ));
            raws.push(Tensor::f32(
                "decoder.bias",
                vec![n],
                dae.decoder_bias.iter().copied(),
            ));
        }
        if let Some(ease) = &self.ease {
            raws.push(Tensor::f32(
                "item_item.weight",
                vec![ease.weights.nrows(), n],
                ease.weights.iter().copied(),
            ));
            let features = &ease.user_features;
            if features.count > 0 {
                raws.push(offsets_tensor(
                    "item_item.user_features.offsets",
                    &features.offsets,
                ));
                raws.push(indices_tensor("item_item.user_features.ids", &features.ids));
            }
        }
        if let Some(ann) = &self.ann {
            let index = &ann.index;
            raws.push(Tensor::f32(
                "index.centroids",
                vec![index.centroids.nrows(), index.centroids.ncols()],
                index.centroids.iter().copied(),
            ));
            raws.push(offsets_tensor("index.offsets", &index.offsets));
            raws.push(indices_tensor("index.items", &index.items));
        }
        let bytes = codec::encode(&raws, &SPEC_FORMAT.to_string()).map_err(|e| match e {
            EncodeError::Tensor { name, source } => RecommendError::artifact(&name, source),
            EncodeError::File(source) => RecommendError::artifact(WEIGHTS_FILE, source),
        })?;
        let mut files = vec![(WEIGHTS_FILE, bytes)];
        let vocab = Vocab {
            items: self.item_ids[..n].to_vec(),
            users: self.user_ids.clone(),
        };
        let json =
            serde_json::to_vec(&vocab).map_err(|e| RecommendError::artifact(VOCAB_FILE, e))?;
        files.push((VOCAB_FILE, json));
        let items = self.item_attributes();
        let users = self.user_attributes();
        if items.is_some() || users.is_some() {
            let stored = StoredAttributes {
                items: items.cloned(),
                users: users.cloned(),
            };
            let json = serde_json::to_vec(&stored)
                .map_err(|e| RecommendError::artifact(ATTRIBUTES_FILE, e))?;
            files.push((ATTRIBUTES_FILE, json));
        }
        Ok(files)
    }

    /// Rebuilds a recommender stored from [`Recommender::artifact_files`] with its spec.
    ///
    /// # Errors
    /// [`RecommendError::Artifact`] for unreadable files, unknown formats, missing or
    /// misshapen tensors, or parts that do not match the spec.
    pub fn load(spec: &RecommenderSpec, dir: &Path) -> Result<Recommender, RecommendError> {
        if spec.format != SPEC_FORMAT {
            return Err(RecommendError::Artifact(format!(
                "spec format {} is not supported (expected {SPEC_FORMAT})",
                spec.format
            )));
        }
        let vocab_bytes = crate::storage::fsops::read(dir.join(VOCAB_FILE))
            .map_err(|e| RecommendError::artifact(VOCAB_FILE, e))?;
        let vocab: Vocab = serde_json::from_slice(&vocab_bytes)
            .map_err(|e| RecommendError::artifact(VOCAB_FILE, e))?;
        let bytes = crate::storage::fsops::read(dir.join(WEIGHTS_FILE))
            .map_err(|e| RecommendError::artifact(WEIGHTS_FILE, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| RecommendError::artifact(WEIGHTS_FILE, e))?;
        let n = spec.n_items;
        let h = spec.hidden;
        let get = |name: &str,
                   dtype: Dtype,
                   shape: Option<&[usize]>|
         -> Result<Vec<u8>, RecommendError> {
            let view = st.tensor(name).map_err(|e| {
                RecommendError::artifact(WEIGHTS_FILE, format!("tensor `{name}`: {e}"))
            })?;
            if view.dtype() != dtype {
                return Err(RecommendError::Artifact(format!(
                    "tensor `{name}` is {:?}, expected {dtype:?}",
                    view.dtype()
                )));
            }
            if let Some(shape) = shape {
                if view.shape() != shape {
                    return Err(RecommendError::Artifact(format!(
                        "tensor `{name}` has shape {:?}, expected {shape:?}",
                        view.shape()
                    )));
                }
            }
            Ok(view.data().to_vec())
        };
        let f32s = |name: &str, shape: Option<&[usize]>| -> Result<Vec<f32>, RecommendError> {
            let data: Vec<f32> = get(name, Dtype::F32, shape)?
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if let Some(index) = data.iter().position(|v| !v.is_finite()) {
                return Err(RecommendError::Artifact(format!(
                    "tensor `{name}` has a non-finite value at flat index {index}"
                )));
            }
            Ok(data)
        };
        let matrix =
            |name: &str, rows: usize, cols: usize| -> Result<Array2<f32>, RecommendError> {
                Array2::from_shape_vec((rows, cols), f32s(name, Some(&[rows, cols]))?)
                    .map_err(|e| RecommendError::artifact(name, e))
            };
        let offsets_of = |name: &str| -> Result<Vec<usize>, RecommendError> {
            Ok(get(name, Dtype::I64, None)?
                .chunks_exact(8)
                .map(|c| {
                    let v = i64::from_le_bytes(c.try_into().expect("8 bytes"));
                    usize::try_from(v).unwrap_or(usize::MAX)
                })
                .collect())
        };
        let indices_of = |name: &str| -> Result<Vec<u32>, RecommendError> {
            Ok(get(name, Dtype::I32, None)?
                .chunks_exact(4)
                .map(|c| {
                    let v = i32::from_le_bytes(c.try_into().expect("4 bytes"));
                    u32::try_from(v).unwrap_or(u32::MAX)
                })
                .collect())
        };
        let offsets = offsets_of("histories.offsets")?;
        let items = indices_of("histories.items")?;
        let weights = f32s("histories.weights", None)?;
        let dae = if h > 0 {
            Some(Dae {
                encoder: matrix("encoder.weight", n, h)?,
                encoder_bias: Array1::from_vec(f32s("encoder.bias", Some(&[h]))?),
                decoder: matrix("decoder.weight", h, n)?,
                decoder_bias: Array1::from_vec(f32s("decoder.bias", Some(&[n]))?),
            })
        } else {
            None
        };
        let has_item_item = st.names().contains(&"item_item.weight");
        let ease = if has_item_item {
            let count = spec.user_features;
            let user_features = if count > 0 {
                UserFeatures {
                    count,
                    offsets: offsets_of("item_item.user_features.offsets")?,
                    ids: indices_of("item_item.user_features.ids")?,
                }
            } else {
                UserFeatures::default()
            };
            Some(Ease {
                weights: matrix("item_item.weight", n + count, n)?,
                user_features,
            })
        } else {
            None
        };
        let index = if spec.index_lists > 0 {
            let centroids = matrix("index.centroids", spec.index_lists, h + 2)?;
            let index = IvfIndex::from_parts(
                centroids,
                offsets_of("index.offsets")?,
                indices_of("index.items")?,
                n,
                h,
            )
            .map_err(|e| RecommendError::artifact(WEIGHTS_FILE, e))?;
            Some(index)
        } else {
            None
        };
        let mut model = Recommender::from_parts(Parts {
            spec: spec.clone(),
            item_ids: vocab.items,
            user_ids: vocab.users,
            history_offsets: offsets,
            history_items: items,
            history_weights: weights,
            popularity: f32s("popularity", Some(&[n]))?,
            dae,
            ease,
        })?;
        if let Some(index) = index {
            model = model.with_index(index, spec.index_probes);
        }
        let wants_attributes = spec.cold_items > 0
            || !spec.item_attributes.is_empty()
            || !spec.user_attributes.is_empty();
        if !wants_attributes {
            return Ok(model);
        }
        let bytes = crate::storage::fsops::read(dir.join(ATTRIBUTES_FILE))
            .map_err(|e| RecommendError::artifact(ATTRIBUTES_FILE, e))?;
        let stored: StoredAttributes = serde_json::from_slice(&bytes)
            .map_err(|e| RecommendError::artifact(ATTRIBUTES_FILE, e))?;
        for attrs in stored.items.iter().chain(&stored.users) {
            attrs
                .check()
                .map_err(|e| RecommendError::artifact(ATTRIBUTES_FILE, e))?;
        }
        let model = model.with_attributes(stored.items, stored.users, usize::MAX)?;
        if model.spec().cold_items != spec.cold_items {
            return Err(RecommendError::Artifact(format!(
                "{ATTRIBUTES_FILE} gives {} cold-start items, the spec {}",
                model.spec().cold_items,
                spec.cold_items
            )));
        }
        Ok(model)
    }
}
