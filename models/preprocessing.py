"""Image bytes to the network's input, exactly as Keras prepares it.

Keras's reference path is ``load_img(target_size=(224, 224), interpolation="bilinear")``,
``img_to_array`` and ``mobilenet.preprocess_input`` (x / 127.5 - 1). We do the same
with Pillow, plus EXIF rotation so phone photos are upright, and each pixel mode turned
into 8-bit RGB as a viewer shows it on a white page (``VIEWER_CONVERSIONS``), where Keras's
plain ``convert("RGB")`` clips 16-bit grey to white and drops transparency to whatever
colour lies under it. Metadata (PNG text, ICC and other descriptive chunks; JPEG ICC, XMP and
Photoshop segments) is skipped, never a reason to fail.

Large JPEGs are decoded straight to a smaller scale in the DCT domain
(``draft``), never below twice the input size: images up to 448 pixels a side
decode exactly as Keras does, and a 12-megapixel photo decodes several times faster.
"""

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
from PIL import ExifTags, Image

INPUT_SIZE = (224, 224)
DRAFT_SIZE = (2 * INPUT_SIZE[0], 2 * INPUT_SIZE[1])
# EXIF Orientation value -> the transpose that makes the image upright.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# High-depth grey is rescaled in tiles of at most this many pixels, so no full-size wide copy exists.
_TILE_PIXELS = 1 << 20
WHITE = (255, 255, 255)


class UndecodableImage(ValueError):
    """The image could not be decoded; whatever the decoder raised, the job fails with its message."""


def decode_rgb(data: bytes) -> Image.Image:
    """Decode to an upright RGB image: first frame of an animation, EXIF rotation applied.

    Call it only on data that ``jobs.imagecheck.inspect_image`` admitted: that check bounds the
    pixels and scans, so the decode stays within its time and memory budget, and refuses the
    modes ``VIEWER_CONVERSIONS`` cannot show faithfully.
    """
    if data.startswith(_PNG_SIGNATURE):
        data = png_without_metadata(data)
    elif data.startswith(b"\xff\xd8"):
        data = jpeg_without_metadata(data)
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        data = gif_without_metadata(data)
    try:
        image = Image.open(io.BytesIO(data))  # a BytesIO holds no resource: no close needed
    except Exception as error:
        raise UndecodableImage(_reason(error)) from None
    try:
        image.seek(0)
        image.draft("RGB", DRAFT_SIZE)  # JPEG only; a no-op for other formats
        image.load()
        upright = _upright_transpose(image)  # read before conversion: a TIFF's EXIF lives on the file
        shown = as_viewer_shows(image)
        if shown is not image:
            image.close()  # the decoded source may be 4 bytes a pixel: free it before the RGB copy
        rgb = shown if shown.mode == "RGB" else shown.convert("RGB")
        return rgb.transpose(upright) if upright is not None else rgb
    except UndecodableImage:
        raise
    except Exception as error:  # Pillow's decoders raise OSError, SyntaxError, struct.error, ...
        raise UndecodableImage(_reason(error)) from None


def png_without_metadata(data: bytes) -> bytes:
    """The PNG with only what its picture needs: its critical chunks, transparency, EXIF (for the
    rotation) and APNG frames. Every other ancillary chunk describes the picture (text, XMP, ICC,
    gamma, density...) and is dropped; so is a kept one whose checksum fails or whose length does not
    fit its colour type, as libpng ignores it where Pillow would fail. Whatever follows the end chunk
    or a cut stays as it is."""
    kept, pos, end = [data[:8]], 8, len(data)
    colour, palette_entries, animated = (data[25] if len(data) > 25 else -1), 0, False  # -1: no IHDR colour type
    while pos + 12 <= end:
        length, kind = struct.unpack_from(">I4s", data, pos)
        chunk_end = pos + 12 + length
        if chunk_end > end:
            break
        if kind == b"PLTE":
            palette_entries = length // 3
        if not kind[0] & 0x20:  # critical
            keep = True
        elif kind == b"tRNS":
            keep = length == {0: 2, 2: 6, 3: min(length, palette_entries)}.get(colour) and length > 0
        elif kind == b"acTL":
            keep = animated = length == 8
        elif kind in (b"fcTL", b"fdAT"):
            keep = animated
        else:
            keep = kind == b"eXIf"
        if keep and (not kind[0] & 0x20 or _crc_intact(data, pos, chunk_end)):
            kept.append(data[pos:chunk_end])
        pos = chunk_end
        if kind == b"IEND":
            break
    kept.append(data[pos:])
    return b"".join(kept)


def jpeg_without_metadata(data: bytes) -> bytes:
    """The JPEG without the header segments that only describe it (ICC profile, XMP, Photoshop
    resources) and without a JFIF or Adobe segment too short to hold its fields, which libjpeg
    ignores but Pillow fails on. Everything from the first scan on stays as it is."""
    kept, pos, end = [data[:2]], 2, len(data)
    while pos + 4 <= end and data[pos] == 0xFF and 0xE0 <= data[pos + 1] <= 0xFE:  # APPn, JPG extensions, COM
        length = struct.unpack_from(">H", data, pos + 2)[0]
        segment_end = pos + 2 + length
        if length < 2 or segment_end > end:
            break
        if not _jpeg_metadata(data[pos + 1], data[pos + 4 : segment_end]):
            kept.append(data[pos:segment_end])
        pos = segment_end
    kept.append(data[pos:])
    return b"".join(kept)


def gif_without_metadata(data: bytes) -> bytes:
    """The GIF without the extension blocks before its first image that only describe it (comments,
    application data such as the loop count or XMP, plain text) and without a graphic control block
    of the wrong size, which browsers ignore but Pillow fails on. The first image on stays as it is."""
    flags = data[10] if len(data) > 10 else 0
    pos, end = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0), len(data)
    kept = [data[:pos]]
    while pos + 2 < end and data[pos] == 0x21:
        label, block_end = data[pos + 1], pos + 2
        while block_end < end and data[block_end]:
            block_end += data[block_end] + 1
        block_end += 1
        if block_end > end:
            break
        if label == 0xF9 and data[pos + 2] == 4 or label not in (0xF9, 0xFE, 0xFF, 0x01):
            kept.append(data[pos:block_end])
        pos = block_end
    kept.append(data[pos:])
    return b"".join(kept)


def _jpeg_metadata(marker: int, body: bytes) -> bool:
    return (
        (marker == 0xE2 and body.startswith(b"ICC_PROFILE\0"))
        or (marker == 0xE1 and body.startswith(b"http://ns.adobe.com/xap/1.0/\0"))
        or marker == 0xED  # APP13: Photoshop's resources
        or (marker == 0xE0 and body.startswith(b"JFIF") and len(body) < 14)
        or (marker == 0xEE and body.startswith(b"Adobe") and len(body) < 12)
    )


def _crc_intact(data: bytes, start: int, end: int) -> bool:
    return zlib.crc32(data[start + 4 : end - 4]) == struct.unpack_from(">I", data, end - 4)[0]


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


def _upright_transpose(image: Image.Image) -> Image.Transpose | None:
    """The transpose EXIF asks for; unreadable EXIF means no rotation rather than a failed job."""
    try:
        return _UPRIGHT.get(image.getexif().get(ExifTags.Base.Orientation, 1))  # 1: upright
    except Exception:  # hostile EXIF raises anything from SyntaxError to struct.error
        return None


def as_viewer_shows(image: Image.Image) -> Image.Image:
    """8-bit grey (L) or RGB as a viewer shows the image on a white page, by ``VIEWER_CONVERSIONS``."""
    conversion = VIEWER_CONVERSIONS.get(image.mode)
    if conversion is None:  # the structural check refuses these; a file may reach here otherwise
        raise UndecodableImage(f"images of mode {image.mode} cannot be shown faithfully")
    return conversion(image)


def _opaque(image: Image.Image) -> Image.Image:
    """Colour or grey as it is; a transparent colour key (PNG tRNS, a GIF's index) shows white."""
    if "transparency" in image.info:
        return _on_white(image.convert("RGBA"))
    return image if image.mode in ("L", "RGB") else image.convert("L" if image.mode == "1" else "RGB")


def _on_white(image: Image.Image) -> Image.Image:
    """Composite an image with alpha (LA, RGBA, PA) on white; its alpha band is the paste mask."""
    if image.mode == "PA":
        image = image.convert("RGBA")
    white = Image.new("RGB", image.size, WHITE)
    white.paste(image, mask=image)
    return white


def _premultiplied_on_white(image: Image.Image) -> Image.Image:
    """Premultiplied grey and alpha (TIFF's La): on white, each pixel is grey + (255 - alpha)."""
    return _grey(image, lambda tile: np.minimum(tile[..., 0].astype(np.int16) + 255 - tile[..., 1], 255))


def _sixteen_bit(tile: np.ndarray) -> np.ndarray:
    return tile >> 8  # 257 * v >> 8 == v: the 8-bit picture a 16-bit file was made from, exactly


def _thirty_two_bit(tile: np.ndarray) -> np.ndarray:
    return tile.view(np.uint32) >> 24  # unsigned 32-bit samples (Pillow holds them as int32)


def _unit_float(tile: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(tile, posinf=1, neginf=0), 0, 1) * 255 + 0.5  # 0 is black, 1 white


def _grey(image: Image.Image, to_eight_bits: Callable[[np.ndarray], np.ndarray]) -> Image.Image:
    """A high-depth one-band image as 8-bit grey, converted tile by tile to bound the memory."""
    width, height = image.size
    columns = min(width, _TILE_PIXELS)
    rows = max(1, _TILE_PIXELS // columns)
    grey = np.empty((height, width), np.uint8)
    for top in range(0, height, rows):
        for left in range(0, width, columns):
            box = (left, top, min(left + columns, width), min(top + rows, height))
            grey[box[1] : box[3], box[0] : box[2]] = to_eight_bits(np.asarray(image.crop(box)))
    return Image.fromarray(grey)


# Pillow mode -> 8-bit grey or RGB as a viewer shows it on a white page. The structural check
# (jobs.imagecheck.SHOWN_MODES) refuses every other mode.
VIEWER_CONVERSIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "1": _opaque,
    "L": _opaque,
    "P": _opaque,
    "RGB": _opaque,
    "CMYK": _opaque,
    "YCbCr": _opaque,
    "LA": _on_white,
    "PA": _on_white,
    "RGBA": _on_white,
    "La": _premultiplied_on_white,
    "I;16": lambda image: _grey(image, _sixteen_bit),
    "I;16B": lambda image: _grey(image, _sixteen_bit),
    "I;16L": lambda image: _grey(image, _sixteen_bit),
    "I;16N": lambda image: _grey(image, _sixteen_bit),
    "I": lambda image: _grey(image, _thirty_two_bit),
    "F": lambda image: _grey(image, _unit_float),
}


def to_model_input(image: Image.Image) -> np.ndarray:
    """224x224x3 float32 in [-1, 1], the layout MobileNet was trained on."""
    resized = image.resize(INPUT_SIZE, Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32) / 127.5 - 1.0


def prepare(data: bytes) -> np.ndarray:
    return to_model_input(decode_rgb(data))
