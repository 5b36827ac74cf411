//! An uploaded icon made safe to serve: its type sniffed from its bytes, its size and
//! dimensions checked before anything is decoded, then decoded (which proves it is an
//! image) and redrawn as a square PNG of a set side.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView, ImageFormat, ImageReader, Limits, RgbaImage};
use sha2::{Digest, Sha256};

/// The largest upload, in bytes.
pub const MAX_BYTES: usize = 512 * 1024;
/// The longest side an upload may declare: a larger one is refused before decoding, so a
/// small file that claims a huge canvas (a decompression bomb) costs nothing.
pub const MAX_SIDE: u32 = 4096;
/// The most bytes decoding may allocate.
const MAX_ALLOC: u64 = 128 << 20;

/// The image types taken, told by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// WebP.
    Webp,
}

impl Kind {
    /// The type of `bytes`, from their signature; `None` for anything else.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Kind::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Kind::Jpeg)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Kind::Webp)
        } else {
            None
        }
    }

    fn format(self) -> ImageFormat {
        match self {
            Kind::Png => ImageFormat::Png,
            Kind::Jpeg => ImageFormat::Jpeg,
            Kind::Webp => ImageFormat::WebP,
        }
    }

    /// The media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Kind::Png => "image/png",
            Kind::Jpeg => "image/jpeg",
            Kind::Webp => "image/webp",
        }
    }
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IconError {
    /// Larger than [`MAX_BYTES`].
    #[error("the icon is {size} bytes; at most {max} are taken")]
    TooLarge {
        /// The upload's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not PNG, JPEG or WebP by its first bytes.
    #[error(
        "the body is not a PNG, JPEG or WebP image (told by its first bytes, not its name or Content-Type)"
    )]
    NotAnImage,
    /// Declares a canvas larger than [`MAX_SIDE`] on a side.
    #[error("the image declares {width}x{height} pixels; at most {max}x{max} are taken")]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The limit on either side.
        max: u32,
    },
    /// Has a PNG, JPEG or WebP signature but does not decode.
    #[error("the {kind} image does not decode: {reason}")]
    Undecodable {
        /// The type its signature claims.
        kind: &'static str,
        /// The decoder's word.
        reason: String,
    },
}

/// An icon ready to store.
#[derive(Debug, Clone)]
pub struct Normalized {
    /// The PNG bytes.
    pub png: Vec<u8>,
    /// Their SHA-256, in lowercase hex: the icon's name.
    pub digest: String,
    /// The type the upload was.
    pub source: Kind,
    /// The upload's width and height.
    pub source_size: (u32, u32),
}

/// Checks `bytes` and redraws them as a `side` x `side` PNG: scaled to fit, aspect kept,
/// centred on a transparent square (nothing of the picture is cut off).
pub fn normalize(bytes: &[u8], side: u32) -> Result<Normalized, IconError> {
    if bytes.len() > MAX_BYTES {
        return Err(IconError::TooLarge {
            size: bytes.len(),
            max: MAX_BYTES,
        });
    }
    let kind = Kind::sniff(bytes).ok_or(IconError::NotAnImage)?;
    let undecodable = |e: image::ImageError| IconError::Undecodable {
        kind: kind.media_type(),
        reason: e.to_string(),
    };
    // The header alone first: a declared canvas too large is refused before any pixel.
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), kind.format())
        .into_dimensions()
        .map_err(undecodable)?;
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(IconError::TooManyPixels {
            width,
            height,
            max: MAX_SIDE,
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.format());
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let decoded = reader.decode().map_err(undecodable)?;
    let png = encode_png(&square(&decoded, side.max(1)));
    let digest = hex(&Sha256::digest(&png));
    Ok(Normalized {
        png,
        digest,
        source: kind,
        source_size: (width, height),
    })
}

/// `image` scaled to fit a `side` square, centred on transparency.
fn square(image: &DynamicImage, side: u32) -> RgbaImage {
    let scaled = image.resize(side, side, FilterType::CatmullRom).to_rgba8();
    let mut canvas = RgbaImage::new(side, side);
    let (w, h) = scaled.dimensions();
    image::imageops::overlay(
        &mut canvas,
        &scaled,
        i64::from((side - w) / 2),
        i64::from((side - h) / 2),
    );
    canvas
}

fn encode_png(image: &RgbaImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgba8(image.clone())
        .write_to(&mut out, ImageFormat::Png)
        .expect("encoding a PNG in memory does not fail");
    out.into_inner()
}

/// The width and height of a stored PNG (for tests and checks).
pub fn dimensions(png: &[u8]) -> Option<(u32, u32)> {
    image::load_from_memory_with_format(png, ImageFormat::Png)
        .ok()
        .map(|i| i.dimensions())
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let image = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            width,
            height,
            image::Rgb([200, 30, 30]),
        ));
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn each_type_is_told_by_its_bytes_and_redrawn_as_a_square_png() {
        for (format, kind) in [
            (ImageFormat::Png, Kind::Png),
            (ImageFormat::Jpeg, Kind::Jpeg),
            (ImageFormat::WebP, Kind::Webp),
        ] {
            let icon = normalize(&encoded(300, 120, format), 100).unwrap();
            assert_eq!(icon.source, kind);
            assert_eq!(icon.source_size, (300, 120));
            assert_eq!(Kind::sniff(&icon.png), Some(Kind::Png));
            assert_eq!(dimensions(&icon.png), Some((100, 100)));
            assert_eq!(icon.digest, hex(&Sha256::digest(&icon.png)));
            assert_eq!(icon.digest.len(), 64);
        }
    }

    #[test]
    fn the_same_picture_gets_the_same_digest() {
        let a = normalize(&encoded(64, 64, ImageFormat::Png), 100).unwrap();
        let b = normalize(&encoded(64, 64, ImageFormat::Png), 100).unwrap();
        assert_eq!(a.digest, b.digest);
        let c = normalize(&encoded(64, 65, ImageFormat::Png), 100).unwrap();
        assert_ne!(a.digest, c.digest);
    }

    #[test]
    fn text_is_not_an_image_whatever_its_name() {
        assert_eq!(
            normalize(b"<svg onload=alert(1)>", 100).unwrap_err(),
            IconError::NotAnImage
        );
        assert_eq!(normalize(b"", 100).unwrap_err(), IconError::NotAnImage);
    }

    #[test]
    fn a_truncated_image_does_not_decode() {
        let png = encoded(50, 50, ImageFormat::Png);
        let err = normalize(&png[..png.len() / 2], 100).unwrap_err();
        assert!(
            matches!(
                err,
                IconError::Undecodable {
                    kind: "image/png",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_huge_declared_canvas_is_refused_before_decoding() {
        // A valid PNG header claiming 100000 x 100000 pixels, and nothing behind it.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32fast::hash(&ihdr).to_be_bytes());
        // A first data chunk (the header is read up to it), tiny, and the end.
        for chunk in [&b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01"[..], b"IEND"] {
            png.extend_from_slice(&(chunk.len() as u32 - 4).to_be_bytes());
            png.extend_from_slice(chunk);
            png.extend_from_slice(&crc32fast::hash(chunk).to_be_bytes());
        }
        assert_eq!(
            normalize(&png, 100).unwrap_err(),
            IconError::TooManyPixels {
                width: 100_000,
                height: 100_000,
                max: MAX_SIDE
            }
        );
    }

    #[test]
    fn an_upload_over_the_limit_is_refused_unread() {
        let big = vec![0u8; MAX_BYTES + 1];
        assert_eq!(
            normalize(&big, 100).unwrap_err(),
            IconError::TooLarge {
                size: MAX_BYTES + 1,
                max: MAX_BYTES
            }
        );
    }
}
