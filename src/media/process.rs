//! Turning an uploaded file into what Agora stores: decoded under limits, turned upright
//! (EXIF orientation), re-encoded as lossy WebP from the pixels alone, so no EXIF, XMP, ICC
//! profile or comment of the upload survives, plus thumbnails that keep the aspect ratio
//! and are never wider than the image. CPU-bound and blocking: callers run it off the async
//! runtime.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::domain::media::{SizeRefusal, SourceFormat, check_declared_size, scaled_height, thumbnail_widths};

/// The limits and quality processing works with (from `[media]`).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Most pixels an image may declare.
    pub max_pixels: u64,
    /// Longest side an image may declare.
    pub max_dimension: u32,
    /// Lossy WebP quality, 1–100.
    pub quality: u8,
    /// Most frames an animation keeps.
    pub max_animation_frames: u32,
    /// Most decoded bytes an animation may take.
    pub max_animation_bytes: u64,
}

impl Settings {
    fn decoder_limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.max_image_width = Some(self.max_dimension);
        limits.max_image_height = Some(self.max_dimension);
        // The decoded image (4 bytes a pixel at most for 8-bit) and the decoder's working
        // memory; a 16-bit PNG takes twice that and is refused.
        limits.max_alloc = Some(self.max_pixels.saturating_mul(4).saturating_add(64 << 20));
        limits
    }
}

/// Why a file could not be processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// Its declared size is over the limits (checked before decoding).
    #[error("{0}")]
    TooLarge(SizeRefusal),
    /// It does not decode (truncated, damaged, or not what its magic bytes say).
    #[error("the image could not be read: {0}")]
    Decode(String),
    /// An animation over the frame or memory limit.
    #[error("{0}")]
    Animation(String),
    /// The encoder failed.
    #[error("the image could not be encoded: {0}")]
    Encode(String),
    /// The uploaded file could not be opened.
    #[error("the uploaded file could not be read: {0}")]
    Io(String),
}

/// What processing made of an upload.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The full-size WebP (animated when the upload was).
    pub image: Vec<u8>,
    /// Width after orientation.
    pub width: u32,
    /// Height after orientation.
    pub height: u32,
    /// Whether `image` is an animation.
    pub animated: bool,
    /// `(width, WebP)` for each thumbnail narrower than the image (from the first frame).
    pub thumbnails: Vec<(u32, Vec<u8>)>,
}

fn image_format(format: SourceFormat) -> ImageFormat {
    match format {
        SourceFormat::Png => ImageFormat::Png,
        SourceFormat::Jpeg => ImageFormat::Jpeg,
        SourceFormat::Gif => ImageFormat::Gif,
        SourceFormat::Webp => ImageFormat::WebP,
    }
}

fn open(path: &Path) -> Result<BufReader<File>, ProcessError> {
    File::open(path).map(BufReader::new).map_err(|err| ProcessError::Io(err.to_string()))
}

fn decode_error(err: image::ImageError) -> ProcessError {
    match err {
        image::ImageError::Limits(limit) => ProcessError::Decode(format!("over the decoding limits ({limit})")),
        other => ProcessError::Decode(other.to_string()),
    }
}

/// The width and height a file declares, read from its header alone.
pub fn declared_size(path: &Path, format: SourceFormat) -> Result<(u32, u32), ProcessError> {
    ImageReader::with_format(open(path)?, image_format(format)).into_dimensions().map_err(decode_error)
}

/// Processes the upload at `path`, whose content sniffed as `format`.
pub fn process(path: &Path, format: SourceFormat, settings: &Settings) -> Result<Processed, ProcessError> {
    let (width, height) = declared_size(path, format)?;
    check_declared_size(width, height, settings.max_pixels, settings.max_dimension).map_err(ProcessError::TooLarge)?;
    let frames = match format {
        SourceFormat::Gif => Some(animation_frames(path, format, width, height, settings)?),
        SourceFormat::Webp if webp_is_animated(path)? => Some(animation_frames(path, format, width, height, settings)?),
        SourceFormat::Png | SourceFormat::Jpeg | SourceFormat::Webp => None,
    };
    let (still, image, animated) = match frames {
        Some(frames) if frames.len() > 1 => {
            let first = DynamicImage::ImageRgba8(frames[0].0.clone());
            (first, encode_animation(&frames, width, height, settings.quality)?, true)
        }
        Some(mut frames) => {
            let only = frames.pop().map(|(buffer, _)| DynamicImage::ImageRgba8(buffer));
            let still = only.ok_or_else(|| ProcessError::Decode("the file holds no frame".into()))?;
            let encoded = encode_still(&still, settings.quality)?;
            (still, encoded, false)
        }
        None => {
            let still = decode_upright(path, format, settings)?;
            let encoded = encode_still(&still, settings.quality)?;
            (still, encoded, false)
        }
    };
    let thumbnails = thumbnail_widths(still.width())
        .into_iter()
        .map(|target| {
            let resized = still.resize_exact(
                target,
                scaled_height(still.width(), still.height(), target),
                image::imageops::FilterType::CatmullRom,
            );
            encode_still(&resized, settings.quality).map(|bytes| (target, bytes))
        })
        .collect::<Result<_, _>>()?;
    Ok(Processed { width: still.width(), height: still.height(), image, animated, thumbnails })
}

/// Decodes a still image under the limits and turns it upright.
fn decode_upright(path: &Path, format: SourceFormat, settings: &Settings) -> Result<DynamicImage, ProcessError> {
    let mut reader = ImageReader::with_format(open(path)?, image_format(format));
    reader.limits(settings.decoder_limits());
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let orientation = decoder.orientation().map_err(decode_error)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn webp_is_animated(path: &Path) -> Result<bool, ProcessError> {
    let decoder = image::codecs::webp::WebPDecoder::new(open(path)?).map_err(decode_error)?;
    Ok(decoder.has_animation())
}

/// The frames of a GIF or animated WebP with their delays in milliseconds, within the frame
/// and memory caps (counted as they decode, so an over-long animation stops early).
fn animation_frames(
    path: &Path,
    format: SourceFormat,
    width: u32,
    height: u32,
    settings: &Settings,
) -> Result<Vec<(image::RgbaImage, u32)>, ProcessError> {
    let frame_bytes = u64::from(width) * u64::from(height) * 4;
    let frames = match format {
        SourceFormat::Gif => {
            let mut decoder = image::codecs::gif::GifDecoder::new(open(path)?).map_err(decode_error)?;
            decoder.set_limits(settings.decoder_limits()).map_err(decode_error)?;
            decoder.into_frames()
        }
        _ => {
            let mut decoder = image::codecs::webp::WebPDecoder::new(open(path)?).map_err(decode_error)?;
            decoder.set_limits(settings.decoder_limits()).map_err(decode_error)?;
            decoder.into_frames()
        }
    };
    let mut kept = Vec::new();
    for frame in frames {
        let frame = frame.map_err(decode_error)?;
        let count = kept.len() as u64 + 1;
        if count > u64::from(settings.max_animation_frames) {
            return Err(ProcessError::Animation(format!(
                "the animation has more than {} frames, the most Agora keeps",
                settings.max_animation_frames
            )));
        }
        if count * frame_bytes > settings.max_animation_bytes {
            return Err(ProcessError::Animation(format!(
                "the animation is too big: {count} frames of {width}×{height} take more than {} MiB decoded",
                settings.max_animation_bytes >> 20
            )));
        }
        if (frame.buffer().width(), frame.buffer().height()) != (width, height) {
            return Err(ProcessError::Decode("an animation frame does not cover the canvas".into()));
        }
        let (numerator, denominator) = frame.delay().numer_denom_ms();
        let delay = numerator.checked_div(denominator).map_or(100, |ms| ms.max(20));
        kept.push((frame.into_buffer(), delay));
    }
    Ok(kept)
}

fn webp_config(quality: u8) -> Result<webp::WebPConfig, ProcessError> {
    let mut config =
        webp::WebPConfig::new().map_err(|()| ProcessError::Encode("libwebp refused its configuration".into()))?;
    config.lossless = 0;
    config.alpha_compression = 1;
    config.quality = f32::from(quality);
    Ok(config)
}

/// Lossy WebP of `image`: RGB when it has no alpha channel, else RGBA.
fn encode_still(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, ProcessError> {
    let config = webp_config(quality)?;
    let encoded = if image.color().has_alpha() {
        let rgba = image.to_rgba8();
        webp::Encoder::from_rgba(rgba.as_raw(), rgba.width(), rgba.height()).encode_advanced(&config)
    } else {
        let rgb = image.to_rgb8();
        webp::Encoder::from_rgb(rgb.as_raw(), rgb.width(), rgb.height()).encode_advanced(&config)
    };
    encoded.map(|memory| memory.to_vec()).map_err(|err| ProcessError::Encode(format!("{err:?}")))
}

fn encode_animation(
    frames: &[(image::RgbaImage, u32)],
    width: u32,
    height: u32,
    quality: u8,
) -> Result<Vec<u8>, ProcessError> {
    let config = webp_config(quality)?;
    let mut encoder = webp::AnimEncoder::new(width, height, &config);
    encoder.set_loop_count(0);
    let mut at: i32 = 0;
    for (buffer, delay) in frames {
        encoder.add_frame(webp::AnimFrame::from_rgba(buffer.as_raw(), width, height, at));
        at = at.saturating_add(i32::try_from(*delay).unwrap_or(i32::MAX));
    }
    encoder.try_encode().map(|memory| memory.to_vec()).map_err(|err| ProcessError::Encode(format!("{err:?}")))
}
