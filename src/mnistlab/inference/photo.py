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

Photos taken by hand add what the training images never had; ``prepare`` handles it before
the crop: a shadow's or the paper's edge across the frame is part of the background model
(``_fit_background``); stray strokes, the paper's edge and specks are told apart from the object
by their shape, thickness and distance (``_select_object``) and reported (``Prepared.dropped``,
``Prepared.notes``); the tilt of an upright style's object is undone (``_tilt``). Handwriting's
tilt is left alone: it cannot be told from the writer's slant, and undoing it was measured to
cost MNIST accuracy (benchmarks/bench_photo.py). Perspective and JPEG artefacts need no step.

``prepare_photo`` (file or bytes → model input) is what the CLI, the Python API
and the web page call.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real

import numpy as np
from PIL import Image, ImageMode, ImageOps
from scipy import ndimage

from .._io import read_at_most
from ..data.registry import DEFAULT_DATASET, IMAGE_SIDE
from ..errors import BlankPhotoError, ParameterError, PhotoError, one_line, printable
from ..models.params import Interval, StrOptions, allowed, allows, check

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 50_000_000
# Decoded, a photo takes 1 to 4 bytes per pixel (by mode) before it is reduced, a progressive JPEG 3 to 6
# more for its coefficients: 192 MB admits 24 megapixels of progressive JPEG in full colour (4:4:4, as
# image editors save at high quality) and keeps a worker (~85 MB) under 300 MB whatever it is sent.
MAX_DECODING_BYTES = 192 * 1024 * 1024
# The formats photos come in. Not every format Pillow knows: some decode whole while being opened,
# before any size is checked (ICO, ICNS), and some run other programs (EPS: Ghostscript).
FORMATS = ("JPEG", "PNG", "WEBP", "AVIF", "GIF", "BMP", "TIFF", "PPM", "JPEG2000")
FORMAT_NAMES = "JPEG, PNG, WebP, AVIF, GIF, BMP, TIFF, PPM or JPEG 2000"
JPEG_FORMATS = ("JPEG", "MPO")  # MPO: a phone's JPEG with a second picture after it (opened as JPEG)
# Formats that give back every pixel as it was saved (not TIFF or WebP, which may hold lossy data)
LOSSLESS_FORMATS = ("PNG", "GIF", "BMP", "PPM")
# Memory a decoder keeps besides the pixels it gives, per pixel of the whole image: AVIF's YUV
# frames, OpenJPEG's 32-bit plane per component, Pillow's WebP decoder's two RGBA canvases and a copy
# (measured: 9.8, 20 and 16.2-16.5 bytes a pixel in all, with the RGB pixels' 4; WebP's allows a
# 12-megapixel phone photo). A progressive JPEG keeps every DCT coefficient instead (``_coefficients``).
DECODER_BYTES_PER_PIXEL = {"AVIF": 6, "JPEG2000": 16, "WEBP": 12}
# Each scan of a progressive JPEG is a pass over all its coefficients, however small the draft, and
# nothing else bounds how many a file has (one of 2,000 repeated scans, 2.9 MB, took 61 s to decode).
# Photos have about 10 (libjpeg's progression); this admits 27 over 50 megapixels in colour at full
# resolution, and takes about a second.
MAX_SCAN_COEFFICIENTS = 4_000_000_000
# Pillow decodes a BMP compressed by runs (RLE8, RLE4) in Python, ~0.55 µs a pixel at worst (runs of one
# pixel): a 20 MB upload of them would hold a worker ~5 s. This admits what such a file holds in ~1 s;
# cameras and phones never write them.
MAX_RLE_PIXELS = 2_000_000
BMP_RLE = (1, 2)  # the BMP header's compression field: BI_RLE8, BI_RLE4
MAX_ASPECT = 10  # longest side over shortest: beyond, the working copy is too thin to find an object in
WORK_SIDE = 256  # photos are resized to at most this longest side first: 28×28 needs no more
MAX_TILT = 15  # degrees: a photo tilted more is taken as it is (the object may lie that way)
# Degrees: a smaller tilt is left alone. Fashion-MNIST's own products are not all exactly upright
# (on clean photos of its test images the estimate is 3° or more in 10 %, 4° or more in 6 %), so
# undoing small tilts costs more than it wins.
MIN_TILT = 4
# An object's darkest (or, light on dark, brightest) part differs from the background by at least this
# (relative to the paper's brightness, dark on light; absolute, light on dark): ink and cloth by
# 65 % or more, pencil by 30 %; what a shadow leaves after the background's fit, mostly by 10 % or less.
MIN_CONTRAST = 0.15
# A light border is paper or a lit surface: its background is fitted to log(gray), where a shadow's,
# a gradient's or the table's factor becomes a sum. A dark one (a light object on a dark ground) is
# fitted as it is: near black, noise and resampling's ringing would dominate a logarithm.
LIGHT_BORDER = 0.25
RIM = (0.05, 0.5)  # a cut-out's soft rim: alpha in this range (fainter, its colour is too coarse to read)
MIN_RIM = 50  # pixels: fewer, a cut-out has a hard edge and no rim to read
# The background is first fitted to the border, a band this wide (a fraction of the short side) on
# every side, which the object rarely fills; on paper, shadow and paper edges are looked for in a
# wider band, the frame: in the border alone too little of a shadow's edge showed to place it. On
# the harder photos of 500 Fashion-MNIST test images, the pixels taken for the object were more
# than a fifth off (IoU with the true ones under 0.8) in 3.8 % of them; with the frame and the grid
# searched again (``_find_step``), in 1.8 %.
BORDER, FRAME = 0.05, 0.1
MAX_STEPS = 2  # shadow or paper edges fitted across the background: a shadow and the paper's edge
MIN_STEP_GAIN = 0.25  # a second one must remove this fraction of the error left
# The first one must remove this fraction; where not even the best line of the coarse grid does, the
# frame has no shadow or paper edge and the search stops there. On 200 clean and 200 hard photos of
# Fashion-MNIST test images, 345 model inputs came out identical to a search that always refined the
# first line, 49 within two grey levels, 6 further off (up to 66 of 255, all hard photos), the logistic
# regression's accuracy on each set unchanged; the conversion took 18 % less time.
NO_STEP_GAIN = 0.1
FRAME_OUTLIERS = 0.01  # at most this fraction of the frame's samples off the first fit: nothing touches the frame


@dataclass(frozen=True)
class Style:
    """One dataset's published 28×28 conversion."""

    fit: int  # the object's longest side in the output, in pixels
    centre: str  # "box": centre of the bounding box; "mass": centre of mass
    bilevel: bool  # the sources were black and white: grey comes only from resizing
    resample: Image.Resampling  # the filter that shrinks the object
    upright: bool  # the objects were photographed upright: a photo's tilt is undone


# Checked on the test sets: MNIST digits' nonzero pixels span exactly 20 px and
# their centre of mass is at (14.0, 14.0) ± 0.29, as a whole-pixel shift gives;
# Fashion-MNIST products span 28 px, centred. NIST's digits were bilevel and
# area-averaged down (MNIST's grey levels are the edges' coverage). Zalando
# subsampled and then sharpened; Lanczos is as sharp without aliasing a photo's noise.
STYLES: dict[str, Style] = {
    "fashion-mnist": Style(fit=28, centre="box", bilevel=False, resample=Image.Resampling.LANCZOS,
                           upright=True),
    "mnist": Style(fit=20, centre="mass", bilevel=True, resample=Image.Resampling.BOX, upright=False),
    # KMNIST is "a drop-in replacement for MNIST" in format; its sources are
    # greyscale scans, so the shading is kept.
    "kmnist": Style(fit=20, centre="mass", bilevel=False, resample=Image.Resampling.LANCZOS, upright=False),
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
    tilt: float  # degrees the object was turned from upright (counter-clockwise) and turned back; 0: not turned
    object_mask: np.ndarray  # bool H×W: the pixels taken for the object
    dropped: tuple[Mark, ...]  # what stood out but is not the object (specks are not listed)
    dropped_mask: np.ndarray  # bool H×W: the pixels of ``dropped``

    def found(self) -> np.ndarray:
        """The photo (dimmed) with the object found in green, what was dropped in red and the
        object's box: uint8 RGB H×W×3, for showing why a photo became what the model saw."""
        rgb = np.repeat((0.35 * self.gray)[..., None], 3, axis=2)
        rgb[self.object_mask] = 0.25 * rgb[self.object_mask] + 0.75 * np.array(FOUND)
        rgb[self.dropped_mask] = DROPPED
        left, top, right, bottom = self.box
        rgb[top:bottom, [left, right - 1]] = rgb[[top, bottom - 1], left:right] = FOUND
        return np.round(rgb * 255).astype(np.uint8)

    def notes(self) -> list[str]:
        """One line per thing the conversion did beyond the usual: a mark it dropped, a tilt it undid."""
        h, w = self.gray.shape
        lines = [f"dropped a {mark.reason} ({_where(mark.box, w, h)})" for mark in self.dropped]
        if self.tilt:
            lines.append(f"turned the object {abs(self.tilt):.0f}° {'clockwise' if self.tilt > 0 else 'anticlockwise'}"
                         " to stand upright")
        return lines


FOUND, DROPPED = (0.3, 0.85, 0.3), (0.9, 0.2, 0.2)  # the colours of ``Prepared.found``


def _where(box: tuple[int, int, int, int], width: int, height: int) -> str:
    """Where a box lies in the frame, in words: "top left", "right", "centre"."""
    x = ((box[0] + box[2]) / 2) / width
    y = ((box[1] + box[3]) / 2) / height
    row = "top" if y < 1 / 3 else "bottom" if y > 2 / 3 else ""
    col = "left" if x < 1 / 3 else "right" if x > 2 / 3 else ""
    return " ".join(part for part in (row, col) if part) or "centre"


# --- loading -----------------------------------------------------------------

def _megabytes(n: int) -> str:
    return f"{n / 2**20:.3g} MB"


def _name(source) -> str:
    """How messages call the photo: its path (its control characters escaped; '' for an empty one, which
    began a message with a bare colon), or "photo" for bytes."""
    return (printable(str(source)) or "''") if isinstance(source, (str, os.PathLike)) else "photo"


def _read_bytes(source, name: str, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        try:
            data = read_at_most(source, max_bytes)
        except OSError as exc:
            raise PhotoError(f"{name}: cannot read file ({exc.strerror or one_line(exc)})") from None
        except ValueError as exc:  # a NUL in the path
            raise PhotoError(f"{name}: cannot read file ({one_line(exc)})") from None
    else:
        raise ParameterError("source", f"must be a photo's path or bytes, got {type(source).__name__}")
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
    if image.mode == "La":  # premultiplied already; Pillow converts it to LA only ("conversion from La to L")
        return ()
    if image.mode in ("LA", "PA") or "transparency" in image.info:
        return ("RGBA", "RGBa")
    if image.mode in ("P", "1"):
        return ("L",)
    if image.mode.startswith("I;16"):
        return ("I",)
    return ()


def _transparency_as_alpha(image: Image.Image) -> Image.Image:
    """A 16-bit gray image with a transparent value (PNG's tRNS) as 8-bit gray and alpha: Pillow
    converts it to RGBA by clipping every value at 255, which turns the photo white."""
    if not (image.mode.startswith("I;16") and "transparency" in image.info):
        return image
    values = np.asarray(image, dtype=np.float32)
    gray = np.round(values / 257).astype(np.uint8)
    alpha = np.where(values == image.info["transparency"], 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([gray, alpha], axis=-1), "LA")


def _progressive(image: Image.Image) -> bool:
    return image.format in JPEG_FORMATS and bool(image.info.get("progressive"))


def _coefficients(image: Image.Image, width: int, height: int) -> int:
    """How many DCT coefficients a JPEG of ``width`` × ``height`` pixels holds, each component at
    its own sampling (``layer``: id, horizontal and vertical sampling, table)."""
    h_max = max(h for _, h, _, _ in image.layer)
    v_max = max(v for _, _, v, _ in image.layer)
    return round(width * height * sum(h * v for _, h, v, _ in image.layer) / (h_max * v_max))


def _bytes_per_pixel(mode: str) -> int:
    """What Pillow stores per pixel: the band's size for one band, four bytes for any number more."""
    info = ImageMode.getmode(mode)
    return 4 if len(info.bands) > 1 else np.dtype(info.typestr).itemsize


def _decoding_bytes(image: Image.Image, width: int, height: int) -> int:
    """The memory decoding ``image`` (``width`` × ``height`` pixels, at its draft size now) and
    converting it for ``_shrink`` takes at most."""
    modes = (image.mode, *_averaging_modes(image))
    needed = image.width * image.height * sum(_bytes_per_pixel(mode) for mode in modes)
    needed += width * height * DECODER_BYTES_PER_PIXEL.get(image.format, 0)
    if _progressive(image):
        needed += 2 * _coefficients(image, width, height)  # 16 bits each, held until the last scan
    return needed


def _shrink(image: Image.Image) -> Image.Image:
    """A large photo reduced by a whole factor in its own mode, both sides kept at least WORK_SIDE
    (as JPEG's draft does), before any float copy is made: the working copy needs no more."""
    image = _transparency_as_alpha(image)
    factor = min(image.size) // WORK_SIDE
    if factor < 2:
        return image
    for mode in _averaging_modes(image):
        image = image.convert(mode)
    image = image.reduce(factor)
    return image.convert("RGBA") if image.mode == "RGBa" else image


def upright(image: Image.Image, in_place: bool = False) -> Image.Image:
    """``image`` turned as its EXIF orientation tag says (the tag then removed); as stored where the EXIF
    block cannot be read: damaged metadata takes nothing from the pixels."""
    try:
        turned = ImageOps.exif_transpose(image, in_place=in_place)
    except Exception:  # noqa: BLE001 - Pillow's EXIF parsers raise what they meet (SyntaxError, struct.error …)
        return image
    return image if in_place else turned


def _check_size(width: int, height: int, max_pixels: int) -> None:
    """A PhotoError for a photo of more than ``max_pixels``, or more elongated than MAX_ASPECT:1."""
    if width * height > max_pixels:
        raise PhotoError(f"{width}×{height} pixels is more than the limit of {max_pixels / 1e6:g} megapixels")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise PhotoError(f"{width}×{height} pixels is more elongated than {MAX_ASPECT}:1, too narrow to show one "
                         "object")


def decoded_photo(image: Image.Image) -> Image.Image:
    """A PIL image handed over, as ``load_image`` makes a file's (grayscale, mode "F").

    One that ``Image.open`` has not decoded yet, at its first frame and in a format read here, is decoded from
    its file by ``load_image`` itself: a large JPEG at a reduced scale by its decoder, as its path or bytes
    would be (decoded in full and reduced here, its 28×28 pixels differed by up to 14 grey levels, and a class
    now and then). Any other (decoded already, another frame, a format of the caller's Pillow only) is refused
    past MAX_PIXELS or MAX_ASPECT:1, turned upright, reduced before any float copy, and made grayscale.
    """
    undecoded = bool(getattr(image, "tile", None))  # an image in memory has no tiles left to decode
    if undecoded and getattr(image, "fp", None) is None:
        raise PhotoError("a PIL image whose file was closed before it was decoded: load() it inside its with "
                         "block, or give the file's path")
    if undecoded and image.tell() == 0 and image.format in (*FORMATS, *JPEG_FORMATS):
        image.fp.seek(0)  # Image.open read the file from its start
        return load_image(image.fp.read(MAX_BYTES + 1))  # one byte more: load_image refuses a file past the limit
    _check_size(*image.size, MAX_PIXELS)
    return _grayscale_of(upright(image), image.format)  # the turned copy has no format


def _grayscale_of(image: Image.Image, source_format: str | None) -> Image.Image:
    """``image`` reduced (``_shrink``) and made grayscale (mode "F"), its ``format`` that of the file it was read
    from: whether its pixels are exactly as saved decides how a dataset image is recognised (``_in_dataset_form``)."""
    gray = Image.fromarray(to_grayscale(_shrink(image)))
    gray.format = source_format
    return gray


def load_image(source: str | os.PathLike | bytes, max_bytes: int = MAX_BYTES,
               max_pixels: int = MAX_PIXELS, max_decoding_bytes: int = MAX_DECODING_BYTES) -> Image.Image:
    """Decode a photo, upright, as a grayscale float image (mode "F", values in [0, 1]; its ``format`` the file's).

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
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = image.size
            _check_size(width, height, max_pixels)
            if image.format in JPEG_FORMATS:
                scans = data.count(b"\xff\xda")  # start-of-scan markers (in the coded data, FF is stuffed as FF 00)
                if scans * _coefficients(image, width, height) > MAX_SCAN_COEFFICIENTS:
                    raise PhotoError(f"a JPEG of {scans} scans over {width}×{height} pixels takes too long to decode")
            if image.format == "BMP" and image.info.get("compression") in BMP_RLE and width * height > MAX_RLE_PIXELS:
                raise PhotoError(f"a BMP compressed by runs of {width}×{height} pixels takes too long to decode "
                                 f"(over {MAX_RLE_PIXELS:,} pixels); save it as PNG")
            image.draft("L", (WORK_SIDE, WORK_SIDE))  # JPEG only; other formats ignore it
            needed = _decoding_bytes(image, width, height)
            if needed > max_decoding_bytes:
                kind = "of a progressive JPEG" if _progressive(image) else f"of mode {image.mode}"
                raise PhotoError(f"{width}×{height} pixels {kind} take {_megabytes(needed)} to decode, more "
                                 f"than the limit of {_megabytes(max_decoding_bytes)}")
            image.load()
            upright(image, in_place=True)
            return _grayscale_of(image, image.format)
    except PhotoError as exc:  # raised above and by to_grayscale, without the name
        raise PhotoError(f"{name}: {exc}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # Pillow's own, past ~89 MP
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found[1]) / 1e6:.0f} megapixels" if found else "its size"
        raise PhotoError(f"{name}: {size} is more than the limit of {max_pixels / 1e6:g} megapixels") from None
    except Image.UnidentifiedImageError:
        raise PhotoError(f"{name}: not an image in a format read here ({FORMAT_NAMES}): "
                         "save it as JPEG or PNG") from None
    except Exception as exc:  # Pillow's decoders raise many types on damaged files
        raise PhotoError(f"{name}: damaged or truncated image ({one_line(exc)})") from None


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Any Pillow image → float32 H×W luminance in [0, 1].

    Transparent areas are background: white, as behind a product photo or a
    page, unless nearly all the opaque content is light (chalk-like strokes),
    which would vanish on white: then black.
    """
    image = _transparency_as_alpha(image)
    if image.mode == "La":  # premultiplied: Pillow converts it to LA only (to RGBA: "conversion from La to L")
        image = image.convert("LA")
    if image.mode in ("P", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa", "LA", "PA"):
        image = image.convert("RGBA")
        luma = np.asarray(image.convert("L"), dtype=np.float32) / 255  # ignores alpha
        if image.getchannel("A").getextrema()[0] == 255:
            return luma
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255
        opaque = alpha > 0.5
        content_is_light = opaque.any() and np.percentile(luma[opaque], 10) > 0.5
        fill = np.float32(0.0) if content_is_light else _cut_surface(luma, alpha)
        return alpha * luma + (1 - alpha) * fill
    if image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) / 65535
    if image.mode in ("I", "F"):
        # No declared range: [0, 1], or the fewest bits (at least 8) that hold the values (a 12-bit camera's 4095
        # is white; a 32-bit image's values past 65535 were all white when 16 bits were assumed)
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():  # a float TIFF can hold them; no scale or threshold survives one
            raise PhotoError("pixel values are not finite (NaN or infinity)")
        peak = values.max(initial=0)
        top = 1 if peak <= 1 else 2 ** max(8, int(np.ceil(peak)).bit_length()) - 1
        return (values / top).astype(np.float32)
    if image.mode == "LAB":  # no conversion to L: its first band is the lightness
        return np.asarray(image.getchannel("L"), dtype=np.float32) / 255
    try:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255
    except ValueError:  # a mode Pillow cannot convert (HSV)
        raise PhotoError(f"pixels of mode {image.mode} cannot be read as gray: save the photo as JPEG or PNG") from None


def _cut_surface(luma: np.ndarray, alpha: np.ndarray) -> np.ndarray | float:
    """The surface a cut-out was cut from, where its soft rim shows it (a plane over the frame:
    the light varies slowly); else white (1).

    A photo's brightness is relative to its light, and the surface the object lay on is the
    measure of that light. Cutting out leaves some of the surface in the rim's half-transparent
    pixels: where they are lighter than the object, they are that surface, and filling the cut
    away area with white instead would lift everything by the gap between them (on cut-outs of
    Fashion-MNIST test images, the model inputs came out 8–86 % brighter than from the photos).
    """
    rim = (alpha >= RIM[0]) & (alpha <= RIM[1])
    if rim.sum() < MIN_RIM or not (alpha == 1).any() or np.median(luma[rim]) <= np.median(luma[alpha == 1]):
        return 1.0
    y, x = np.nonzero(rim)
    coef = np.linalg.lstsq(np.column_stack([np.ones(len(x)), x, y]), luma[rim], rcond=None)[0]
    rows, cols = np.ogrid[:luma.shape[0], :luma.shape[1]]
    # Far beyond the rim a steep plane may leave the range of light: there it is cut, as light is.
    return np.clip(coef[0] + coef[1] * cols + coef[2] * rows, 0.5 / 255, 1).astype(np.float32)


# --- preparing -----------------------------------------------------------------

def _working_copy(image: Image.Image | np.ndarray) -> np.ndarray:
    """Grayscale float32 in [0, 1], longest side between WORK_SIDE / 2 and WORK_SIDE.

    Large photos are reduced (antialiased); small ones are enlarged (bicubic),
    so that edges fall between pixels when the object is cut out and resized.
    """
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)  # uint8/uint16/float, gray or RGB(A): Pillow knows the mode
    gray = Image.fromarray(to_grayscale(image))
    if 0 in gray.size:  # an image made in code can be; a file cannot
        raise PhotoError(f"{gray.width}×{gray.height} pixels: the image is empty")
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


def _step(x: np.ndarray, y: np.ndarray, line: tuple[float, float, float]) -> np.ndarray:
    """A soft step across the frame, 0 on one side of a line and 1 on the other, a smooth ramp between:
    the shape of a shadow's edge or the edge of the paper. ``line``: (angle, offset, half width of
    the ramp) in the coordinates of ``_powers``, where the frame spans [-1, 1] both ways."""
    a, b, c = _across(*line)
    return _smoothstep(x * a + y * b + c)


def _steps(x: np.ndarray, y: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """``_step`` of each of ``lines`` (L × 3) at the samples ``x``, ``y`` (length N): N × L. The step
    search's cost: the position across every line at once is one matrix product, [x y 1] · (L × 3)ᵀ."""
    return _smoothstep(np.column_stack([x, y, np.ones_like(x)]) @ np.stack(_across(*lines.T)))


def _across(angle, offset, width) -> tuple:
    """(a, b, c) of a line (or of arrays of lines) such that a·x + b·y + c is 0 where its step's ramp
    starts and 1 where it ends."""
    scale = 1 / (2 * width)
    return np.cos(angle) * scale, np.sin(angle) * scale, 0.5 - offset * scale


def _smoothstep(t: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, 3t² − 2t³ between: smooth at both ends, as a penumbra is (``t`` is overwritten)."""
    np.clip(t, 0, 1, out=t)
    ramp = t * t
    t *= -2
    t += 3
    ramp *= t
    return ramp


def _reach(angle: np.ndarray | float) -> np.ndarray | float:
    """The distance from the frame's centre to its far corner along ``angle`` (the frame spans
    −1…1 each way): the largest offset of a line at that angle that still crosses it."""
    return np.abs(np.cos(angle)) + np.abs(np.sin(angle))


def _lines(angles: np.ndarray, offsets: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Every (angle, offset, width) of the grids; offsets are fractions of the ``_reach`` along the
    angle, so that every line crosses the frame. Given as rows (one grid per row of each), the grids
    one after another."""
    a, o, w = angles[..., :, None, None], offsets[..., None, :, None], widths[..., None, None, :]
    a, o, w = np.broadcast_arrays(a, o * _reach(a), w)
    return np.stack([a.ravel(), o.ravel(), w.ravel()], axis=1)


def _step_gains(x: np.ndarray, y: np.ndarray, residual: np.ndarray, q: np.ndarray,
                lines: np.ndarray) -> np.ndarray:
    """For each line, the fraction of the squared error left by a least-squares fit that adding the
    line's step to the fit's columns removes; ``residual`` is what the fit left and ``q`` an
    orthonormal basis of its columns (``_projected``).

    All candidates at once: with the fit's columns projected out of the values (the residual v) and
    of every step (s), a step's gain is (s·v)² / (s·s). s·v is the unprojected step's, as v is
    orthogonal to those columns, and s·s its squared length less that of its part along them (Qᵀs).
    """
    steps = _steps(x, y, lines)
    # A step needs samples on both sides to be fixed: 2 % at least of those in the fit.
    crossed = steps.sum(0)
    support = np.minimum(crossed, len(residual) - crossed) >= max(8, 0.02 * len(residual))
    along = q.T @ steps
    squared = np.einsum("ij,ij->j", steps, steps)
    # Of a step the known columns explain, float32's rounding is all that is left: no step at all.
    left = np.maximum(squared - np.einsum("ij,ij->j", along, along), 1e-5 * squared + 1e-12)
    gain = (steps.T @ residual) ** 2 / left * support
    return gain / max(residual @ residual, 1e-12)


def _projected(values: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the least-squares fit of ``values`` by the columns ``known`` leaves, and an orthonormal
    basis of those columns: ``_step_gains``' arguments, the same for every candidate line."""
    q, _ = np.linalg.qr(known)
    return values - q @ (q.T @ values), q


COARSE_LINES = _lines(np.linspace(0, np.pi, 12, endpoint=False), np.linspace(-0.9, 0.9, 13),
                      np.array([0.03, 0.15])).astype(np.float32)
# Around each line refined: angles and offsets (as fractions, see ``_lines``) at this spacing,
# then at a quarter of it; widths of this list, then of 0.7–1.4 times the best one.
REFINE_ANGLES = np.linspace(-np.pi / 24, np.pi / 24, 5)
REFINE_OFFSETS = np.linspace(-0.09, 0.09, 7)
REFINE_WIDTHS = np.array([0.005, 0.02, 0.05, 0.1, 0.2, 0.35])
REFINE_WIDTH_FACTORS = np.array([0.7, 1, 1.4])
REFINED = 4  # coarse lines refined: the best coarse one is often not the nearest to the true line


def _find_step(x: np.ndarray, y: np.ndarray, values: np.ndarray, known: np.ndarray,
               near: tuple[float, float, float] | None = None) -> tuple[tuple[float, float, float], float]:
    """The shadow or paper edge across the frame that, added to the columns ``known``, best
    explains ``values``, and the fraction of the squared error it removes: the best coarse lines
    of a grid (with ``near``, the line found before: the best coarse line and it), each refined,
    then the best of those refined once more at a quarter of the spacing (a line a few degrees off
    leaves a wedge of shadow that joins the object). The grid is searched again even when a line
    is given: one found among outliers (an object touching the edge) may be the wrong one.
    Without ``near``, where not even the best coarse line removes NO_STEP_GAIN, that line and its
    gain, unrefined. Angles span half a turn: the step's sign is free."""
    residual, q = _projected(values, known)
    coarse = _step_gains(x, y, residual, q, COARSE_LINES)
    if near is None and coarse.max() < NO_STEP_GAIN:  # no line to refine: the caller keeps none
        best = int(np.argmax(coarse))
        return tuple(COARSE_LINES[best]), float(coarse[best])
    starts = COARSE_LINES[np.argsort(coarse)[-REFINED:]]
    if near is not None:
        starts = np.vstack([starts[-1:], near])
    for spread in (1, 0.25):
        angle, offset, width = starts.T
        widths = np.broadcast_to(REFINE_WIDTHS, (len(starts), len(REFINE_WIDTHS))) if spread == 1 \
            else width[:, None] * REFINE_WIDTH_FACTORS
        fine = _lines(angle[:, None] + spread * REFINE_ANGLES,
                      (offset / _reach(angle))[:, None] + spread * REFINE_OFFSETS, widths).astype(np.float32)
        gains = _step_gains(x, y, residual, q, fine)
        best = int(np.argmax(gains))
        starts = fine[best:best + 1]
    return tuple(fine[best]), float(gains[best])


def _fit_background(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Background estimate, background mask and noise level of ``gray``.

    The background is a low-order polynomial surface — a gradient, vignetting and a tint all vary
    slowly — plus, where they fit, up to MAX_STEPS soft steps along lines across the frame: the
    edge of a shadow (a hand, the phone) or of the paper. On a light border (paper) all this is
    fitted to log(gray), where light and surface multiply into a sum. The steps are found near the
    image's edges (``FRAME``), which the object rarely fills, then placed again against the whole image;
    everything is fitted robustly to the border, then to every pixel that agrees with that fit,
    so that the object, whatever its size or polarity, does not pull it; quartic terms follow
    vignetting's steep corners.
    """
    h, w = gray.shape
    ypow, xpow = _powers(h, 4), _powers(w, 4)
    terms = [(i, j) for i in range(5) for j in range(5 - i)]  # xⁱyʲ, i + j ≤ 4; (0, 0) first
    order = np.array([i + j for i, j in terms])
    # ~64² samples are plenty for 17 coefficients; the first and last rows and columns among
    # them, where the paper's edge often is.
    step = max(1, max(h, w) // 64)
    rows, cols = (np.unique(np.linspace(0, n - 1, -(-n // step) + 1).round().astype(int)) for n in (h, w))
    ys, xs = np.meshgrid(ypow[rows, 1], xpow[cols, 1], indexing="ij")
    ys, xs = ys.ravel().astype(np.float32), xs.ravel().astype(np.float32)  # float32: the step search is the cost
    basis = np.stack([np.outer(ypow[rows, j], xpow[cols, i]).ravel() for i, j in terms], axis=1)
    values = gray[np.ix_(rows, cols)].ravel().astype(np.float64)
    border, frame = (_band(h, w, rows, cols, max(step, round(part * min(h, w)))) for part in (BORDER, FRAME))
    # In logarithms light and surface multiply into a sum (see LIGHT_BORDER): a shadow darkens
    # paper and table by the same step, and a gradient the object's surroundings as much as its own.
    light = np.median(values[border]) > LIGHT_BORDER
    if light:
        values = np.log(np.maximum(values, 0.5 / 255))
    else:  # a light object on a dark ground: often a dataset's own image, which fills the frame
        frame = border

    # The steps that best explain the frame, with the quadratic terms — the first where it removes
    # a little of what they leave (NO_STEP_GAIN; a useless one gets a coefficient near 0), a second
    # where it removes much of what is left (a shadow and the paper's edge); then again without the
    # frame's pixels far from that fit (an object touching the edge).
    mask, lines = frame, []
    for attempt in range(2):
        if attempt and (frame & ~mask).sum() <= FRAME_OUTLIERS * frame.sum():
            break  # nothing in the frame stood out from the first fit: the second would find the same
        known, found = basis[:, order <= 2], []
        used = np.flatnonzero(mask)[::4]  # a quarter of the frame's samples place a line well enough
        for k in range(MAX_STEPS):
            line, gain = _find_step(xs[used], ys[used], values[used].astype(np.float32),
                                    known[used].astype(np.float32), near=lines[k] if k < len(lines) else None)
            if gain < (MIN_STEP_GAIN if found else NO_STEP_GAIN):
                break
            found.append(line)
            known = np.column_stack([known, _step(xs, ys, line)])
        lines = found
        coef = np.linalg.lstsq(known[mask], values[mask], rcond=None)[0]
        residual = values - known @ coef
        mask = frame & (np.abs(residual) < 3 * _mad_sigma(residual[mask]))
    mask &= border
    basis = np.column_stack([basis] + [_step(xs, ys, line) for line in lines])
    order = np.concatenate([order, np.zeros(len(lines), int)])  # the steps are used at every degree

    coef, mask, sigma = _robust_fit(basis, values, order, border, mask)
    # Placed from the border alone, a line a degree or two off leaves a wedge of shadow inside the
    # frame; placed again with the whole image, the wedge fits.
    for k, line in enumerate(lines):
        column = len(terms) + k
        lines[k] = _place_step(xs, ys, values, np.delete(basis, column, axis=1), mask, line, 3 * sigma)
        basis[:, column] = _step(xs, ys, lines[k])
    coef, mask, sigma = _robust_fit(basis, values, order, border, mask)
    # A step stays only if the whole image agrees: with it, more pixels fit the background than
    # without (a step along an object that touches the border explains the border, not the rest).
    # Both fits are judged by the same tolerance: a worse fit's own noise estimate is larger and
    # would admit more pixels.
    for k in reversed(range(len(lines))):
        column = len(terms) + k
        without = np.delete(np.arange(len(order)), column)
        other = _robust_fit(basis[:, without], values, order[without], border, mask)
        tolerance = 3 * min(sigma, other[2])
        if (np.abs(values - basis[:, without] @ other[0]) < tolerance).sum() >= \
                (np.abs(values - basis @ coef) < tolerance).sum():
            coef, mask, sigma = np.insert(other[0], column, 0.0), other[1], other[2]
    # Σ c·xⁱyʲ on the full grid as one matrix product: ypow · C · xpowᵀ; then the step.
    grid = np.zeros((5, 5))
    for (i, j), c in zip(terms, coef):
        grid[j, i] = c
    background = ypow @ grid @ xpow.T
    for c, line in zip(coef[len(terms):], lines):
        background += c * _step(xpow[None, :, 1], ypow[:, None, 1], line)
    # Where a term is poorly fixed (few samples beyond a step), it must not run away.
    background = background.clip(values[mask].min(), values[mask].max())
    if light:
        inliers = np.abs(np.log(np.maximum(gray, 0.5 / 255)) - background) < 3 * sigma
        background = np.exp(background)
        sigma = _mad_sigma((gray - background)[inliers])  # the noise in gray's own units
    background = background.astype(np.float32)
    return background, np.abs(gray - background) < 3 * sigma, sigma


def _band(h: int, w: int, rows: np.ndarray, cols: np.ndarray, band: int) -> np.ndarray:
    """Which of the samples at ``rows`` × ``cols`` (flattened) lie within ``band`` pixels of the
    edge of an h × w image."""
    inside = np.zeros((h, w), bool)
    inside[band:h - band, band:w - band] = True
    return ~inside[np.ix_(rows, cols)].ravel()


def _place_step(x: np.ndarray, y: np.ndarray, values: np.ndarray, others: np.ndarray, mask: np.ndarray,
                line: tuple[float, float, float], tolerance: float) -> tuple[float, float, float]:
    """The line near ``line`` whose step, with the columns ``others``, fits the most of the image.

    Each candidate is fitted by least squares to the pixels ``mask`` (the background so far), then
    judged on every pixel by a truncated square (beyond ``tolerance``, a pixel costs the same
    however far off, as the object does): the right line turns the wedge a wrong one leaves into
    background, which the inliers alone cannot tell.
    """
    angle, offset, width = line
    candidates = _lines(angle + np.linspace(-np.pi / 24, np.pi / 24, 7),
                        offset / _reach(angle) + np.linspace(-0.06, 0.06, 5),
                        width * np.array([0.5, 1, 2])).astype(np.float32)
    every = slice(None, None, 4)  # a quarter of the samples judge well enough
    x, y, values, others, mask = x[every], y[every], values[every], others[every], mask[every]
    steps = _steps(x, y, candidates)
    known = others[mask]
    # An orthonormal basis of what the columns span there: another step that the mask does not
    # cross is constant on it, the same column as the constant term.
    u, singular, vt = np.linalg.svd(known, full_matrices=False)
    kept = singular > 1e-9 * singular[0]
    q = u[:, kept]
    fitted = steps[mask]
    along_values, along_steps = q.T @ values[mask], q.T @ fitted
    v = values[mask] - q @ along_values
    s = fitted - q @ along_steps
    c = (s.T @ v) / np.maximum(np.einsum("ij,ij->j", s, s), 1e-12)
    # With each candidate's step at c, the other columns' least squares by the same SVD.
    b = vt[kept].T @ ((along_values[:, None] - along_steps * c) / singular[kept, None])
    residual = values[:, None] - others @ b - steps * c
    loss = np.minimum(residual ** 2, tolerance ** 2).sum(0)
    return tuple(float(v) for v in candidates[int(np.argmin(loss))])


def _robust_fit(basis: np.ndarray, values: np.ndarray, order: np.ndarray, border: np.ndarray,
                mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Coefficients, inliers and noise level of ``values`` fitted by ``basis``, from the inliers
    ``mask``: quadratic fits to the border, each dropping the pixels far from the last; then
    quartic fits to the whole image (terms of ``order`` ≤ 2, then ≤ 4)."""
    for region, degree in [(border, 2)] * 2 + [(True, 4)] * 2:
        used = order <= degree
        fit = basis[np.ix_(mask, used)]
        coef = np.zeros(len(order))
        # Normal equations: few, well-scaled terms, so as accurate as lstsq and far cheaper —
        # unless the pixels kept lie on too few rows or columns (a thin strip) to fix every term.
        try:
            coef[used] = np.linalg.solve(fit.T @ fit, fit.T @ values[mask])
        except np.linalg.LinAlgError:
            coef[used] = np.linalg.lstsq(fit, values[mask], rcond=None)[0]
        residual = values - basis @ coef
        sigma = _mad_sigma(residual[mask])
        mask = region & (np.abs(residual) < 3 * sigma)
        if mask.sum() < 4 * len(order):  # too little left to refit: keep this fit
            break
    return coef, mask, sigma


@dataclass(frozen=True)
class Mark:
    """Something that stood out from the background but was not taken for the object."""

    box: tuple[int, int, int, int]  # (left, top, right, bottom) in ``Prepared.gray``
    reason: str  # why it was dropped, e.g. "thin line near the border"


# Shapes of marks that are not the object, measured at the working size; see ``_select_object``.
SPECK = 0.05  # parts smaller than this fraction of the object's area are noise or dust
LINE = 6.0  # a part longer than this many times its thickness is line-like
BORDER_BAND = 0.15  # a line lying within this fraction of the short side from an edge is a border mark
PIECE = 3.0  # a part in that band this many times longer along the border than across is a border mark too
EDGE_SPECK = 1 / 3  # a part touching the frame's edge with at most (this fraction of the band)² pixels is a speck
STROKE = 0.05  # a line at least this fraction of the short side thick is drawn, not a pen's stray stroke
# A digital drawing's background is one grey: all its pixels within this of one another (on 60 photos, noise
# and light put 98 % of them 0.24–0.71 apart): no paper's edge nor shadow can be in it.
FLAT = 2 / 255
SPAN = 0.9  # a line along more than this fraction of its side is ruled along the border, not drawn
THIN = 0.3  # a line thinner than this fraction of the object's thickest part is a stray stroke
CORE = 0.6  # the object's strong pixels: at least this fraction of the brightest
NEAR = 0.3  # a part farther from the object than this fraction of its size is something else


def _box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _select_object(foreground: np.ndarray, threshold: float, is_drawing: Callable[[], bool] = lambda: False
                   ) -> tuple[np.ndarray, list[Mark], np.ndarray]:
    """The object's pixels, the marks dropped, and their pixels (bool masks like ``foreground``);
    ``is_drawing`` says (asked only where it matters) whether the picture is a digital drawing (``FLAT``).

    Pixels above ``threshold`` (relative to the object's bright end), grouped into connected
    parts. Not the object: a line-like part lying along the frame's border (a stray stroke, the
    paper's edge, a shadow's rim), then — measured against the largest part left, the object —
    a line much thinner than the object, a part far from it, and specks. The object is the part
    with the most pixels near the brightest (``CORE``).
    """
    smooth = ndimage.gaussian_filter(foreground, 1.0)
    parts = smooth > threshold
    labels, count = ndimage.label(parts, structure=np.ones((3, 3)))
    if count == 0:
        raise BlankPhotoError("no object found: nothing stands out from the background")
    area = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    # Half the thickness at the thickest point; outside the frame counts as inside the part.
    half = _per_part(np.maximum, _distance_to_background(parts), labels, count, 0.0)
    boxes = ndimage.find_objects(labels)
    h, w = foreground.shape
    band = BORDER_BAND * min(h, w)
    reasons: dict[int, str] = {}
    stuck = set()  # specks touching the frame's edge (EDGE_SPECK)
    apart = []  # border lines that may have been drawn: the object, where nothing else is (see below)
    for i, (rows, cols) in enumerate(boxes):
        height, width = rows.stop - rows.start, cols.stop - cols.start
        length = np.hypot(height, width)
        # Within the band of the top or bottom edge, the extent along the border is the width.
        in_band = min(rows.stop, h - rows.start) <= band, min(cols.stop, w - cols.start) <= band
        # A piece of a line along the border (what a slightly misplaced paper edge leaves) is too
        # short to be line-like, but lies along the border.
        along = (in_band[0] and width >= PIECE * height) or (in_band[1] and height >= PIECE * width)
        if (length >= LINE * 2 * half[i] and any(in_band)) or along:
            reasons[i] = "line near the border"
            # apart from the frame's ends, which a paper's or a shadow's edge crosses to, and along less
            # than most of its side (a line ruled along the border)
            if ((not in_band[1] or 0 < rows.start and rows.stop < h and height < SPAN * h)
                    and (not in_band[0] or 0 < cols.start and cols.stop < w and width < SPAN * w)):
                apart.append(i)
        elif area[i] <= (EDGE_SPECK * band) ** 2 and (rows.start == 0 or cols.start == 0 or rows.stop == h
                                                       or cols.stop == w):
            stuck.add(i)
    candidates = [i for i in range(count) if i not in reasons]
    # In a digital drawing, with nothing else there, a thick line apart from the frame's ends is the object: a 1
    # drawn at the side of the web page's canvas. In a photo it stays a mark: a shadow or a strip of table at the
    # side, a finger's edge (review: 12 of 12 blank pages with a shadow at one side became "objects").
    if apart and stuck.issuperset(candidates) and is_drawing():
        drawn = [i for i in apart if _stroke(labels[boxes[i]] == i + 1) >= STROKE * min(h, w)]
        candidates += drawn
        reasons = {i: reason for i, reason in reasons.items() if i not in drawn}
    # Where the background fitted a border line, the paper beside its ends stands out: specks stuck to the
    # frame's edge. With nothing else left they are marks too, not the object (a stroke along the top of a
    # drawing became a 5×14-pixel "object", read as an 8: 68–94 pixels); a small object at the edge (a 40-pixel
    # digit has ~200) is kept, and so is anything at the edge of a photo without such a line.
    if reasons and candidates and stuck.issuperset(candidates):
        reasons.update({i: "mark at the border" for i in candidates})
        candidates = []
    if not candidates:  # the caller says so
        return np.zeros(foreground.shape, bool), _marks(boxes, reasons), np.isin(labels, [i + 1 for i in reasons])
    # The object is the part with the most strong pixels, not the largest: what the background's fit
    # leaves of a shadow can be larger, but it is faint.
    strong = np.bincount(labels[smooth >= CORE * smooth.max()], minlength=count + 1)[1:]
    main = max(candidates, key=lambda i: (strong[i], area[i]))
    rows, cols = boxes[main]
    size = max(rows.stop - rows.start, cols.stop - cols.start)
    others = [i for i in candidates if i != main]
    if others:  # (a distance transform of the whole photo: only when there is a part to measure)
        gap = _per_part(np.minimum, ndimage.distance_transform_edt(labels != main + 1), labels, count, np.inf)
    for i in others:
        rows, cols = boxes[i]
        length = np.hypot(rows.stop - rows.start, cols.stop - cols.start)
        if length >= LINE * 2 * half[i] and half[i] < THIN * half[main]:
            reasons[i] = "thin line"
        elif gap[i] > NEAR * size:
            reasons[i] = "part far from the object"
        elif area[i] < SPECK * area[main]:
            reasons[i] = "speck"
    kept = np.isin(labels, [i + 1 for i in range(count) if i not in reasons])
    dropped = np.isin(labels, [i + 1 for i, reason in reasons.items() if reason != "speck"])
    return kept, _marks(boxes, reasons), dropped


def _distance_to_background(parts: np.ndarray) -> np.ndarray:
    """``ndimage.distance_transform_edt(parts)``, computed on the parts' bounding box and the row or
    column of background around it (where the photo goes on): no background pixel beyond that ring
    is nearer to a pixel inside than the ring's own, so the distances are the same, for a fraction of
    the work when the parts fill a fraction of the photo."""
    left, top, right, bottom = _box_of(parts)
    h, w = parts.shape
    top, left, bottom, right = max(top - 1, 0), max(left - 1, 0), min(bottom + 1, h), min(right + 1, w)
    distance = np.zeros(parts.shape)
    distance[top:bottom, left:right] = ndimage.distance_transform_edt(parts[top:bottom, left:right])
    return distance


def _stroke(part: np.ndarray) -> float:
    """How thick a part is at its thickest (``part``: its box's pixels), the frame's edge counted as outside."""
    return 2 * float(ndimage.distance_transform_edt(np.pad(part, 1)).max())


def _per_part(reduce: np.ufunc, values: np.ndarray, labels: np.ndarray, count: int, start: float) -> np.ndarray:
    """``reduce`` (np.maximum, np.minimum) of ``values`` over each labelled part 1…count: an unbuffered
    ufunc.at, many times faster than ndimage's per-label reductions, which sort."""
    out = np.full(count + 1, start)
    reduce.at(out, labels.ravel(), values.ravel())
    return out[1:]


def _marks(boxes: list[tuple[slice, slice]], reasons: dict[int, str]) -> list[Mark]:
    """The parts dropped, but specks, as Marks."""
    return [Mark((boxes[i][1].start, boxes[i][0].start, boxes[i][1].stop, boxes[i][0].stop), reason)
            for i, reason in sorted(reasons.items()) if reason != "speck"]


TILTS = np.radians(np.arange(-MAX_TILT, MAX_TILT + 0.01, 0.5))
# An object that matches its mirror image about its best axis this well (correlation of brightness)
# is mirror-symmetric: on photos of Fashion-MNIST test images, shirts, trousers, dresses and coats
# score 0.88 or more in 90 %; sandals, sneakers and boots 0.6–0.83 (medians).
SYMMETRIC = 0.9
MIRROR_SIDE = 32  # pixels: the symmetry is judged on the object reduced to this longest side


def _tilt(mask: np.ndarray, brightness: np.ndarray) -> float:
    """How far the object ``mask`` is turned from upright, in degrees (counter-clockwise); 0 where
    no turn in ±MAX_TILT stands out (the best is at the end of the range: a shoe or a bag lying so).

    A mirror-symmetric object (shirts, trousers, dresses, bags) is turned by its axis of symmetry
    (``_mirror_tilt``); any other (a shoe seen from the side) by the turn whose bounding box is
    smallest in area: upright products fill their box, hems, sides and soles parallel to its edges.
    Measured on the harder photos of 200 Fashion-MNIST test images, turned by 4–12° and seen in
    perspective: the box alone was more than 3° off for 13–29 % of the garments, the axis for 0–11 %;
    estimates from the edges' directions were worse still — a shoe's slanted upper pulls them.
    """
    angle, match = _mirror_tilt(brightness)
    if match < SYMMETRIC:
        outline = mask & ~ndimage.binary_erosion(mask)  # the box depends on the outline only
        y, x = np.nonzero(outline)
        cos, sin = np.cos(TILTS)[:, None], np.sin(TILTS)[:, None]
        across, down = x * cos + y * sin, y * cos - x * sin  # the outline turned by each candidate
        angle = int(np.argmin(np.ptp(across, axis=1) * np.ptp(down, axis=1)))
    return 0.0 if angle in (0, len(TILTS) - 1) else float(-np.degrees(TILTS[angle]))


def _mirror_tilt(brightness: np.ndarray) -> tuple[int, float]:
    """The candidate turn (an index into TILTS) whose axis through the object's centre of mass
    best reflects ``brightness`` (the object's, 0 elsewhere) onto itself, and how well (the
    correlation of the object with its mirror image; 1: a perfect match)."""
    left, top, right, bottom = _box_of(brightness > 0)
    small = Image.fromarray(brightness[top:bottom, left:right])
    scale = MIRROR_SIDE / max(small.size)
    if scale < 1:
        small = small.resize((max(1, round(small.width * scale)), max(1, round(small.height * scale))),
                             Image.Resampling.BOX)
    weights = np.asarray(small)
    y, x = np.nonzero(weights > 0)
    value = weights[y, x]
    centre_y, centre_x = np.average(y, weights=value), np.average(x, weights=value)
    y, x = y - centre_y, x - centre_x
    # Each candidate's axis, the vertical turned back by it (as the box's turn in ``_tilt``): every
    # pixel's mirror image about it.
    axis_y, axis_x = np.cos(TILTS)[:, None], -np.sin(TILTS)[:, None]
    along = y * axis_y + x * axis_x
    mirror_y, mirror_x = 2 * along * axis_y - y + centre_y, 2 * along * axis_x - x + centre_x
    mirrored = ndimage.map_coordinates(weights, [mirror_y.ravel(), mirror_x.ravel()], order=1,
                                       cval=0).reshape(mirror_y.shape)
    match = mirrored @ value / (value @ value)
    best = int(np.argmax(match))
    return best, float(match[best])


def _centre_box(source: np.ndarray, box: tuple[int, int, int, int], style: Style) -> np.ndarray:
    """Zalando's placement: the box's longest side becomes ``style.fit`` pixels and
    its centre the field's centre, to a fraction of a pixel (float32 28×28).

    One antialiased resize maps a square source window, centred on the box, onto
    the whole field, so nothing near the box's edges is cut off.
    """
    left, top, right, bottom = box
    scale = style.fit / max(right - left, bottom - top)  # output pixels per source pixel
    window = IMAGE_SIDE / scale
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
    field = Image.fromarray(patch).resize((IMAGE_SIDE, IMAGE_SIDE), style.resample,
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
    dy = min(max(round(IMAGE_SIDE // 2 - cy), 0), IMAGE_SIDE - h)
    dx = min(max(round(IMAGE_SIDE // 2 - cx), 0), IMAGE_SIDE - w)
    field = np.zeros((IMAGE_SIDE, IMAGE_SIDE), np.float32)
    field[dy:dy + h, dx:dx + w] = small
    return field


_PLACE = {"box": _centre_box, "mass": _centre_mass}


DARK_FRAME = 0.1  # a dataset image's outer pixels are black, but where its object reaches them
FULL_BRIGHTNESS = 0.9  # a dataset image's brightest pixel is white (255), a JPEG copy's nearly
OBJECT_LEVEL = 0.15  # where a dataset image's object is measured (its box, its centre): above JPEG's ringing


def _in_dataset_form(image: Image.Image | np.ndarray, spec: Style) -> Prepared | None:
    """The image as it is, where it already is one of ``spec``'s dataset's: 28×28, gray, the object bright
    on a mostly black frame, at full brightness, as large and as centred as the dataset's conversion makes
    it (a dataset image saved to a file); else None. Converting one would damage it: the background fitted
    to a frame that the object touches runs through the object (a Fashion-MNIST test set saved as PNG files
    got 84 % of the model's own predictions back). A drawing of one's own at 28×28 (small, dim, coloured)
    is converted as any photo is."""
    if (image.shape[1::-1] if isinstance(image, np.ndarray) else image.size) != (IMAGE_SIDE, IMAGE_SIDE):
        return None  # before any copy: most photos are large
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if image.mode not in ("1", "L", "LA", "La", "I", "I;16", "F", "P"):
        channels = np.asarray(image.convert("RGB"), dtype=np.int16)
        if np.ptp(channels, axis=2).max() > 8:  # colour: a drawing of one's own, not a dataset's gray image
            return None
    gray = to_grayscale(image)
    frame = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    if np.median(frame) > DARK_FRAME or gray.max() < FULL_BRIGHTNESS:
        return None
    # The object where it is at least faintly lit: a JPEG's ringing spreads traces to its 8×8 blocks' edges.
    # From a file that keeps every pixel as saved, on an exactly black frame, also where it is lit at all: a
    # dark garment's edges are fainter than that level (50 of Fashion-MNIST's 10,000 test images saved as PNG
    # were converted, 19 changing class). Not so for any other: small drawings saved as JPEG, or on a dim
    # canvas, then measured the dataset's size (up to 223 of 300).
    exact = image.format in LOSSLESS_FORMATS and np.median(frame) == 0
    for level in (OBJECT_LEVEL, 0.0) if exact else (OBJECT_LEVEL,):
        lit = gray > level
        if (box := _placed_as_in(spec, gray, lit)) is not None:
            return Prepared(pixels=np.round(gray * 255).astype(np.uint8), gray=gray, background=np.zeros_like(gray),
                            foreground=gray, box=box, inverted=False, tilt=0.0, object_mask=lit, dropped=(),
                            dropped_mask=np.zeros_like(lit))
    return None


def _placed_as_in(spec: Style, gray: np.ndarray, lit: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box of ``lit`` where it is as large and as centred as ``spec``'s conversion places an object;
    else None."""
    left, top, right, bottom = _box_of(lit)
    if not spec.fit - 2 <= max(right - left, bottom - top) <= spec.fit:  # a faint rim is not counted
        return None
    rows, cols = np.indices(gray.shape)
    centre = ((gray * rows).sum() / gray.sum(), (gray * cols).sum() / gray.sum()) if spec.centre == "mass" \
        else ((top + bottom - 1) / 2, (left + right - 1) / 2)
    if max(abs(c - (IMAGE_SIDE - 1) / 2) for c in centre) > 1:
        return None
    return left, top, right, bottom


def _style(parameter: str, name) -> Style:
    """The style of the dataset ``name``; a ParameterError naming ``parameter`` for any other value."""
    check(parameter, name, [StrOptions(STYLES)])
    return STYLES[name]


PERCENTILE = Interval(Real, 0, 100, closed="both")


def _checked_options(invert, upright, contrast_percentiles) -> tuple[float, float]:
    """``prepare``'s options checked (a ParameterError naming the first that is not allowed), and the contrast
    percentiles as (low, high). A string is no boolean ("no" turned inversion on); the two percentiles are of
    different pixels (the background's, the object's), so either may be the larger."""
    check("invert", invert, ["boolean", None])
    check("upright", upright, ["boolean", None])
    # its length, not np.shape: NumPy's own ValueError for a ragged pair such as (99, [100])
    pair = (isinstance(contrast_percentiles, (tuple, list)) or getattr(contrast_percentiles, "ndim", None) == 1
            ) and len(contrast_percentiles) == 2
    if not pair or not all(allows([PERCENTILE], p) for p in contrast_percentiles):
        raise ParameterError("contrast_percentiles", f"must be two percentiles (low, high), each "
                                                     f"{allowed([PERCENTILE])}; got {contrast_percentiles!r}")
    low, high = contrast_percentiles
    return float(low), float(high)  # a Fraction is a Real number, but not one np.percentile takes


def prepare(image: Image.Image | np.ndarray, style: str = DEFAULT_DATASET,
            invert: bool | None = None, upright: bool | None = None,
            contrast_percentiles: tuple[float, float] = (99.0, 100.0)) -> Prepared:
    """Turn a photo into a 28×28 uint8 image like ``style``'s training data.

    ``image``: any Pillow image (e.g. from ``load_image``) or a 2-D array.
    ``style``: a key of ``STYLES`` (the dataset name).
    ``invert``: whether the object is darker than its background; None detects
    it by comparing the object's pixels with the background fitted from the border.
    An image already in the dataset's form (28×28, gray, bright on a black frame, placed as the dataset's
    are) is taken as it is, unless ``invert`` is True.
    ``upright``: whether to undo the photo's tilt (up to MAX_TILT degrees, see ``_tilt``); None
    follows the style: yes for Fashion-MNIST, whose products were photographed upright; no for
    handwriting, whose slant is the writer's (measured: undoing it costs MNIST accuracy, see
    BENCHMARKS.md).
    ``contrast_percentiles``: (low, high), each in [0, 100]. The low percentile of the background's
    residual becomes black (noise and leftover shading vanish); the high
    percentile of the object's pixels in the 28×28 result becomes white (by
    default the brightest, as in 90 % of MNIST and Fashion-MNIST images).
    """
    spec = _style("style", style)
    low, high = _checked_options(invert, upright, contrast_percentiles)
    if not invert and (as_is := _in_dataset_form(image, spec)) is not None:
        return as_is

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
        # The light varies over the paper, not by more than 2:1: a darker background is the table
        # beyond the paper's edge, which must not be brightened like paper.
        signal = -residual / np.maximum(background, max(0.5 * float(np.median(background)), 1e-3))
    else:
        signal = residual
    black = np.percentile(signal[is_background], low) if is_background.any() else 0.0
    signal = np.clip(signal - black, 0, None)
    if not (signal > 0).any():
        raise BlankPhotoError("no object found: nothing stands out from the background")
    # The object's bright end sets the thresholds below; a few hot pixels don't move it. If a mark
    # dropped then was brighter (the table beyond the paper's edge), once more without the marks: the
    # object's own bright end, which a dark mark beside it must not dim.
    marks = np.zeros(signal.shape, bool)
    for _ in range(2):
        candidates = signal[(signal > 0) & ~marks]
        if not candidates.size:  # all that stood out was marks: nothing is left to look at again
            break
        bright = np.percentile(candidates, 99.5)
        foreground = np.minimum(signal / bright, 1).astype(np.float32)
        # A bilevel style cuts the object at half its brightness, where a blurred
        # edge really is; the others keep the shading and trim only the faint rim.
        if spec.bilevel:
            source, threshold = (foreground >= 0.5).astype(np.float32), 0.5
        else:
            source, threshold = foreground, 0.1
        kept, dropped, dropped_mask = _select_object(
            source, threshold, lambda: np.ptp(gray[is_background]) < FLAT)
        if not dropped_mask.any() or (kept.any() and np.percentile(signal[kept], 99.5) >= 0.8 * bright):
            break
        marks = dropped_mask
    if not kept.any():
        raise BlankPhotoError("no object found: only lines or marks near the border (a stray stroke, the "
                              "paper's or a shadow's edge) stand out from the background")
    contrast = np.percentile(signal[kept], 99.5)
    if contrast < MIN_CONTRAST:
        raise BlankPhotoError(f"no object found: what stands out most is only {contrast:.0%} darker or lighter "
                              "than the background, as a shadow's or a fold's leftover is")
    # Only the object's own pixels go on: marks next to it must not widen the crop.
    source = np.where(ndimage.binary_dilation(kept, iterations=2), source, 0).astype(np.float32)
    box = _box_of(kept)
    angle = _tilt(kept, np.where(kept, foreground, 0)) if (spec.upright if upright is None else upright) else 0.0
    if abs(angle) >= MIN_TILT:
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        source = np.asarray(Image.fromarray(source).rotate(-angle, Image.Resampling.BILINEAR, center=centre))
        placed = _box_of(source > threshold)
    else:
        angle, placed = 0.0, box
    field = _PLACE[spec.centre](source, placed, spec)
    lit = field > 0.02 * field.max()
    white = np.percentile(field[lit], high) if lit.any() else 1.0
    pixels = np.round(np.clip(field / max(white, 1e-6), 0, 1) * 255).astype(np.uint8)
    return Prepared(pixels=pixels, gray=gray, background=background, foreground=foreground,
                    box=box, inverted=invert, tilt=angle, object_mask=kept, dropped=tuple(dropped),
                    dropped_mask=dropped_mask)


def prepare_photo(source: str | os.PathLike | bytes, dataset_name: str,
                  max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
                  **overrides) -> Prepared:
    """File or bytes → model input for ``dataset_name``; ``overrides`` go to ``prepare``."""
    _style("dataset_name", dataset_name)  # by its name here, and before the photo is read: a photo's error hid it
    image = load_image(source, max_bytes=max_bytes, max_pixels=max_pixels)
    try:
        return prepare(image, style=dataset_name, **overrides)
    except PhotoError as exc:
        raise type(exc)(f"{_name(source)}: {exc}") from None
