"""Realistic "user photos" made from real 28×28 test images, for tests and benchmarks.

A test image is enlarged to a few hundred pixels and rendered the way a phone
would see it: a dark garment or dark ink (the image's bright pixels) on a
light, tinted surface, lit unevenly (a gradient and lens vignetting), with
sensor noise, somewhere off-centre in a larger frame. It is then saved as a
JPEG, a PNG, a cut-out RGBA PNG (transparent background), or a JPEG stored
rotated with an EXIF orientation tag, as phones do.

Everything is drawn from the ``rng`` passed in, so a seed gives the same photos.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

FORMATS = ("jpeg", "png", "rgba", "exif")
EXTENSIONS = {"jpeg": "jpg", "png": "png", "rgba": "png", "exif": "jpg"}

# EXIF orientation → the transpose that stores upright pixels so that
# ImageOps.exif_transpose turns them upright again (the inverse of its own).
STORED_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
ORIENTATION_TAG = 0x0112


def _lighting(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Brightness over the frame: a linear gradient times cos⁴-like vignetting."""
    y, x = np.ogrid[-1:1:height * 1j, -1:1:width * 1j]
    angle = rng.uniform(0, 2 * np.pi)
    gradient = 1 + rng.uniform(0.05, 0.25) * (np.cos(angle) * x + np.sin(angle) * y)
    r2 = (x * x + y * y) / 2  # 1 in the corners
    vignetting = 1 / (1 + rng.uniform(0.1, 0.35) * r2) ** 2
    return (gradient * vignetting).astype(np.float32)


def render(image28: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A photo of ``image28`` as float RGB H×W×3 in [0, 1], and the object's coverage H×W."""
    side = int(rng.integers(200, 401))  # the 28×28 square's size in the photo
    width = int(side * rng.uniform(1.3, 2.2))
    height = int(side * rng.uniform(1.3, 2.2))
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))

    enlarged = Image.fromarray(np.asarray(image28, dtype=np.uint8)).resize(
        (side, side), Image.Resampling.BICUBIC)
    ink = np.zeros((height, width), np.float32)  # 0 = bare surface, 1 = full ink/cloth
    ink[top:top + side, left:left + side] = np.asarray(enlarged, np.float32) / 255

    surface = np.clip(rng.uniform(0.7, 0.95) + rng.normal(0, 0.05, 3), 0.4, 1)  # tinted paper/sheet
    dark = np.clip(rng.uniform(0.03, 0.25) + rng.normal(0, 0.04, 3), 0, 0.4)  # ink or cloth colour
    reflectance = surface.astype(np.float32) + ink[..., None] * (dark - surface).astype(np.float32)
    light = np.float32(rng.uniform(0.85, 1.05)) * _lighting(height, width, rng)[..., None]
    noise = rng.standard_normal((height, width, 3), dtype=np.float32) * np.float32(rng.uniform(0.005, 0.02))
    return np.clip(light * reflectance + noise, 0, 1), ink


def make_photo(image28: np.ndarray, rng: np.random.Generator, fmt: str = "jpeg") -> bytes:
    """Encoded photo of one 28×28 image; ``fmt`` is one of FORMATS."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    rgb, ink = render(image28, rng)
    pixels = np.round(rgb * 255).astype(np.uint8)
    out = io.BytesIO()
    if fmt == "png":
        Image.fromarray(pixels).save(out, "PNG", compress_level=1)  # lossless either way: be quick
    elif fmt == "rgba":
        # A cut-out: the object opaque with soft edges, everything else transparent
        # (and black underneath, as background-removal tools leave it).
        alpha = np.round(np.clip(ink / 0.2, 0, 1) * 255).astype(np.uint8)
        pixels[alpha == 0] = 0
        Image.fromarray(np.dstack([pixels, alpha])).save(out, "PNG", compress_level=1)
    else:
        photo = Image.fromarray(pixels)
        quality = int(rng.integers(70, 96))
        if fmt == "exif":
            orientation = int(rng.choice([3, 6, 8]))  # what phones write
            exif = Image.Exif()
            exif[ORIENTATION_TAG] = orientation
            photo.transpose(STORED_FOR_ORIENTATION[orientation]).save(
                out, "JPEG", quality=quality, exif=exif.tobytes())
        else:
            photo.save(out, "JPEG", quality=quality)
    return out.getvalue()


@dataclass(frozen=True)
class Photo:
    data: bytes
    label: int
    fmt: str
    index: int  # position of the source image in ``images``
    path: Path | None = None


def make_photo_set(images: np.ndarray, labels: np.ndarray, out_dir: str | Path | None = None,
                   seed: int = 0, formats: tuple[str, ...] = FORMATS) -> list[Photo]:
    """Every image in every format; written to ``out_dir`` too when given.

    Each photo has its own generator, seeded by (seed, index, format), so a photo
    does not change when the set grows or the formats are chosen differently.
    """
    folder = Path(out_dir) if out_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    photos = []
    for index, (image, label) in enumerate(zip(images, labels)):
        for fmt in formats:
            rng = np.random.default_rng([seed, index, FORMATS.index(fmt)])
            data = make_photo(image, rng, fmt)
            path = None
            if folder is not None:
                path = folder / f"{index:05d}-{int(label)}-{fmt}.{EXTENSIONS[fmt]}"
                path.write_bytes(data)
            photos.append(Photo(data, int(label), fmt, index, path))
    return photos
