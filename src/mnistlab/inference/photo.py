"""Turning an ordinary photo into a 28×28 input like the training data.

A photo of a garment or of a handwritten digit differs from the training
images in everything a classifier notices: colour, dark-on-light, uneven
light, noise, the object's size and place. ``prepare`` undoes these, then
repeats the conversion each dataset's authors published:

* Fashion-MNIST (Zalando): the product photo is trimmed to the product, its
  longest side resized to 28, centred on the 28×28 canvas and negated.
* MNIST (LeCun et al.): the black-and-white digit is fitted into a 20×20 box
  keeping its aspect ratio (antialiased, hence the grey edges), then placed in
  the 28×28 field so that its centre of mass is at the centre. KMNIST follows
  the MNIST format, from greyscale scans.

The table ``STYLES`` holds these differences as data.

``prepare_photo`` (file or bytes → model input) is what the CLI, the Python API
and the web page call.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageMode, ImageOps
from scipy import ndimage

from ..data.registry import DEFAULT_DATASET
from ..errors import BlankPhotoError, ParameterError, PhotoError, one_line

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 50_000_000
# Decoded, a photo takes 1 to 4 bytes per pixel (by mode) before it is reduced: 128 MB
# admits 32 megapixels of RGB and keeps a worker under 300 MB whatever it is sent.
MAX_DECODING_BYTES = 128 * 1024 * 1024
MAX_ASPECT = 10  # longest side over shortest: beyond, the working copy is too thin to find an object in
WORK_SIDE = 256  # photos are resized to at most this longest side first: 28×28 needs no more
SIZE = 28


@dataclass(frozen=True)
class Style:
    """One dataset's published 28×28 conversion."""

    fit: int  # the object's longest side in the output, in pixels
    centre: str  # "box": centre of the bounding box; "mass": centre of mass
    bilevel: bool  # the sources were black and white: grey comes only from resizing
    resample: Image.Resampling  # the filter that shrinks the object


# Checked on the test sets: MNIST digits' nonzero pixels span exactly 20 px and
# their centre of mass is at (14.0, 14.0) ± 0.29, as a whole-pixel shift gives;
# Fashion-MNIST products span 28 px, centred. NIST's digits were bilevel and
# area-averaged down (MNIST's grey levels are the edges' coverage). Zalando
# subsampled and then sharpened; Lanczos is as sharp without aliasing a photo's noise.
STYLES: dict[str, Style] = {
    "fashion-mnist": Style(fit=28, centre="box", bilevel=False, resample=Image.Resampling.LANCZOS),
    "mnist": Style(fit=20, centre="mass", bilevel=True, resample=Image.Resampling.BOX),
    # KMNIST is "a drop-in replacement for MNIST" in format; its sources are
    # greyscale scans, so the shading is kept.
    "kmnist": Style(fit=20, centre="mass", bilevel=False, resample=Image.Resampling.LANCZOS),
}


@dataclass(frozen=True)
class Prepared:
    """The model input and the steps that led to it (for display)."""

    pixels: np.ndarray  # uint8 28×28, object bright on dark: what the model sees
    gray: np.ndarray  # float32 H×W in [0, 1]: the photo in grayscale, at working size
    background: np.ndarray  # float32 H×W: the estimated (uneven) background of ``gray``
    foreground: np.ndarray  # float32 H×W in [0, 1]: the object after background removal
    box: tuple[int, int, int, int]  # (left, top, right, bottom) of the object in ``gray``
    inverted: bool  # True when the object was darker than its background


# --- loading -----------------------------------------------------------------

def _megabytes(n: int) -> str:
    return f"{n / 2**20:.3g} MB"


def _name(source) -> str:
    """How messages call the photo: its path, or "photo" for bytes."""
    return str(source) if isinstance(source, (str, os.PathLike)) else "photo"


def _read_bytes(source, name: str, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as f:
                data = f.read(max_bytes + 1)  # never read more than the cap
        except OSError as exc:
            raise PhotoError(f"{name}: cannot read file ({exc.strerror or one_line(exc)})") from None
    else:
        raise TypeError(f"expected a path or bytes, got {type(source).__name__}")
    if not data:
        raise PhotoError(f"{name}: empty file")
    if len(data) > max_bytes:
        raise PhotoError(f"{name}: file is larger than the limit of {_megabytes(max_bytes)}")
    return data


def _averaging_modes(image: Image.Image) -> tuple[str, ...]:
    """The modes ``image`` is converted through before its pixels can be averaged: a palette or
    bilevel image becomes gray, 16-bit becomes 32-bit, transparency becomes premultiplied RGBa
    (so that the colour under transparent pixels does not bleed into the object's edge)."""
    if image.mode == "RGBA":
        return ("RGBa",)
    if image.mode in ("LA", "La", "PA") or "transparency" in image.info:
        return ("RGBA", "RGBa")
    if image.mode in ("P", "1"):
        return ("L",)
    if image.mode.startswith("I;16"):
        return ("I",)
    return ()


def _bytes_per_pixel(mode: str) -> int:
    """What Pillow stores per pixel: the band's size for one band, four bytes for any number more."""
    info = ImageMode.getmode(mode)
    return 4 if len(info.bands) > 1 else np.dtype(info.typestr).itemsize


def _decoding_bytes(image: Image.Image) -> int:
    """The memory decoding ``image`` (at its draft size) and converting it for ``_shrink`` takes at most."""
    modes = (image.mode, *_averaging_modes(image))
    return image.width * image.height * sum(_bytes_per_pixel(mode) for mode in modes)


def _shrink(image: Image.Image) -> Image.Image:
    """A large photo reduced by a whole factor in its own mode, both sides kept at least WORK_SIDE
    (as JPEG's draft does), before any float copy is made: the working copy needs no more."""
    factor = min(image.size) // WORK_SIDE
    if factor < 2:
        return image
    for mode in _averaging_modes(image):
        image = image.convert(mode)
    image = image.reduce(factor)
    return image.convert("RGBA") if image.mode == "RGBa" else image


def load_image(source: str | os.PathLike | bytes, max_bytes: int = MAX_BYTES,
               max_pixels: int = MAX_PIXELS, max_decoding_bytes: int = MAX_DECODING_BYTES) -> Image.Image:
    """Decode a photo, upright, as a grayscale float image (mode "F", values in [0, 1]).

    EXIF orientation is applied; transparent areas become background (see
    ``to_grayscale``). A large JPEG is decoded at a reduced scale (1/2, 1/4 or
    1/8, never below WORK_SIDE on either side), as the working copy needs no
    more: a phone photo decodes many times faster; other formats are reduced
    likewise right after decoding. Before decoding, a photo is refused if it
    has more than ``max_pixels``, is more elongated than MAX_ASPECT:1, or would
    take more than ``max_decoding_bytes`` in its mode. Every problem raises
    ``PhotoError`` with a one-line message.
    """
    name = _name(source)
    data = _read_bytes(source, name, max_bytes)
    try:
        with warnings.catch_warnings():
            # Pillow's notes on damaged data ("Corrupt EXIF data") add nothing to decoding or a
            # PhotoError, and would break the one-line promise on stderr; but it only warns between
            # its own pixel limit and twice that: refuse those.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise PhotoError(f"{width}×{height} pixels is more than the "
                                 f"limit of {max_pixels / 1e6:g} megapixels")
            if max(width, height) > MAX_ASPECT * min(width, height):
                raise PhotoError(f"{width}×{height} pixels is more elongated than {MAX_ASPECT}:1, "
                                 "too narrow to show one object")
            image.draft("L", (WORK_SIDE, WORK_SIDE))  # JPEG only; other formats ignore it
            needed = _decoding_bytes(image)
            if needed > max_decoding_bytes:
                raise PhotoError(f"{width}×{height} pixels of mode {image.mode} take "
                                 f"{_megabytes(needed)} to decode, more than the limit of "
                                 f"{_megabytes(max_decoding_bytes)}")
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            return Image.fromarray(to_grayscale(_shrink(image)))
    except PhotoError as exc:  # raised above and by to_grayscale, without the name
        raise PhotoError(f"{name}: {exc}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoError(f"{name}: too many pixels (possible decompression bomb)") from None
    except Image.UnidentifiedImageError:
        raise PhotoError(f"{name}: not an image, or a format Pillow cannot read "
                         "(save it as JPEG or PNG)") from None
    except Exception as exc:  # Pillow's decoders raise many types on damaged files
        raise PhotoError(f"{name}: damaged or truncated image ({one_line(exc)})") from None


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Any Pillow image → float32 H×W luminance in [0, 1].

    Transparent areas are background: white, as behind a product photo or a
    page, unless nearly all the opaque content is light (chalk-like strokes),
    which would vanish on white: then black.
    """
    if image.mode in ("P", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa", "LA", "La", "PA"):
        image = image.convert("RGBA")
        luma = np.asarray(image.convert("L"), dtype=np.float32) / 255  # ignores alpha
        if image.getchannel("A").getextrema()[0] == 255:
            return luma
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255
        opaque = alpha > 0.5
        content_is_light = opaque.any() and np.percentile(luma[opaque], 10) > 0.5
        fill = np.float32(0.0 if content_is_light else 1.0)
        return alpha * luma + (1 - alpha) * fill
    if image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) / 65535
    if image.mode in ("I", "F"):
        # No declared range: assume 16-bit, 8-bit or [0, 1] from the values.
        values = np.asarray(image, dtype=np.float32)
        if not np.isfinite(values).all():  # a float TIFF can hold them; no scale or threshold survives one
            raise PhotoError("pixel values are not finite (NaN or infinity)")
        peak = values.max(initial=0)
        return values / (65535 if peak > 255 else 255 if peak > 1 else 1)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


# --- preparing -----------------------------------------------------------------

def _working_copy(image: Image.Image | np.ndarray) -> np.ndarray:
    """Grayscale float32 in [0, 1], longest side between WORK_SIDE / 2 and WORK_SIDE.

    Large photos are reduced (antialiased); small ones are enlarged (bicubic),
    so that edges fall between pixels when the object is cut out and resized.
    """
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)  # uint8/uint16/float, gray or RGB(A): Pillow knows the mode
    gray = Image.fromarray(to_grayscale(image))
    longest = max(gray.size)
    scale = WORK_SIDE / longest if longest > WORK_SIDE else max(1.0, WORK_SIDE / 2 / longest)
    if scale != 1:
        size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
        gray = gray.resize(size, Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC)
    return np.clip(np.asarray(gray, dtype=np.float32), 0, 1)


def _powers(n: int, degree: int) -> np.ndarray:
    """t⁰ … t^degree for n coordinates spread over [-1, 1]: shape n × (degree + 1)."""
    return np.linspace(-1, 1, n)[:, None] ** np.arange(degree + 1)


def _mad_sigma(residual: np.ndarray) -> float:
    """Noise level from the median absolute deviation, floored at a quantisation
    step so that a synthetic, noiseless image still gets a usable threshold."""
    return max(1.4826 * float(np.median(np.abs(residual))), 0.5 / 255)


def _fit_background(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Smooth background estimate, background mask and noise level of ``gray``.

    The background is a low-order polynomial surface: a gradient, vignetting and
    a tint all vary slowly. It is fitted robustly to the image border first,
    then to every pixel that agrees with that fit, so that the object, whatever
    its size or polarity, does not pull it; quartic terms follow vignetting's
    steep corners.
    """
    h, w = gray.shape
    ypow, xpow = _powers(h, 4), _powers(w, 4)
    terms = [(i, j) for i in range(5) for j in range(5 - i)]  # xⁱyʲ, i + j ≤ 4; (0, 0) first
    order = np.array([i + j for i, j in terms])
    step = max(1, max(h, w) // 64)  # ~64² samples are plenty for 15 coefficients
    basis = np.stack([np.outer(ypow[::step, j], xpow[::step, i]).ravel() for i, j in terms], axis=1)
    values = gray[::step, ::step].ravel().astype(np.float64)
    band = max(step, round(0.05 * min(h, w)))  # at least one sampled row and column on every side
    border = np.ones((h, w), bool)
    border[band:h - band, band:w - band] = False
    border = border[::step, ::step].ravel()

    # The border's median, then quadratic fits to the border, each dropping the
    # pixels far from the last (an object touching the edge); then quartic fits
    # to the whole image.
    start = np.median(values[border])
    mask = border & (np.abs(values - start) < 3 * _mad_sigma(values[border] - start))
    for region, degree in [(border, 2)] * 2 + [(True, 4)] * 2:
        used = order <= degree
        fit = basis[mask][:, used]
        coef = np.zeros(len(terms))
        # Normal equations: few, well-scaled terms, so as accurate as lstsq and far cheaper —
        # unless the pixels kept lie on too few rows or columns (a thin strip) to fix every term.
        try:
            coef[used] = np.linalg.solve(fit.T @ fit, fit.T @ values[mask])
        except np.linalg.LinAlgError:
            coef[used] = np.linalg.lstsq(fit, values[mask], rcond=None)[0]
        residual = values - basis @ coef
        sigma = _mad_sigma(residual[mask])
        mask = region & (np.abs(residual) < 3 * sigma)
        if mask.sum() < 4 * len(terms):  # too little left to refit: keep this fit
            break
    # Σ c·xⁱyʲ on the full grid as one matrix product: ypow · C · xpowᵀ.
    grid = np.zeros((5, 5))
    for (i, j), c in zip(terms, coef):
        grid[j, i] = c
    background = (ypow @ grid @ xpow.T).astype(np.float32)
    return background, np.abs(gray - background) < 3 * sigma, sigma


def _object_box(foreground: np.ndarray, threshold: float = 0.1) -> tuple[int, int, int, int] | None:
    """Bounding box (left, top, right, bottom) of the object, ignoring specks.

    Pixels above ``threshold`` (relative to the object's bright end), grouped into
    connected parts; parts smaller than 5 % of the largest are noise or dust.
    """
    smooth = ndimage.gaussian_filter(foreground, 1.0)
    labels, count = ndimage.label(smooth > threshold, structure=np.ones((3, 3)))
    if count == 0:
        return None
    areas = np.bincount(labels.ravel())[1:]
    keep = np.isin(labels, 1 + np.flatnonzero(areas >= 0.05 * areas.max()))
    rows, cols = np.flatnonzero(keep.any(1)), np.flatnonzero(keep.any(0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _centre_box(source: np.ndarray, box: tuple[int, int, int, int], style: Style) -> np.ndarray:
    """Zalando's placement: the box's longest side becomes ``style.fit`` pixels and
    its centre the field's centre, to a fraction of a pixel (float32 28×28).

    One antialiased resize maps a square source window, centred on the box, onto
    the whole field, so nothing near the box's edges is cut off.
    """
    left, top, right, bottom = box
    scale = style.fit / max(right - left, bottom - top)  # output pixels per source pixel
    window = SIZE / scale
    x0 = (left + right) / 2 - window / 2
    y0 = (top + bottom) / 2 - window / 2
    # Copy out the window plus the filter's reach (3 output pixels for Lanczos),
    # with background (0) where it runs past the photo.
    margin = int(np.ceil(3 / scale)) + 1
    left0, top0 = int(np.floor(x0)) - margin, int(np.floor(y0)) - margin
    size = int(np.ceil(window)) + 2 * margin + 1
    patch = np.zeros((size, size), np.float32)
    h, w = source.shape
    rows = slice(max(top0, 0), min(top0 + size, h))
    cols = slice(max(left0, 0), min(left0 + size, w))
    patch[rows.start - top0:rows.stop - top0, cols.start - left0:cols.stop - left0] = source[rows, cols]
    x0, y0 = x0 - left0, y0 - top0
    field = Image.fromarray(patch).resize((SIZE, SIZE), style.resample,
                                          box=(x0, y0, x0 + window, y0 + window))
    return np.asarray(field, dtype=np.float32).clip(0, None)


def _centre_mass(source: np.ndarray, box: tuple[int, int, int, int], style: Style) -> np.ndarray:
    """LeCun's placement: the box is resized so that its longest side is
    ``style.fit`` pixels, then shifted by whole pixels to put its centre of mass
    on pixel 14 of the field (float32 28×28).
    """
    left, top, right, bottom = box
    scale = style.fit / max(right - left, bottom - top)
    size = (max(1, round((right - left) * scale)), max(1, round((bottom - top) * scale)))
    small = np.asarray(Image.fromarray(source).resize(size, style.resample, box=box),
                       dtype=np.float32).clip(0, None)
    h, w = small.shape
    cy, cx = ndimage.center_of_mass(small) if small.any() else ((h - 1) / 2, (w - 1) / 2)
    # Keep the whole object in view even when its mass is far off its middle.
    dy = min(max(round(SIZE // 2 - cy), 0), SIZE - h)
    dx = min(max(round(SIZE // 2 - cx), 0), SIZE - w)
    field = np.zeros((SIZE, SIZE), np.float32)
    field[dy:dy + h, dx:dx + w] = small
    return field


_PLACE = {"box": _centre_box, "mass": _centre_mass}


def prepare(image: Image.Image | np.ndarray, style: str = DEFAULT_DATASET,
            invert: bool | None = None,
            contrast_percentiles: tuple[float, float] = (99.0, 100.0)) -> Prepared:
    """Turn a photo into a 28×28 uint8 image like ``style``'s training data.

    ``image``: any Pillow image (e.g. from ``load_image``) or a 2-D array.
    ``style``: a key of ``STYLES`` (the dataset name).
    ``invert``: whether the object is darker than its background; None detects
    it by comparing the object's pixels with the background fitted from the border.
    ``contrast_percentiles``: (low, high). The low percentile of the background's
    residual becomes black (noise and leftover shading vanish); the high
    percentile of the object's pixels in the 28×28 result becomes white (by
    default the brightest, as in 90 % of MNIST and Fashion-MNIST images).
    """
    try:
        spec = STYLES[style]
    except KeyError:
        raise ParameterError("style", f"unknown style {style!r}; choose one of: {', '.join(STYLES)}") from None
    low, high = contrast_percentiles

    gray = _working_copy(image)
    background, is_background, sigma = _fit_background(gray)
    residual = gray - background
    deviation = np.abs(residual)
    strong = deviation > 4 * sigma
    if strong.mean() < 0.001:  # noise alone puts ~0.006 % of pixels beyond 4σ
        raise BlankPhotoError("no object found: the photo is blank or has no contrast")
    if invert is None:
        # The object is what departs most from the background; leftover shading
        # departs a little over large areas, so only the strongest half counts.
        core = deviation >= 0.5 * np.percentile(deviation[strong], 99)
        invert = bool(np.median(residual[core]) < 0)

    # Dark on light is ink or cloth on a lit surface: dividing by the surface's
    # brightness undoes uneven light (flat-field correction). Light on dark has
    # no such reference, so there the background is only subtracted.
    if invert:
        signal = -residual / np.maximum(background, 1e-3)
    else:
        signal = residual
    black = np.percentile(signal[is_background], low) if is_background.any() else 0.0
    signal = np.clip(signal - black, 0, None)
    # The object's bright end, for the thresholds below; a few hot pixels don't move it.
    bright = np.percentile(signal[signal > 0], 99.5) if (signal > 0).any() else 0.0
    if bright <= 0:
        raise BlankPhotoError("no object found: nothing stands out from the background")
    foreground = np.minimum(signal / bright, 1).astype(np.float32)

    # A bilevel style cuts the object at half its brightness, where a blurred
    # edge really is; the others keep the shading and trim only the faint rim.
    if spec.bilevel:
        source, threshold = (foreground >= 0.5).astype(np.float32), 0.5
    else:
        source, threshold = foreground, 0.1
    box = _object_box(source, threshold)
    if box is None:
        raise BlankPhotoError("no object found: nothing stands out from the background")
    field = _PLACE[spec.centre](source, box, spec)
    lit = field > 0.02 * field.max()
    white = np.percentile(field[lit], high) if lit.any() else 1.0
    pixels = np.round(np.clip(field / max(white, 1e-6), 0, 1) * 255).astype(np.uint8)
    return Prepared(pixels=pixels, gray=gray, background=background, foreground=foreground,
                    box=box, inverted=invert)


def prepare_photo(source: str | os.PathLike | bytes, dataset_name: str,
                  max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
                  **overrides) -> Prepared:
    """File or bytes → model input for ``dataset_name``; ``overrides`` go to ``prepare``."""
    image = load_image(source, max_bytes=max_bytes, max_pixels=max_pixels)
    try:
        return prepare(image, style=dataset_name, **overrides)
    except PhotoError as exc:
        raise type(exc)(f"{_name(source)}: {exc}") from None
