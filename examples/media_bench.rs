//! Measures image processing (`media::process::process`, what one image job does besides
//! storing): a 12-megapixel photo, a 1080p screenshot, an animated GIF, and the header-only
//! check that refuses a decompression bomb; with the peak resident memory of each.
//!
//!     cargo run --release --example media_bench
//!
//! The images are made here (noise, so the encoders do real work) and written to a temporary
//! directory; each is processed three times and the median is printed.

use std::time::Instant;

use agora::domain::media::SourceFormat;
use agora::media::process::{Settings, declared_size, process};
use image::{ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage};

#[path = "support/memory.rs"]
mod memory;
#[path = "support/png.rs"]
mod png;
use memory::rss_mib;

fn noise(width: u32, height: u32) -> RgbImage {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let grain = (state & 0x1F) as u8;
        Rgb([((x * 255 / width) as u8).saturating_add(grain), ((y * 255 / height) as u8).saturating_add(grain), 120])
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let settings = Settings {
        max_pixels: 40_000_000,
        max_dimension: 10_000,
        quality: 80,
        max_animation_frames: 300,
        max_animation_bytes: 256 << 20,
    };
    let photo = dir.path().join("photo.jpg");
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(&noise(4000, 3000))?;
    std::fs::write(&photo, &bytes)?;
    let screenshot = dir.path().join("screen.png");
    let mut bytes = Vec::new();
    let rgba = image::DynamicImage::ImageRgb8(noise(1920, 1080)).to_rgba8();
    image::codecs::png::PngEncoder::new(&mut bytes).write_image(
        rgba.as_raw(),
        1920,
        1080,
        image::ExtendedColorType::Rgba8,
    )?;
    std::fs::write(&screenshot, &bytes)?;
    let gif = dir.path().join("anim.gif");
    let mut bytes = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new_with_speed(&mut bytes, 30);
        for n in 0..40u32 {
            let frame = RgbaImage::from_fn(480, 270, |x, y| {
                if (x + n * 12) % 48 < 24 { Rgba([250, (y % 256) as u8, 40, 255]) } else { Rgba([20, 60, 200, 255]) }
            });
            encoder.encode_frame(image::Frame::from_parts(frame, 0, 0, image::Delay::from_numer_denom_ms(80, 1)))?;
        }
    }
    std::fs::write(&gif, &bytes)?;

    println!("{:<40} {:>10} {:>12} {:>14} {:>10}", "input", "in (KiB)", "median (ms)", "stored (KiB)", "RSS (MiB)");
    for (name, path, format) in [
        ("JPEG 4000×3000 (12 MP)", &photo, SourceFormat::Jpeg),
        ("PNG 1920×1080 with alpha", &screenshot, SourceFormat::Png),
        ("GIF 480×270, 40 frames", &gif, SourceFormat::Gif),
    ] {
        let input = std::fs::metadata(path).map(|m| m.len() / 1024).unwrap_or(0);
        let mut times = Vec::new();
        let mut stored = 0;
        for _ in 0..3 {
            let started = Instant::now();
            let processed = process(path, format, &settings)?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            stored = (processed.image.len() + processed.thumbnails.iter().map(|(_, t)| t.len()).sum::<usize>()) / 1024;
        }
        times.sort_by(f64::total_cmp);
        println!("{name:<40} {input:>10} {:>12.0} {stored:>14} {:>10.0}", times[1], rss_mib());
    }
    // A PNG header declaring 100,000 × 100,000 pixels: refused from the header alone.
    let bomb = dir.path().join("bomb.png");
    std::fs::write(&bomb, png::png_declaring(100_000, 100_000))?;
    let started = Instant::now();
    let size = declared_size(&bomb, SourceFormat::Png)?;
    let refused = process(&bomb, SourceFormat::Png, &settings).is_err();
    println!(
        "bomb {}×{}: refused {refused} in {:.2} ms, RSS {:.0} MiB",
        size.0,
        size.1,
        started.elapsed().as_secs_f64() * 1000.0,
        rss_mib()
    );
    Ok(())
}
