"""What the web admits, the worker classifies: generated images through both sides (hypothesis).

Each example is a picture of some mode, size and format, carrying some metadata (text, XMP,
ICC, EXIF, comments, PNG and JPEG header fields; some of it broken or bloated), maybe damaged (cut short, or missing its
end marker). It goes through the web's check (``webapp.predictions.validation.check_image``) and,
if admitted, through what the worker runs on it (``tasks.classify._prepare_inputs``: the same
structural check, then ``models.preprocessing.prepare``). An image admitted and then not decoded
fails the test; so does an undamaged image refused for anything but its mode.
"""

import io
import zlib
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from jobs.imagecheck import ImageLimits, inspect_image
from models.preprocessing import prepare
from tests.support.hostile_images import ORIENTATION_6, exif, png_chunk
from webapp.errors import ApiError
from webapp.predictions.validation import check_image

EXAMPLES = 400
LIMITS = ImageLimits()
# Format -> the modes Pillow writes it in ("P+t": palette with a transparent index, "L+t"/"RGB+t":
# a transparent colour key). TIFF "I" is written with signed samples, which the check refuses (415).
MODES = {
    "PNG": ["1", "L", "L+t", "LA", "P", "P+t", "RGB", "RGB+t", "RGBA", "I;16"],
    "JPEG": ["L", "RGB", "CMYK"],
    "GIF": ["P", "P+t", "L"],
    "WEBP": ["RGB", "RGBA"],
    "BMP": ["1", "L", "P", "RGB"],
    "TIFF": ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr", "I;16", "I;16B", "F", "I"],
}
TIFF_COMPRESSIONS = [None, "tiff_lzw", "tiff_adobe_deflate", "packbits"]
REFUSED_MODES = {("TIFF", "I")}  # signed 32-bit samples: no faithful view (docs/failures.md)


@cache
def bloated_xmp() -> str:
    """Photoshop's DocumentAncestors: 2 MB of XMP, beyond the 1 MB Pillow decompresses a text chunk to."""
    return "<x:xmpmeta>" + "".join(f"<rdf:li>xmp.did:{i:032x}</rdf:li>" for i in range(50_000)) + "</x:xmpmeta>"


def exif_blobs() -> list[bytes]:
    return [exif([ORIENTATION_6]), b"Exif\0\0not TIFF at all", exif([ORIENTATION_6], first_ifd=4000)]


def icc_blobs() -> list[bytes]:
    return [b"not an ICC profile", bytes(128) + b"acsp" + bytes(64)]


# Metadata as broken as files in the wild carry it: too short for its fields, or failing its checksum.
BROKEN_PNG_CHUNKS = [
    png_chunk(b"gAMA", b""),
    png_chunk(b"pHYs", b"\1"),
    png_chunk(b"cHRM", b""),
    png_chunk(b"iCCP", b"icc\0\0not zlib"),
    png_chunk(b"zTXt", b"Comment\0\0not zlib"),
    png_chunk(b"tIME", bytes(7))[:-1] + b"\0",  # checksum fails
    png_chunk(b"tRNS", b"\1"),
]
BROKEN_JPEG_SEGMENTS = [b"\xff\xe0\0\7JFIF\0", b"\xff\xee\0\7Adobe", b"\xff\xe2\0\x0eICC_PROFILE\0"]


@st.composite
def pictures(draw) -> tuple[Image.Image, str, str]:
    fmt = draw(st.sampled_from(sorted(MODES)))
    mode = draw(st.sampled_from(MODES[fmt]))
    width, height = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    base = mode.removesuffix("+t")
    if base == "I;16" or base == "I;16B":
        image = Image.fromarray(
            (np.asarray(rgb.convert("L")).astype(np.uint16) * 257).astype("<u2" if base == "I;16" else ">u2")
        )
    elif base == "F":
        image = Image.fromarray(np.asarray(rgb.convert("L"), np.float32) / 255)
    elif base == "I":
        image = Image.fromarray(np.asarray(rgb.convert("L")).astype(np.int32) << 16)
    elif base == "P":
        image = rgb.quantize(draw(st.integers(2, 256)))
    elif base in ("LA", "RGBA"):
        image = rgb.convert(base)
        image.putalpha(Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8)))
    else:
        image = rgb.convert(base)
    return image, fmt, mode


@st.composite
def files(draw) -> tuple[bytes, str, str]:
    """(file bytes, format and mode, the damage done to it or "")."""
    image, fmt, mode = draw(pictures())
    options = {}
    if mode.endswith("+t"):
        options["transparency"] = 0 if image.mode in ("P", "L") else (0, 0, 0)
    if fmt in ("PNG", "JPEG", "WEBP", "TIFF") and draw(st.booleans()):
        options["exif"] = draw(
            st.sampled_from(exif_blobs()[:1] if fmt == "TIFF" else exif_blobs())
        )  # TIFF re-parses it
    if fmt in ("PNG", "JPEG", "WEBP", "TIFF") and draw(st.booleans()):
        options["icc_profile"] = draw(st.sampled_from(icc_blobs()))
    if fmt == "PNG" and draw(st.booleans()):
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "a comment")
        info.add_text("Software", "x" * draw(st.integers(0, 5000)), zip=True)
        if draw(st.booleans()):
            info.add_itxt("XML:com.adobe.xmp", bloated_xmp(), zip=True)
        options["pnginfo"] = info
    if fmt == "WEBP":
        options["lossless"] = draw(st.booleans())
        if draw(st.booleans()):
            options["xmp"] = bloated_xmp().encode()
    if fmt == "JPEG":
        options["progressive"] = draw(st.booleans())
        options["comment"] = b"a comment"
    if fmt == "GIF" and draw(st.booleans()):
        options["comment"] = b"a comment"
    if fmt == "TIFF":
        options["compression"] = draw(st.sampled_from(TIFF_COMPRESSIONS))
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    data = buffer.getvalue()
    if fmt == "PNG" and draw(st.booleans()):
        at = data.index(b"IDAT") - 4
        data = data[:at] + draw(st.sampled_from(BROKEN_PNG_CHUNKS)) + data[at:]
    if fmt == "JPEG" and draw(st.booleans()):
        data = data[:2] + draw(st.sampled_from(BROKEN_JPEG_SEGMENTS)) + data[2:]
    damage = draw(st.sampled_from(["", "", "cut", "end marker dropped"]))
    if damage == "cut":
        data = data[: draw(st.integers(1, len(data) - 1))]
    elif damage == "end marker dropped":
        data = {"PNG": data[:-12], "GIF": data[:-1], "JPEG": data[:-2]}.get(fmt, data)
    return data, f"{fmt} {mode}", damage


@pytest.mark.filterwarnings("ignore:.*(EXIF|Tag data):UserWarning")  # Pillow's notes on the broken EXIF
@given(example=files())
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_what_the_web_admits_the_worker_classifies(example):
    data, kind, damage = example
    try:
        check_image(data, LIMITS)
    except ApiError as refused:
        assert refused.status in (415, 422), (kind, damage, refused)
        assert damage or tuple(kind.split()) in REFUSED_MODES, f"undamaged {kind} refused: {refused.detail}"
        event(f"refused {refused.status}{' (' + damage + ')' if damage else ''}")
        return
    inspect_image(data, LIMITS)  # the worker checks again, with the same limits
    array = prepare(data)
    assert array.shape == (224, 224, 3) and np.isfinite(array).all(), kind
    event(f"{kind.split()[0]} admitted and classified{' (' + damage + ')' if damage else ''}")


def test_a_png_whose_xmp_exceeds_pillows_text_limit_is_admitted_and_classified():
    """The reported case: compressed XMP beyond PngImagePlugin.MAX_TEXT_CHUNK failed in the worker."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", bloated_xmp(), zip=True)
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(buffer, "PNG", pnginfo=info)
    data = buffer.getvalue()
    text = data[data.index(b"iTXt") + 4 + len(b"XML:com.adobe.xmp\0\1\0\0\0") :]
    assert len(zlib.decompressobj().decompress(text)) > PngImagePlugin.MAX_TEXT_CHUNK
    check_image(data, LIMITS)
    np.testing.assert_allclose(prepare(data)[0, 0], [10 / 127.5 - 1, 200 / 127.5 - 1, 30 / 127.5 - 1], atol=1e-6)
