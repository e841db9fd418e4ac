"""Is an upload an image the worker can decode within its budget? Answered from the file's structure alone.

No pixel is decoded here: the format comes from the magic bytes and the sizes from the headers,
read by small parsers of our own where Pillow's ``open`` is itself costly or fragile (the WebP
decoder allocates the whole canvas when opened, a GIF's canvas is its logical screen). Only BMP
and TIFF go through Pillow's lazy header parse, after our own checks, inside a try that turns
any error into a refusal. A refused image raises ImageRefused, whose message is safe to show.
"""

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile

from config.settings import DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_JPEG_SCANS, Settings

# The pixel and scan limits are settings (MAX_IMAGE_PIXELS, MAX_JPEG_SCANS; defaults and the
# measurements behind them in config/settings.py). The two below follow from decoder internals.
# Pillow's WebP decoder keeps two RGBA canvases besides the decoded image: about 16 bytes a pixel
# (97 MB at 6 MP).
DEFAULT_MAX_WEBP_PIXELS = 6_000_000
# Pillow's RLE BMP decoder is Python, one loop turn per pixel: a 13 KB file pads 12.6 MP in 1 s,
# 4.2 MP in 0.37 s.
DEFAULT_MAX_BMP_RLE_PIXELS = 2048 * 2048

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}
_JPEG_SOF = {0xC0, 0xC1, 0xC2}  # baseline, extended and progressive Huffman: what Pillow's libjpeg reads
_JPEG_OTHER_SOF = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_DEPTHS = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}
_MAX_CHUNKS = 4096  # chunks, segments or GIF blocks walked before the first image data
_TIFF_COMPRESSIONS = {1: "none", 5: "LZW", 8: "deflate", 32946: "deflate", 32773: "PackBits"}
# Refused ones a client is likely to send, named in the refusal (bilevel fax scans are documents, not photos).
_TIFF_REFUSED_COMPRESSIONS = {2: "CCITT RLE", 3: "CCITT G3 fax", 4: "CCITT G4 fax", 6: "old JPEG", 7: "JPEG"}
_TIFF_INTEGER_TYPES = {3: "H", 4: "I"}  # SHORT, LONG
# The Pillow modes the worker turns into RGB as a viewer shows them (models.preprocessing.VIEWER_CONVERSIONS,
# which a unit test holds equal). Only TIFF opens in modes outside it (LAB, for one): refused with 415.
SHOWN_MODES = frozenset(
    {"1", "L", "P", "RGB", "CMYK", "YCbCr", "LA", "PA", "RGBA", "La", "I;16", "I;16B", "I;16L", "I;16N", "I", "F"}
)


class ImageRefused(ValueError):
    """The upload is not an image the service will take; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS
    max_webp_pixels: int = DEFAULT_MAX_WEBP_PIXELS
    max_bmp_rle_pixels: int = DEFAULT_MAX_BMP_RLE_PIXELS


@dataclass(frozen=True)
class ImageFacts:
    format: str
    extension: str
    width: int
    height: int


def configured_limits(settings: Settings) -> ImageLimits:
    """The limits the service runs with (web and worker read the same settings)."""
    return ImageLimits(max_pixels=settings.MAX_IMAGE_PIXELS, max_jpeg_scans=settings.MAX_JPEG_SCANS)


def inspect_image(data: bytes, limits: ImageLimits) -> ImageFacts:
    """The image's format and size from its headers, or ImageRefused saying why it cannot be taken."""
    if not data:
        raise ImageRefused("The image is empty.")
    if data.startswith(b"\xff\xd8\xff"):
        fmt, (width, height) = "JPEG", _jpeg_size(data, limits)
    elif data.startswith(_PNG_SIGNATURE):
        fmt, (width, height) = "PNG", _png_size(data, limits)
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        fmt, (width, height) = "GIF", _gif_size(data, limits)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        fmt, (width, height) = "WEBP", _webp_size(data, limits)
    elif data[:2] == b"BM":
        fmt, (width, height) = "BMP", _bmp_size(data, limits)
    elif data[:4] in (b"II*\0", b"MM\0*"):
        fmt, (width, height) = "TIFF", _tiff_size(data, limits)
    elif data[:4] in (b"II+\0", b"MM\0+"):
        raise ImageRefused("BigTIFF images are not supported; send a JPEG, PNG, GIF, WebP, BMP or TIFF.", 415)
    else:
        raise ImageRefused("This is not a supported image format; send a JPEG, PNG, GIF, WebP, BMP or TIFF.", 415)
    return ImageFacts(format=fmt, extension=EXTENSIONS[fmt], width=width, height=height)


def _check_pixels(fmt: str, what: str, width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageRefused(f"The {fmt} {what} is {width}x{height} pixels: it has no pixels.")
    if width * height > max_pixels:
        raise ImageRefused(f"The {fmt} {what} is {width}x{height} pixels; the limit is {max_pixels} pixels.")


def _truncated(fmt: str, where: str) -> ImageRefused:
    return ImageRefused(f"The {fmt} is truncated or damaged: {where}.")


def _jpeg_size(data: bytes, limits: ImageLimits) -> tuple[int, int]:
    """Walk the header segments by their lengths to the first scan, then count the scans."""
    pos, size, end = 2, None, len(data)
    for _ in range(_MAX_CHUNKS):
        if pos + 4 > end:
            raise _truncated("JPEG", "it ends inside its headers")
        if data[pos] != 0xFF:
            raise _truncated("JPEG", f"no segment marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker == 0xD9:
            raise _truncated("JPEG", "it ends before any image data")
        length = struct.unpack_from(">H", data, pos + 2)[0]
        segment_end = pos + 2 + length
        if length < 2 or segment_end > end:
            raise _truncated("JPEG", f"a segment at byte {pos} runs past the end of the file")
        if marker in _JPEG_SOF:
            if size is not None:
                raise ImageRefused("The JPEG has two frame headers.")
            size = _jpeg_frame(data, pos, length, limits)
        elif marker in _JPEG_OTHER_SOF:
            raise ImageRefused(f"This JPEG coding process (SOF{marker - 0xC0}) is not supported.", 415)
        elif marker == 0xDA:
            if size is None:
                raise ImageRefused("The JPEG has image data before its frame header.")
            if data.rfind(b"\xff\xd9", segment_end) < 0:
                raise _truncated("JPEG", "it has no end-of-image marker")
            scans = 1 + _count_markers(data, segment_end, 0xDA)
            if scans > limits.max_jpeg_scans:
                raise ImageRefused(f"The JPEG has {scans} scans; the limit is {limits.max_jpeg_scans}.")
            return size
        pos = segment_end
    raise ImageRefused("The JPEG has too many header segments.")


def _count_markers(data: bytes, start: int, marker: int) -> int:
    """Occurrences of 0xFF ``marker`` from ``start``: numpy does it in a tenth of bytes.count's time."""
    tail = np.frombuffer(data, np.uint8, offset=start)
    return int(np.count_nonzero((tail[:-1] == 0xFF) & (tail[1:] == marker)))


def _jpeg_frame(data: bytes, pos: int, length: int, limits: ImageLimits) -> tuple[int, int]:
    if length < 8:
        raise _truncated("JPEG", "its frame header is too short")
    precision, height, width, components = struct.unpack_from(">BHHB", data, pos + 4)
    if precision != 8:
        raise ImageRefused(f"JPEGs of {precision} bits a sample are not supported.", 415)
    if components not in (1, 3, 4):
        raise ImageRefused(f"JPEGs with {components} colour components are not supported.", 415)
    if length < 8 + 3 * components:
        raise _truncated("JPEG", "its frame header is too short")
    _check_pixels("JPEG", "image", width, height, limits.max_pixels)
    return width, height


def _png_size(data: bytes, limits: ImageLimits) -> tuple[int, int]:
    """IHDR, then the chunks before the first IDAT (critical ones' CRCs checked, APNG frames within the
    canvas). An ancillary chunk that fails its checksum is ignored, as libpng and the worker's decode do."""
    if len(data) < 33 or data[12:16] != b"IHDR" or data[8:12] != b"\0\0\0\x0d":
        raise _truncated("PNG", "it does not start with an image header")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    if depth not in _PNG_DEPTHS.get(colour, ()) or compression or filtering or interlace > 1:
        raise ImageRefused(f"The PNG header is invalid (colour type {colour}, bit depth {depth}).")
    _check_pixels("PNG", "image", width, height, limits.max_pixels)
    pos, end = 8, len(data)
    for _ in range(_MAX_CHUNKS):
        if pos + 12 > end:
            raise _truncated("PNG", "it ends before any image data")
        length, kind = struct.unpack_from(">I4s", data, pos)
        chunk_end = pos + 12 + length
        if chunk_end > end:
            raise _truncated("PNG", f"the {_name(kind)} chunk runs past the end of the file")
        if kind == b"IDAT":
            _check_png_ends(data, pos)
            return width, height
        body = data[pos + 8 : pos + 8 + length]
        intact = zlib.crc32(data[pos + 4 : pos + 8 + length]) == struct.unpack_from(">I", data, pos + 8 + length)[0]
        if not intact and not kind[0] & 0x20:
            raise _truncated("PNG", f"the {_name(kind)} chunk fails its checksum")
        if kind == b"fcTL" and intact:
            _check_apng_frame(body, width, height)
        elif kind == b"IEND":
            raise _truncated("PNG", "it ends before any image data")
        pos = chunk_end
    raise ImageRefused("The PNG has too many chunks before its image data.")


def _check_png_ends(data: bytes, pos: int) -> None:
    """An end chunk, or else whole chunks up to the end of the file: a missing IEND is tolerated, as
    browsers and Pillow tolerate it, but not a chunk cut short."""
    if data.rfind(b"IEND", pos) >= 0:
        return
    end = len(data)
    for _ in range(_MAX_CHUNKS * 16):
        if pos == end:
            return
        if pos + 12 > end or pos + 12 + struct.unpack_from(">I", data, pos)[0] > end:
            raise _truncated("PNG", "its last chunk runs past the end of the file")
        pos += 12 + struct.unpack_from(">I", data, pos)[0]
    raise ImageRefused("The PNG has too many chunks.")


def _name(kind: bytes) -> str:
    return repr(kind.decode("latin-1"))


def _check_apng_frame(body: bytes, width: int, height: int) -> None:
    if len(body) < 26:
        raise _truncated("PNG", "an animation frame header is too short")
    _, frame_width, frame_height, x, y = struct.unpack_from(">IIIII", body)
    if not (frame_width > 0 and frame_height > 0 and x + frame_width <= width and y + frame_height <= height):
        raise ImageRefused(
            f"An animation frame of the PNG ({frame_width}x{frame_height} at {x},{y}) "
            f"lies outside its {width}x{height} canvas."
        )


def _gif_size(data: bytes, limits: ImageLimits) -> tuple[int, int]:
    """The logical screen, grown to the first frame as Pillow grows it, both within the limit."""
    if len(data) < 13:
        raise _truncated("GIF", "it ends inside its header")
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    if width * height > limits.max_pixels:  # a 0x0 screen is allowed: Pillow grows it to the first frame
        _check_pixels("GIF", "canvas", width, height, limits.max_pixels)
    colour_table = 3 << ((flags & 7) + 1) if flags & 0x80 else 0
    pos, end = 13 + colour_table, len(data)
    blocks = 0
    while pos < end and blocks < _MAX_CHUNKS * 16:
        introducer = data[pos]
        if introducer == 0x2C:  # image descriptor
            if pos + 10 > end:
                break
            left, top, frame_width, frame_height = struct.unpack_from("<HHHH", data, pos + 1)
            _check_pixels("GIF", "first frame", frame_width, frame_height, limits.max_pixels)
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            _check_pixels("GIF", "canvas", width, height, limits.max_pixels)
            _check_gif_frame_data(data, pos)
            return width, height
        if introducer == 0x3B:
            break
        if introducer != 0x21:
            raise _truncated("GIF", f"an unknown block at byte {pos}")
        pos += 2  # introducer and label, then data sub-blocks up to an empty one
        while pos < end and data[pos] and blocks < _MAX_CHUNKS * 16:
            pos += data[pos] + 1
            blocks += 1
        pos += 1
    if blocks >= _MAX_CHUNKS * 16:
        raise ImageRefused("The GIF has too many blocks before its first image.")
    raise _truncated("GIF", "it ends before any image")


def _check_gif_frame_data(data: bytes, pos: int) -> None:
    """The first frame's pixel data, a chain of sub-blocks, ends within the file; the trailer after
    it may be missing (browsers and Pillow show such a GIF)."""
    flags, end = data[pos + 9], len(data)
    pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # descriptor, local colours
    if pos < end and data[pos] > 8:
        raise ImageRefused(f"The GIF's first image has an LZW code size of {data[pos]}; at most 8 is valid.")
    pos += 1
    while pos < end and data[pos]:
        pos += data[pos] + 1
    if pos >= end:
        raise _truncated("GIF", "its first image runs past the end of the file")


def _webp_size(data: bytes, limits: ImageLimits) -> tuple[int, int]:
    """The canvas (VP8X) and the first frame or bitstream, both within the WebP limit; the whole RIFF
    container in the file (libwebp's demuxer refuses a cut one, even if the image came before the cut)."""
    end = 8 + struct.unpack_from("<I", data, 4)[0]
    if end > len(data):
        raise _truncated("WebP", f"it is {len(data)} bytes long but declares {end}")
    pos, canvas, animated, animation_header = 12, None, False, False
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > end:
            raise _truncated("WebP", "it ends before any image data")
        kind, length = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            raise _truncated("WebP", f"the {_name(kind)} chunk runs past the end of the file")
        if kind == b"VP8X":
            if canvas is not None or pos != 12 or length < 10:
                raise ImageRefused("The WebP extended header is invalid.")
            canvas, animated = (_u24(body, 4) + 1, _u24(body, 7) + 1), bool(body[0] & 0x02)
            _check_pixels("WebP", "canvas", *canvas, limits.max_webp_pixels)
        elif kind == b"ANIM":
            animation_header = True
        elif kind in (b"VP8 ", b"VP8L", b"ANMF"):
            if kind == b"ANMF" and canvas is None:
                raise ImageRefused("The WebP has an animation frame but no extended header.")
            if (kind == b"ANMF") != animated or (animated and not animation_header):
                raise ImageRefused("The WebP's extended header, animation header and first image disagree.")
            x, y, width, height = _webp_frame(kind, body)
            _check_pixels("WebP", "image", width, height, limits.max_webp_pixels)
            if canvas is not None and (x + width > canvas[0] or y + height > canvas[1]):
                raise ImageRefused(f"The WebP's first frame ({width}x{height} at {x},{y}) lies outside its canvas.")
            return canvas or (width, height)
        pos += 8 + length + (length & 1)
    raise ImageRefused("The WebP has too many chunks before its image data.")


def _webp_frame(kind: bytes, body: bytes) -> tuple[int, int, int, int]:
    """Offset and size of the first frame: a still bitstream's header or an animation frame's."""
    if kind == b"VP8 ":
        if len(body) < 10 or body[3:6] != b"\x9d\x01\x2a":
            raise _truncated("WebP", "its VP8 bitstream header is invalid")
        width, height = struct.unpack_from("<HH", body, 6)
        return 0, 0, width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L":
        if len(body) < 5 or body[0] != 0x2F:
            raise _truncated("WebP", "its lossless bitstream header is invalid")
        bits = struct.unpack_from("<I", body, 1)[0]
        return 0, 0, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if len(body) < 16:
        raise _truncated("WebP", "an animation frame header is too short")
    return 2 * _u24(body, 0), 2 * _u24(body, 3), _u24(body, 6) + 1, _u24(body, 9) + 1


def _u24(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 3], "little")


def _bmp_size(data: bytes, limits: ImageLimits) -> tuple[int, int]:
    """Size from the header, then Pillow's header parse; uncompressed pixel rows must all be in the file."""
    if len(data) < 26:
        raise _truncated("BMP", "it ends inside its header")
    if struct.unpack_from("<I", data, 14)[0] == 12:  # OS/2 header
        width, height = struct.unpack_from("<HH", data, 18)
    else:
        width, height = struct.unpack_from("<ii", data, 18)
    _check_pixels("BMP", "image", width, abs(height), limits.max_pixels)
    image = _pillow_header(data, "BMP")
    tile = image.tile[0] if len(image.tile) == 1 else None
    if tile is None or tile.codec_name not in ("raw", "bmp_rle"):
        raise ImageRefused("This kind of BMP is not supported.", 415)
    if tile.codec_name == "raw" and tile.offset + tile.args[1] * abs(height) > len(data):  # type: ignore[index]
        raise _truncated("BMP", "its pixel rows run past the end of the file")
    if tile.codec_name == "bmp_rle":
        _check_pixels("run-length compressed BMP", "image", width, abs(height), limits.max_bmp_rle_pixels)
    return image.size


def _tiff_size(data: bytes, limits: ImageLimits) -> tuple[int, int]:
    """The first IFD: size, compression and a strip or tile layout that lies within the file."""
    order = "<" if data[:2] == b"II" else ">"
    tags = _tiff_ifd(data, order)

    def number(tag: int, default: int | None = None) -> int:
        values = _tiff_integers(data, order, tags, tag)
        if values is not None:
            return values[0]
        if default is None:
            raise ImageRefused(f"The TIFF lacks the required tag {tag}.")
        return default

    width, height = number(256), number(257)
    _check_pixels("TIFF", "image", width, height, limits.max_pixels)
    compression = number(259, 1)
    if compression not in _TIFF_COMPRESSIONS:
        raise ImageRefused(
            f"TIFF compression {compression}{_named(_TIFF_REFUSED_COMPRESSIONS.get(compression))} is not "
            "supported; use one of "
            f"{', '.join(sorted(set(_TIFF_COMPRESSIONS.values())))}.",
            415,
        )
    planes = number(277, 1) if number(284, 1) == 2 else 1
    if 322 in tags or 324 in tags:
        tile_width, tile_height = number(322), number(323)
        if not tile_width or not tile_height:
            raise ImageRefused("The TIFF's tiles have no pixels.")
        expected = -(-width // tile_width) * -(-height // tile_height) * planes
        offsets, counts = _tiff_integers(data, order, tags, 324), _tiff_integers(data, order, tags, 325)
    else:
        rows = min(number(278, height), height)
        if not rows:
            raise ImageRefused("The TIFF's strips have no rows.")
        expected = -(-height // rows) * planes
        offsets, counts = _tiff_integers(data, order, tags, 273), _tiff_integers(data, order, tags, 279)
    if offsets is None or counts is None or len(offsets) != expected or len(counts) != expected:
        raise ImageRefused(f"The TIFF's strip or tile table does not match its size (expected {expected} entries).")
    if any(offset + count > len(data) for offset, count in zip(offsets, counts)):
        raise _truncated("TIFF", "its image data runs past the end of the file")
    image = _pillow_header(data, "TIFF")
    _check_tiff_samples(image.mode, number(262, 1), number(258, 1), number(339, 1))
    return image.size


def _check_tiff_samples(mode: str, photometric: int, bits: int, sample_format: int) -> None:
    """Refuse, naming the mode, what the worker's RGB conversion cannot show as a viewer does."""
    if mode not in SHOWN_MODES:
        raise ImageRefused(f"TIFF images of mode {mode} cannot be shown faithfully; send RGB or grey.", 415)
    if sample_format == 2:
        raise ImageRefused(f"TIFF images of signed integer samples (mode {mode}) are not supported.", 415)
    if mode.startswith("I;16") and bits != 16:
        raise ImageRefused(f"TIFF images of {bits}-bit grey samples (mode {mode}) are not supported.", 415)
    if photometric == 0 and bits > 8:
        raise ImageRefused(f"TIFF images of {bits}-bit white-is-zero grey (mode {mode}) are not supported.", 415)


def _named(name: str | None) -> str:
    return f" ({name})" if name else ""


def _tiff_ifd(data: bytes, order: str) -> dict[int, int]:
    """Tag -> where its 12-byte entry starts, for the first IFD (what Pillow decodes; other IFDs are ignored)."""
    if len(data) < 8:
        raise _truncated("TIFF", "it ends inside its header")
    ifd = struct.unpack_from(order + "I", data, 4)[0]
    if ifd < 8 or ifd + 2 > len(data):
        raise _truncated("TIFF", "its first directory lies outside the file")
    entries = struct.unpack_from(order + "H", data, ifd)[0]
    if ifd + 2 + 12 * entries > len(data):
        raise _truncated("TIFF", "its first directory runs past the end of the file")
    return {struct.unpack_from(order + "H", data, pos)[0]: pos for pos in range(ifd + 2, ifd + 2 + 12 * entries, 12)}


def _tiff_integers(data: bytes, order: str, tags: dict[int, int], tag: int) -> tuple[int, ...] | None:
    """The tag's values, which must be SHORTs or LONGs lying within the file; None if the tag is absent."""
    if tag not in tags:
        return None
    kind, count = struct.unpack_from(order + "HI", data, tags[tag] + 2)
    if kind not in _TIFF_INTEGER_TYPES or count == 0:
        raise ImageRefused(f"The TIFF's tag {tag} must hold integers (SHORT or LONG), not type {kind}.")
    size = count * (2 if kind == 3 else 4)
    value_at = tags[tag] + 8 if size <= 4 else struct.unpack_from(order + "I", data, tags[tag] + 8)[0]
    if value_at + size > len(data):
        raise _truncated("TIFF", f"the value of tag {tag} lies outside the file")
    return struct.unpack_from(f"{order}{count}{_TIFF_INTEGER_TYPES[kind]}", data, value_at)


def _pillow_header(data: bytes, fmt: str) -> ImageFile.ImageFile:
    """Pillow's lazy open (headers only); any error it raises on a hostile header becomes ImageRefused."""
    try:
        return Image.open(io.BytesIO(data), formats=[fmt])
    except Exception:
        raise _truncated(fmt, "its header could not be read") from None
