//! Image features: base64-encoded PNG or JPEG strings (optionally as a `data:image/...;base64,`
//! URL), or flat numeric pixel arrays with a declared layout, decoded, converted to
//! grayscale or RGB, resized to the configured size (triangle filter), scaled to [0, 1]
//! and standardized per pixel with training statistics.
//!
//! Features are row-major with interleaved channels: pixel `(y, x)`, channel `c` is
//! feature `(y · width + x) · channels + c`. A missing image encodes as all zeros (the
//! training mean after standardization).

use std::io::Cursor;

use base64::Engine as _;
use image::imageops::{resize, FilterType};
use image::{ImageBuffer, ImageFormat, ImageReader, Limits, Luma, Rgb};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest accepted configured side (`pipeline.image.width`/`height`).
pub const MAX_IMAGE_SIDE: u32 = 256;
/// Largest side of an image accepted for decoding; larger ones are refused.
pub const MAX_DECODED_SIDE: u32 = 4096;
/// Most bytes the decoder may allocate for one image.
const MAX_DECODE_ALLOC: u64 = 64 << 20;
/// Smallest per-pixel standard deviation used for standardization (pixels in [0, 1]), so
/// that nearly constant pixels are not blown up.
pub const MIN_PIXEL_STD: f32 = 0.05;

/// Colour mode of the model input.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ImageMode {
    /// One channel (ITU-R BT.709 luma of colour images).
    Grayscale,
    /// Three channels (grayscale images replicated).
    Rgb,
}

impl ImageMode {
    fn channels(self) -> usize {
        match self {
            ImageMode::Grayscale => 1,
            ImageMode::Rgb => 3,
        }
    }
}

/// The layout of flat numeric pixel arrays: row-major, channels interleaved.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PixelLayout {
    pub width: u32,
    pub height: u32,
    /// 1 (gray) or 3 (RGB).
    pub channels: u32,
}

/// How image columns are featurized; `pipeline.image` in a training request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ImageOptions {
    /// Model input width in pixels (default 28, 1..=256).
    pub width: u32,
    /// Model input height in pixels (default 28, 1..=256).
    pub height: u32,
    /// `grayscale` (default) or `rgb`.
    pub mode: ImageMode,
    /// Layout of pixel-array inputs; `null` (default) when images arrive as PNG/JPEG.
    pub pixels: Option<PixelLayout>,
    /// Value of a full-intensity pixel in pixel arrays (default 255).
    pub pixel_max: f32,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            width: 28,
            height: 28,
            mode: ImageMode::Grayscale,
            pixels: None,
            pixel_max: 255.0,
        }
    }
}

impl ImageOptions {
    /// Checks every field; the message names it (`pipeline.image.width`) and its value.
    pub fn validate(&self) -> Result<(), String> {
        for (name, side) in [("width", self.width), ("height", self.height)] {
            if !(1..=MAX_IMAGE_SIDE).contains(&side) {
                return Err(format!(
                    "pipeline.image.{name} is {side}; it must be between 1 and {MAX_IMAGE_SIDE}"
                ));
            }
        }
        if let Some(layout) = self.pixels {
            for (name, side) in [("width", layout.width), ("height", layout.height)] {
                if !(1..=MAX_DECODED_SIDE).contains(&side) {
                    return Err(format!(
                        "pipeline.image.pixels.{name} is {side}; it must be between 1 and {MAX_DECODED_SIDE}"
                    ));
                }
            }
            if !matches!(layout.channels, 1 | 3) {
                return Err(format!(
                    "pipeline.image.pixels.channels is {}; it must be 1 or 3",
                    layout.channels
                ));
            }
        }
        if !(self.pixel_max.is_finite() && self.pixel_max > 0.0) {
            return Err(format!(
                "pipeline.image.pixel_max is {}; it must be a positive number",
                self.pixel_max
            ));
        }
        Ok(())
    }
}

/// A raw image value: encoded text, or a JSON array of numbers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ImageInput<'a> {
    Text(&'a str),
    Array(&'a [Value]),
}

/// A fitted image featurizer for one column.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageEncoder {
    width: u32,
    height: u32,
    mode: ImageMode,
    #[serde(default)]
    pixels: Option<PixelLayout>,
    pixel_max: f32,
    /// Per-feature training mean (all 0 without standardization).
    mean: Vec<f32>,
    /// Per-feature training standard deviation, at least [`MIN_PIXEL_STD`] (all 1 without
    /// standardization).
    std: Vec<f32>,
}

impl ImageEncoder {
    /// An unfitted encoder (mean 0, std 1) for `options`.
    pub(crate) fn new(options: &ImageOptions) -> ImageEncoder {
        let width = (options.width * options.height) as usize * options.mode.channels();
        ImageEncoder {
            width: options.width,
            height: options.height,
            mode: options.mode,
            pixels: options.pixels,
            pixel_max: options.pixel_max,
            mean: vec![0.0; width],
            std: vec![1.0; width],
        }
    }

    /// Fits per-feature statistics on `images` (decoded, in [0, 1]).
    /// `Err((index, reason))` names the first image that cannot be read.
    pub(crate) fn fit<'a>(
        options: &ImageOptions,
        images: impl Iterator<Item = Option<ImageInput<'a>>>,
        standardize: bool,
    ) -> Result<ImageEncoder, (usize, String)> {
        let mut encoder = ImageEncoder::new(options);
        let width = encoder.width();
        let mut sum = vec![0.0f64; width];
        let mut squares = vec![0.0f64; width];
        let mut count = 0usize;
        let mut buf = vec![0.0f32; width];
        for (i, image) in images.enumerate() {
            let Some(image) = image else { continue };
            encoder.pixels_into(image, &mut buf).map_err(|e| (i, e))?;
            if standardize {
                for ((s, q), &v) in sum.iter_mut().zip(&mut squares).zip(&buf) {
                    *s += f64::from(v);
                    *q += f64::from(v) * f64::from(v);
                }
            }
            count += 1;
        }
        if standardize && count > 0 {
            let n = count as f64;
            for ((m, sd), (s, q)) in encoder
                .mean
                .iter_mut()
                .zip(&mut encoder.std)
                .zip(sum.iter().zip(&squares))
            {
                let mean = s / n;
                let var = (q / n - mean * mean).max(0.0);
                *m = mean as f32;
                *sd = (var.sqrt() as f32).max(MIN_PIXEL_STD);
            }
        }
        Ok(encoder)
    }

    /// Checks the fitted state after deserializing.
    pub(crate) fn check(&self) -> Result<(), String> {
        ImageOptions {
            width: self.width,
            height: self.height,
            mode: self.mode,
            pixels: self.pixels,
            pixel_max: self.pixel_max,
        }
        .validate()?;
        if self.mean.len() != self.width() || self.std.len() != self.width() {
            return Err("image statistics do not match the image size".into());
        }
        if self.mean.iter().any(|m| !m.is_finite())
            || self.std.iter().any(|s| !s.is_finite() || *s <= 0.0)
        {
            return Err("image statistics must be finite with std > 0".into());
        }
        Ok(())
    }

    /// Output features: width × height × channels.
    pub(crate) fn width(&self) -> usize {
        (self.width * self.height) as usize * self.mode.channels()
    }

    /// `(width, height, channels)` of the encoded pixels.
    pub(crate) fn dimensions(&self) -> (usize, usize, usize) {
        (
            self.width as usize,
            self.height as usize,
            self.mode.channels(),
        )
    }

    /// Feature names `name#pK`.
    pub(crate) fn feature_names(&self, name: &str, out: &mut Vec<String>) {
        out.extend((0..self.width()).map(|k| format!("{name}#p{k}")));
    }

    /// Standardized features of `image` into `out` (`len == width()`).
    pub(crate) fn encode(&self, image: ImageInput<'_>, out: &mut [f32]) -> Result<(), String> {
        self.pixels_into(image, out)?;
        for ((v, m), s) in out.iter_mut().zip(&self.mean).zip(&self.std) {
            *v = (*v - m) / s;
        }
        Ok(())
    }

    /// Decoded, converted and resized pixels in [0, 1] into `out`.
    fn pixels_into(&self, image: ImageInput<'_>, out: &mut [f32]) -> Result<(), String> {
        let decoded = match (image, self.pixels) {
            (ImageInput::Array(values), Some(layout)) => {
                let values = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_f64()
                            .filter(|v| v.is_finite())
                            .ok_or_else(|| format!("pixel {i} is not a number"))
                    })
                    .collect::<Result<Vec<f64>, String>>()?;
                self.read_pixels(&values, layout)?
            }
            (ImageInput::Text(text), Some(layout)) if looks_like_pixel_text(text) => {
                let values = text
                    .trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|t| !t.is_empty())
                    .enumerate()
                    .map(|(i, t)| {
                        t.parse::<f64>()
                            .ok()
                            .filter(|v| v.is_finite())
                            .ok_or_else(|| format!("pixel {i} (`{t}`) is not a number"))
                    })
                    .collect::<Result<Vec<f64>, String>>()?;
                self.read_pixels(&values, layout)?
            }
            (ImageInput::Text(text), _) => self.decode_encoded(text)?,
            (ImageInput::Array(_), None) => return Err(
                "a pixel array needs `pipeline.image.pixels` (width, height, channels) at training"
                    .into(),
            ),
        };
        self.resize_into(decoded, out);
        Ok(())
    }

    fn read_pixels(&self, values: &[f64], layout: PixelLayout) -> Result<Decoded, String> {
        let expected = (layout.width * layout.height * layout.channels) as usize;
        if values.len() != expected {
            return Err(format!(
                "{} pixel values, the declared {}×{}×{} layout needs {expected}",
                values.len(),
                layout.width,
                layout.height,
                layout.channels
            ));
        }
        let scale = f64::from(self.pixel_max);
        let unit = |v: f64| (v / scale).clamp(0.0, 1.0) as f32;
        let (w, h) = (layout.width, layout.height);
        let data: Vec<f32> = values.iter().map(|&v| unit(v)).collect();
        let size = || "pixel buffer size".to_owned();
        Ok(if layout.channels == 1 {
            Decoded::Gray(ImageBuffer::from_raw(w, h, data).ok_or_else(size)?)
        } else {
            Decoded::Rgb(ImageBuffer::from_raw(w, h, data).ok_or_else(size)?)
        })
    }

    fn decode_encoded(&self, text: &str) -> Result<Decoded, String> {
        let body = text.trim();
        let body = match body.strip_prefix("data:") {
            Some(url) => url
                .split_once(";base64,")
                .map(|(_, data)| data)
                .ok_or("a data URL must be base64 (`data:image/png;base64,...`)")?,
            None => body,
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("not valid base64: {e}"))?;
        let mut reader = ImageReader::new(Cursor::new(&bytes))
            .with_guessed_format()
            .map_err(|e| format!("unreadable image: {e}"))?;
        match reader.format() {
            Some(ImageFormat::Png | ImageFormat::Jpeg) => {}
            _ => return Err("not a PNG or JPEG image".into()),
        }
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_DECODED_SIDE);
        limits.max_image_height = Some(MAX_DECODED_SIDE);
        limits.max_alloc = Some(MAX_DECODE_ALLOC);
        reader.limits(limits);
        let image = reader.decode().map_err(|e| match e {
            image::ImageError::Limits(_) => format!(
                "the image is larger than the limit of {MAX_DECODED_SIDE}×{MAX_DECODED_SIDE} pixels"
            ),
            e => format!("corrupt image: {e}"),
        })?;
        // Resize in the decoded pixel type first: a large photo is never held as f32.
        let image = if (image.width(), image.height()) == (self.width, self.height) {
            image
        } else {
            image.resize_exact(self.width, self.height, FilterType::Triangle)
        };
        Ok(match self.mode {
            ImageMode::Grayscale => Decoded::Gray(image.to_luma32f()),
            ImageMode::Rgb => Decoded::Rgb(image.to_rgb32f()),
        })
    }

    fn resize_into(&self, decoded: Decoded, out: &mut [f32]) {
        let (w, h) = (self.width, self.height);
        let data = match (decoded, self.mode) {
            (Decoded::Gray(img), ImageMode::Grayscale) => fit_size(img, w, h).into_raw(),
            (Decoded::Rgb(img), ImageMode::Rgb) => fit_size(img, w, h).into_raw(),
            (Decoded::Gray(img), ImageMode::Rgb) => fit_size(img, w, h)
                .into_raw()
                .into_iter()
                .flat_map(|v| [v, v, v])
                .collect(),
            (Decoded::Rgb(img), ImageMode::Grayscale) => fit_size(img, w, h)
                .into_raw()
                .chunks_exact(3)
                .map(|p| 0.2126 * p[0] + 0.7152 * p[1] + 0.0722 * p[2])
                .collect(),
        };
        out.copy_from_slice(&data);
    }
}

/// Decoded pixels in [0, 1].
enum Decoded {
    Gray(ImageBuffer<Luma<f32>, Vec<f32>>),
    Rgb(ImageBuffer<Rgb<f32>, Vec<f32>>),
}

fn fit_size<P>(img: ImageBuffer<P, Vec<f32>>, w: u32, h: u32) -> ImageBuffer<P, Vec<f32>>
where
    P: image::Pixel<Subpixel = f32> + 'static,
{
    if img.dimensions() == (w, h) {
        img
    } else {
        resize(&img, w, h, FilterType::Triangle)
    }
}

/// Whether `text` reads as a pixel list (`[0, 12, 255]` or `0 12 255`) rather than base64.
fn looks_like_pixel_text(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with('[') || t.split_whitespace().nth(1).is_some()
}

/// Whether `text` looks like a base64 PNG or JPEG (schema inference).
pub(crate) fn looks_like_encoded_image(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("iVBORw0KGgo") || t.starts_with("/9j/") || t.starts_with("data:image/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, GrayImage, RgbImage};

    fn png(img: DynamicImage) -> String {
        let mut bytes = Vec::new();
        img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn options(width: u32, height: u32, mode: ImageMode) -> ImageOptions {
        ImageOptions {
            width,
            height,
            mode,
            ..ImageOptions::default()
        }
    }

    #[test]
    fn png_is_decoded_resized_and_scaled_to_unit_range() {
        let gray = GrayImage::from_fn(4, 4, |x, _| image::Luma([if x < 2 { 0 } else { 255 }]));
        let encoded = png(DynamicImage::ImageLuma8(gray));
        assert!(looks_like_encoded_image(&encoded));
        let e = ImageEncoder::new(&options(2, 2, ImageMode::Grayscale));
        let mut out = vec![0.0; 4];
        e.encode(ImageInput::Text(&encoded), &mut out).unwrap();
        assert!(out[0] < 0.2 && out[1] > 0.8, "{out:?}");
        assert_eq!(out[0], out[2]);
        let same = out.clone();
        let url = format!("data:image/png;base64,{encoded}");
        e.encode(ImageInput::Text(&url), &mut out).unwrap();
        assert_eq!(out, same);
        let unchanged = ImageEncoder::new(&options(4, 4, ImageMode::Grayscale));
        let mut out = vec![0.0; 16];
        unchanged
            .encode(ImageInput::Text(&encoded), &mut out)
            .unwrap();
        assert_eq!(out[..4], [0.0, 0.0, 1.0, 1.0]);

        let red = RgbImage::from_pixel(3, 3, image::Rgb([255, 0, 0]));
        let encoded = png(DynamicImage::ImageRgb8(red));
        let rgb = ImageEncoder::new(&options(3, 3, ImageMode::Rgb));
        let mut out = vec![0.0; 27];
        rgb.encode(ImageInput::Text(&encoded), &mut out).unwrap();
        assert_eq!(&out[..3], [1.0, 0.0, 0.0]);
    }

    #[test]
    fn pixel_arrays_follow_the_declared_layout() {
        let o = ImageOptions {
            pixels: Some(PixelLayout {
                width: 2,
                height: 1,
                channels: 1,
            }),
            pixel_max: 16.0,
            ..options(2, 1, ImageMode::Grayscale)
        };
        let e = ImageEncoder::new(&o);
        let mut out = vec![0.0; 2];
        let values = [Value::from(0), Value::from(8)];
        e.encode(ImageInput::Array(&values), &mut out).unwrap();
        assert_eq!(out, [0.0, 0.5]);
        e.encode(ImageInput::Text("[16, 32]"), &mut out).unwrap();
        assert_eq!(out, [1.0, 1.0]);
        e.encode(ImageInput::Text("4 0"), &mut out).unwrap();
        assert_eq!(out, [0.25, 0.0]);
        let err = e
            .encode(ImageInput::Array(&values[..1]), &mut out)
            .unwrap_err();
        assert!(err.contains("1 pixel values"), "{err}");
    }

    #[test]
    fn corrupt_and_foreign_data_is_refused_with_a_reason() {
        let e = ImageEncoder::new(&ImageOptions::default());
        let mut out = vec![0.0; e.width()];
        let encoded = png(DynamicImage::ImageLuma8(GrayImage::new(4, 4)));
        let truncated = base64::engine::general_purpose::STANDARD.encode(
            &base64::engine::general_purpose::STANDARD
                .decode(&encoded)
                .unwrap()[..40],
        );
        let reason = e
            .encode(ImageInput::Text(&truncated), &mut out)
            .unwrap_err();
        assert!(reason.starts_with("corrupt image"), "{reason}");
        let reason = e
            .encode(ImageInput::Text("not base64 at all!"), &mut out)
            .unwrap_err();
        assert!(reason.contains("base64"), "{reason}");
        let gif = base64::engine::general_purpose::STANDARD.encode(b"GIF89a.......");
        let reason = e.encode(ImageInput::Text(&gif), &mut out).unwrap_err();
        assert_eq!(reason, "not a PNG or JPEG image");
    }

    #[test]
    fn oversized_images_are_refused() {
        let big = GrayImage::new(MAX_DECODED_SIDE + 1, 1);
        let encoded = png(DynamicImage::ImageLuma8(big));
        let e = ImageEncoder::new(&ImageOptions::default());
        let mut out = vec![0.0; e.width()];
        let reason = e.encode(ImageInput::Text(&encoded), &mut out).unwrap_err();
        assert!(reason.contains("larger than the limit"), "{reason}");
    }

    #[test]
    fn standardization_uses_training_statistics() {
        let o = ImageOptions {
            pixels: Some(PixelLayout {
                width: 2,
                height: 1,
                channels: 1,
            }),
            ..options(2, 1, ImageMode::Grayscale)
        };
        let a = [Value::from(0), Value::from(100)];
        let b = [Value::from(255), Value::from(100)];
        let images = [
            Some(ImageInput::Array(&a)),
            None,
            Some(ImageInput::Array(&b)),
        ];
        let e = ImageEncoder::fit(&o, images.into_iter(), true).unwrap();
        assert_eq!(e.mean[0], 0.5);
        assert_eq!(e.std[0], 0.5);
        assert_eq!(e.std[1], MIN_PIXEL_STD);
        let mut out = vec![0.0; 2];
        e.encode(ImageInput::Array(&b), &mut out).unwrap();
        assert_eq!(out, [1.0, 0.0]);
        let bad = [Some(ImageInput::Text("???"))];
        assert_eq!(
            ImageEncoder::fit(&o, bad.into_iter(), true).unwrap_err().0,
            0
        );
    }

    #[test]
    fn options_are_validated_naming_the_field() {
        let err = options(0, 8, ImageMode::Rgb).validate().unwrap_err();
        assert!(err.contains("pipeline.image.width is 0"), "{err}");
        let err = ImageOptions {
            pixels: Some(PixelLayout {
                width: 8,
                height: 8,
                channels: 2,
            }),
            ..ImageOptions::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("pipeline.image.pixels.channels is 2"), "{err}");
    }
}
