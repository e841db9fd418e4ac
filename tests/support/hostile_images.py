"""An adversarial image corpus, built in code (no committed binaries): what red teams send, and odd but valid files.

Each entry says what must happen to it:
- ``refused``: the web's structural check (``jobs.imagecheck.inspect_image``) refuses it with a 4xx;
- ``failed``: it passes the structural check but the worker cannot decode it: the job fails with a reason;
- ``done``: a valid if odd image that the worker must classify.
Every file is small (< 300 KB) and the whole corpus builds in well under two seconds.
"""

import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from PIL import Image


class HostileImage(NamedTuple):
    name: str
    make: Callable[[], bytes]
    expected: str  # "refused", "failed" or "done"
    status: int | None = None  # the HTTP status a refusal must carry, where it matters


def photo(size=(96, 64), mode="RGB") -> Image.Image:
    """A small picture with a white left half, so a rotation shows."""
    image = Image.new("RGB", size, (30, 60, 200))
    image.paste((255, 255, 255), (0, 0, size[0] // 2, size[1]))
    return image.convert(mode)


def save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# --- EXIF -----------------------------------------------------------------------------------------

SHORT, LONG, ASCII, RATIONAL = 3, 4, 2, 5


def exif(entries, next_ifd=0, first_ifd=8) -> bytes:
    """APP1 EXIF payload: a little-endian TIFF with one IFD of (tag, type, count, value bytes) entries."""
    base = first_ifd + 2 + 12 * len(entries) + 4
    table, values = b"", b""
    for tag, kind, count, value in entries:
        if len(value) <= 4:
            table += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
        else:
            table += struct.pack("<HHII", tag, kind, count, base + len(values))
            values += value
    head = b"II*\0" + struct.pack("<I", first_ifd) + bytes(max(0, first_ifd - 8))
    return b"Exif\0\0" + head + struct.pack("<H", len(entries)) + table + struct.pack("<I", next_ifd) + values


ORIENTATION_6 = (0x0112, SHORT, 1, struct.pack("<H", 6))


def jpeg_exif_orientation_6() -> bytes:
    return save(photo(), "JPEG", exif=exif([ORIENTATION_6]))


def jpeg_exif_orientation_6_wrong_tag_type() -> bytes:
    """ResolutionUnit as ASCII: Pillow's exif_transpose re-serialises it and raises struct.error."""
    return save(photo(), "JPEG", exif=exif([ORIENTATION_6, (0x0128, ASCII, 4, b"ab\0\0")]))


def jpeg_exif_ifd_loop() -> bytes:
    """IFD0 names itself as the next IFD and as its EXIF sub-IFD."""
    return save(photo(), "JPEG", exif=exif([ORIENTATION_6, (0x8769, LONG, 1, struct.pack("<I", 8))], next_ifd=8))


def jpeg_exif_offsets_out_of_range() -> bytes:
    return save(
        photo(),
        "JPEG",
        exif=exif(
            [ORIENTATION_6, (0x010F, ASCII, 64, b"x" * 64), (0x8769, LONG, 1, struct.pack("<I", 0xFFFFFF00))],
            next_ifd=0x7FFFFFFF,
        )[:-64],
    )


def jpeg_exif_first_ifd_past_the_end() -> bytes:
    return save(photo(), "JPEG", exif=b"Exif\0\0II*\0" + struct.pack("<I", 0xFFFFFFF0))


def png_exif_not_tiff() -> bytes:
    """An eXIf chunk that is not TIFF data: Pillow's exif_transpose raises SyntaxError."""
    return save(photo(), "PNG", exif=b"Exif\0\0this is not TIFF data at all")


# --- JPEG -----------------------------------------------------------------------------------------


def repeat_last_scan(data: bytes, scans: int) -> bytes:
    last = data.rindex(b"\xff\xda")
    return data[:-2] + data[last:-2] * (scans - data.count(b"\xff\xda")) + b"\xff\xd9"


def jpeg_scan_bomb() -> bytes:
    """A progressive JPEG whose last scan repeats 8,000 times: libjpeg walks every block once per scan."""
    return repeat_last_scan(save(Image.new("L", (1024, 1024), 90), "JPEG", progressive=True), 8000)


def jpeg_progressive() -> bytes:
    return save(photo(), "JPEG", progressive=True)


def jpeg_huge_dimensions() -> bytes:
    """A real 8x8 JPEG whose frame header claims 60000x60000."""
    data = bytearray(save(photo((8, 8)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)
    return bytes(data)


def jpeg_cut_in_headers() -> bytes:
    return save(photo(), "JPEG")[:120]


def jpeg_cut_in_scan() -> bytes:
    data = save(photo((300, 200)), "JPEG")
    return data[: len(data) // 2]


def jpeg_bad_huffman_table() -> bytes:
    """Headers well formed, but the Huffman table claims more codes than its length allows."""
    data = bytearray(save(photo(), "JPEG"))
    dht = data.index(b"\xff\xc4")
    data[dht + 5 : dht + 21] = b"\xff" * 16
    return bytes(data)


def jpeg_cmyk() -> bytes:
    return save(photo(mode="CMYK"), "JPEG")


def jpeg_grey() -> bytes:
    return save(photo(mode="L"), "JPEG")


def mpo() -> bytes:
    return save(photo(), "MPO", save_all=True, append_images=[photo().rotate(180)])


def _jpeg_with_segment(marker: int, body: bytes) -> bytes:
    data = save(photo(), "JPEG")
    return data[:2] + b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body + data[2:]


def jpeg_short_jfif_segment() -> bytes:
    return _jpeg_with_segment(0xE0, b"JFIF\0")


def jpeg_short_adobe_segment() -> bytes:
    return _jpeg_with_segment(0xEE, b"Adobe")


def jpeg_short_icc_segment() -> bytes:
    return _jpeg_with_segment(0xE2, b"ICC_PROFILE\0")


def jpeg_photoshop_resource_cut_short() -> bytes:
    return _jpeg_with_segment(0xED, b"Photoshop 3.0\0" + b"8BIM\x04\x04")


def jpeg_with_zip_appended() -> bytes:
    """A polyglot: a JPEG that is also a ZIP archive (unzip reads it from the end)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("payload.html", "<script>alert(1)</script>")
    return save(photo(), "JPEG") + archive.getvalue()


def jpeg_12_bit() -> bytes:
    data = bytearray(save(photo(), "JPEG"))
    data[data.index(b"\xff\xc0") + 4] = 12
    return bytes(data)


def jpeg_lossless_process() -> bytes:
    data = bytearray(save(photo(), "JPEG"))
    data[data.index(b"\xff\xc0") + 1] = 0xC3
    return bytes(data)


# --- PNG ------------------------------------------------------------------------------------------


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int, height: int, depth: int, colour: int, rows: bytes, extra: bytes = b"") -> bytes:
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + extra
        + png_chunk(b"IDAT", zlib.compress(rows, 9))
        + png_chunk(b"IEND", b"")
    )


def png_40_megapixels() -> bytes:
    """8000x5000 one-bit, all zero: a few kilobytes that decode to 150 MB."""
    return png(8000, 5000, 1, 0, bytes((1 + 1000) * 5000))


def png_16_bit_rgb() -> bytes:
    return png(40, 30, 16, 2, b"".join(b"\0" + bytes(range(240)) for _ in range(30)))


def png_16_bit_grey() -> bytes:
    return save(photo(mode="I;16"), "PNG")


def png_palette_with_transparency() -> bytes:
    return save(photo(mode="P"), "PNG", transparency=0)


def png_la() -> bytes:
    return save(photo(mode="LA"), "PNG")


def png_one_bit() -> bytes:
    return save(photo(mode="1"), "PNG")


def png_cut_in_headers() -> bytes:
    return save(photo(), "PNG")[:30]


def png_cut_in_data() -> bytes:
    data = save(photo((300, 200)), "PNG")
    return data[: len(data) // 2]


def png_cut_stream_in_whole_chunks() -> bytes:
    """Every chunk intact, but the compressed pixel stream inside IDAT stops halfway."""
    raw = b"".join(b"\0" + bytes(random.Random(row).randbytes(300)) for row in range(100))
    stream = zlib.compress(raw)
    header = struct.pack(">IIBBBBB", 100, 100, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", stream[: len(stream) // 2])
        + png_chunk(b"IEND", b"")
    )


def png_bad_header_crc() -> bytes:
    data = bytearray(save(photo(), "PNG"))
    data[29] ^= 0xFF
    return bytes(data)


def apng() -> bytes:
    return save(photo(), "PNG", save_all=True, append_images=[photo().rotate(180)], duration=100)


def apng_frame_outside_canvas() -> bytes:
    control = struct.pack(">IIIIIHHBB", 0, 5000, 5000, 0, 0, 1, 1, 0, 0)
    return png(16, 16, 8, 0, bytes(17 * 16), png_chunk(b"acTL", struct.pack(">II", 1, 0)) + png_chunk(b"fcTL", control))


def _png_before_idat(chunks: bytes) -> bytes:
    data = save(photo(), "PNG")
    idat = data.index(b"IDAT") - 4
    return data[:idat] + chunks + data[idat:]


def png_xmp_beyond_pillows_text_limit() -> bytes:
    """Photoshop's DocumentAncestors bloat: compressed XMP of 2 MB, past Pillow's 1 MB MAX_TEXT_CHUNK."""
    ancestors = "".join(f"<rdf:li>xmp.did:{i:032x}</rdf:li>" for i in range(40_000)).encode()
    body = b"XML:com.adobe.xmp\0\1\0\0\0" + zlib.compress(ancestors, 9)
    return _png_before_idat(png_chunk(b"iTXt", body))


def png_ztxt_bomb() -> bytes:
    """A zTXt comment of 8 MB in 8 KB: past the 1 MB Pillow decompresses a text chunk to."""
    return _png_before_idat(png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(bytes(8 << 20), 9)))


def png_icc_bomb() -> bytes:
    return _png_before_idat(png_chunk(b"iCCP", b"bomb\0\0" + zlib.compress(bytes(8 << 20), 9)))


def png_broken_icc() -> bytes:
    return _png_before_idat(png_chunk(b"iCCP", b"broken\0\0" + b"not zlib, not a profile"))


def png_ancillary_chunk_fails_its_checksum() -> bytes:
    chunk = bytearray(png_chunk(b"tIME", bytes(7)))
    chunk[-1] ^= 0xFF
    return _png_before_idat(bytes(chunk))


def png_transparency_of_the_wrong_length() -> bytes:
    """A one-byte tRNS on an RGB image (it needs six): libpng ignores it, Pillow fails on it."""
    return _png_before_idat(png_chunk(b"tRNS", b"\1"))


def png_empty_gamma_and_density() -> bytes:
    return _png_before_idat(png_chunk(b"gAMA", b"") + png_chunk(b"pHYs", b"\1"))


def png_without_end_chunk() -> bytes:
    return save(photo(), "PNG")[:-12]


def png_with_html_after_the_end() -> bytes:
    return save(photo(), "PNG") + b"<html><script>alert(1)</script></html>"


# --- GIF ------------------------------------------------------------------------------------------


def _gif(screen: tuple[int, int], frame: tuple[int, int, int, int]) -> bytes:
    """A GIF89a with a two-colour table and one frame (left, top, width, height) of colour 0."""
    width, height = frame[2:]
    pixels = _lzw_zeros(width * height)
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", *screen, 0x80, 0, 0)
        + b"\0\0\0\xff\xff\xff"
        + b"\x2c"
        + struct.pack("<HHHHB", *frame, 0)
        + b"\x02"
        + pixels
        + b"\x3b"
    )


def _lzw_zeros(count: int) -> bytes:
    """LZW (2-bit minimum code size) for ``count`` pixels of colour 0: a clear code before every
    two pixels keeps the table small, so every code stays 3 bits wide. Packed into sub-blocks."""
    codes = []
    for done in range(0, count, 2):
        codes += [4] + [0] * min(2, count - done)
    codes.append(5)
    packed = sum(code << (3 * index) for index, code in enumerate(codes)).to_bytes((3 * len(codes) + 7) // 8, "little")
    return b"".join(bytes([len(packed[i : i + 255])]) + packed[i : i + 255] for i in range(0, len(packed), 255)) + b"\0"


def gif_canvas_bomb() -> bytes:
    """A 65535x65535 logical screen holding a 1x1 frame."""
    return _gif((65535, 65535), (0, 0, 1, 1))


def gif_frame_far_outside_the_screen() -> bytes:
    """A 1x1 screen whose frame sits at (60000, 60000): Pillow grows the canvas to hold it."""
    return _gif((1, 1), (60000, 60000, 1, 1))


def gif_small() -> bytes:
    return _gif((4, 4), (0, 0, 4, 4))


def gif_without_trailer() -> bytes:
    return _gif((4, 4), (0, 0, 4, 4))[:-1]


def gif_cut_in_its_first_frame() -> bytes:
    return _gif((64, 64), (0, 0, 64, 64))[:40]


def _gif_with_extension(block: bytes) -> bytes:
    data = gif_small()
    return data[:19] + block + data[19:]  # after the header, screen and two-colour table


def gif_graphic_control_of_the_wrong_size() -> bytes:
    return _gif_with_extension(b"\x21\xf9\x02\x00\x00\x00")


def gif_loop_count_without_data() -> bytes:
    return _gif_with_extension(b"\x21\xff\x0bNETSCAPE2.0\x00")


def gif_animated() -> bytes:
    return save(photo(mode="P"), "GIF", save_all=True, append_images=[photo().rotate(180).convert("P")])


def gif_javascript_polyglot() -> bytes:
    """``GIF89a/*`` opens a JavaScript comment; the screen is then 10799 pixels wide."""
    screen = struct.unpack("<H", b"/*")[0], 10
    return _gif(screen, (0, 0, 4, 4))[:-1] + b"*/=alert(1);" + b"\x3b"


def gif_lzw_code_size_too_large() -> bytes:
    data = bytearray(_gif((4, 4), (0, 0, 4, 4)))
    data[13 + 6 + 10] = 15  # minimum code size byte after the image descriptor
    return bytes(data)


# --- WebP -----------------------------------------------------------------------------------------


def riff(*chunks: bytes) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


def _u24(value: int) -> bytes:
    return value.to_bytes(3, "little")


def _one_pixel_vp8l() -> bytes:
    data = save(Image.new("RGBA", (1, 1), (255, 0, 0, 255)), "WEBP", lossless=True)
    return data[12:]  # the VP8L chunk


def webp_canvas_bomb() -> bytes:
    """An animated WebP of ~90 bytes: a 6000x6600 canvas, one 1x1 frame."""
    header = webp_chunk(b"VP8X", bytes([0x02, 0, 0, 0]) + _u24(6000 - 1) + _u24(6600 - 1))
    anim = webp_chunk(b"ANIM", b"\0\0\0\0\0\0")
    frame = webp_chunk(b"ANMF", _u24(0) + _u24(0) + _u24(0) + _u24(0) + _u24(100) + b"\0" + _one_pixel_vp8l())
    return riff(header, anim, frame)


def webp_frame_outside_canvas() -> bytes:
    header = webp_chunk(b"VP8X", bytes([0x02, 0, 0, 0]) + _u24(15) + _u24(15))
    frame = webp_chunk(b"ANMF", _u24(100) + _u24(0) + _u24(0) + _u24(0) + _u24(100) + b"\0" + _one_pixel_vp8l())
    return riff(header, webp_chunk(b"ANIM", bytes(6)), frame)


def webp_animation_flag_on_a_still_image() -> bytes:
    """VP8X says animated, but no ANIM header follows, only a still bitstream: libwebp will not open it."""
    still = save(photo(), "WEBP")[12:]
    return riff(webp_chunk(b"VP8X", b"\x02\0\0\0" + _u24(95) + _u24(63)), still)


def webp_lossy() -> bytes:
    return save(photo(), "WEBP")


def webp_animated() -> bytes:
    return save(photo(), "WEBP", save_all=True, append_images=[photo().rotate(180)], duration=100)


def webp_corrupt_bitstream() -> bytes:
    data = bytearray(save(photo((200, 150)), "WEBP", quality=90))
    data[40:] = bytes(random.Random(7).randbytes(len(data) - 40))
    return bytes(data)


# --- BMP ------------------------------------------------------------------------------------------


def bmp(width: int, height: int, bits: int, compression: int, pixels: bytes, colours: int = 0) -> bytes:
    palette = b"".join(bytes([i % 256, 255 - i % 256, 90, 0]) for i in range(colours))
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, compression, len(pixels), 2835, 2835, colours, 0)
    offset = 14 + len(header) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + palette + pixels


def bmp_huge_declared_size() -> bytes:
    return bmp(100_000, 100_000, 24, 0, bytes(64))


def bmp_rows_past_the_end() -> bytes:
    return bmp(1000, 1000, 24, 0, bytes(300))


def bmp_rle_row_end_bomb() -> bytes:
    """RLE8, one pixel then end-of-row, 3072 times: Pillow pads each 4096-pixel row in Python."""
    return bmp(4096, 3072, 8, 1, b"\x01\x05\x00\x00" * 3072 + b"\x00\x01", 256)


def bmp_rle8_small() -> bytes:
    return bmp(16, 4, 8, 1, (b"\x10\x07\x00\x00") * 4 + b"\x00\x01", 256)


def bmp_one_bit() -> bytes:
    return save(photo(mode="1"), "BMP")


def bmp_top_down() -> bytes:
    return bmp(4, -2, 24, 0, bytes(range(24)))


# --- TIFF -----------------------------------------------------------------------------------------

FLOAT = 11


def tiff(entries, pixels: bytes) -> bytes:
    """A little-endian TIFF, pixel data at byte 8, then one IFD of (tag, type, values) entries."""
    ifd_at = 8 + len(pixels) + (len(pixels) & 1)
    sizes = {SHORT: ("H", 2), LONG: ("I", 4), FLOAT: ("f", 4), RATIONAL: ("II", 8)}
    base = ifd_at + 2 + 12 * len(entries) + 4
    table, values = b"", b""
    for tag, kind, items in sorted(entries):
        code, size = sizes[kind]
        packed = b"".join(struct.pack("<" + code, *(item if isinstance(item, tuple) else (item,))) for item in items)
        if len(packed) <= 4:
            table += struct.pack("<HHI", tag, kind, len(items)) + packed.ljust(4, b"\0")
        else:
            table += struct.pack("<HHII", tag, kind, len(items), base + len(values))
            values += packed
    return (
        b"II*\0"
        + struct.pack("<I", ifd_at)
        + pixels
        + b"\0" * (len(pixels) & 1)
        + struct.pack("<H", len(entries))
        + table
        + b"\0\0\0\0"
        + values
    )


def _grey_tiff(width=8, height=8, offsets=None, offsets_type=LONG, counts=None, compression=1) -> bytes:
    pixels = bytes(range(width * height))
    return tiff(
        [
            (256, SHORT, [width]),
            (257, SHORT, [height]),
            (258, SHORT, [8]),
            (259, SHORT, [compression]),
            (262, SHORT, [1]),
            (273, offsets_type, offsets or [8]),
            (277, SHORT, [1]),
            (278, SHORT, [height]),
            (279, LONG, counts or [len(pixels)]),
        ],
        pixels,
    )


def tiff_float_strip_offsets() -> bytes:
    return _grey_tiff(offsets=[8.0], offsets_type=FLOAT)


def tiff_strip_past_the_end() -> bytes:
    return _grey_tiff(offsets=[8], counts=[1 << 20])


def tiff_strip_counts_disagree() -> bytes:
    return _grey_tiff(offsets=[8, 16], counts=[8])


def tiff_jpeg_compression() -> bytes:
    return _grey_tiff(compression=7)


def tiff_huge_dimensions() -> bytes:
    return tiff(
        [(256, LONG, [100_000]), (257, LONG, [100_000]), (259, SHORT, [1]), (273, LONG, [8]), (279, LONG, [8])],
        bytes(8),
    )


def tiff_small_grey() -> bytes:
    return _grey_tiff()


def tiff_lzw_garbage() -> bytes:
    """A well-formed layout whose LZW strip is noise."""
    pixels = bytes(random.Random(3).randbytes(64))
    return tiff(
        [
            (256, SHORT, [8]),
            (257, SHORT, [8]),
            (258, SHORT, [8]),
            (259, SHORT, [5]),
            (262, SHORT, [1]),
            (273, LONG, [8]),
            (277, SHORT, [1]),
            (278, SHORT, [8]),
            (279, LONG, [64]),
        ],
        pixels,
    )


def tiff_lzw() -> bytes:
    return save(photo(), "TIFF", compression="tiff_lzw")


def tiff_tiled() -> bytes:
    return save(photo(), "TIFF", tile=(16, 16))


def _tiff_grey_samples(bits: int, sample_format: int = 1, photometric: int = 1) -> bytes:
    pixels = bytes(range(64)) * (bits // 8)
    return tiff(
        [
            (256, SHORT, [8]),
            (257, SHORT, [8 * 8 // bits]),
            (258, SHORT, [bits]),
            (259, SHORT, [1]),
            (262, SHORT, [photometric]),
            (273, LONG, [8]),
            (277, SHORT, [1]),
            (278, SHORT, [8 * 8 // bits]),
            (279, LONG, [len(pixels)]),
            (339, SHORT, [sample_format]),
        ],
        pixels,
    )


def tiff_16_bit_grey() -> bytes:
    return _tiff_grey_samples(16)


def tiff_16_bit_big_endian_grey() -> bytes:
    return save(Image.fromarray(np.asarray(photo(mode="L"), ">u2") * 257), "TIFF")


def tiff_float_grey() -> bytes:
    return _tiff_grey_samples(32, sample_format=3)


def tiff_signed_16_bit_grey() -> bytes:
    return _tiff_grey_samples(16, sample_format=2)


def tiff_16_bit_white_is_zero() -> bytes:
    return _tiff_grey_samples(16, photometric=0)


def tiff_cielab() -> bytes:
    return save(photo(mode="LAB"), "TIFF")


def tiff_ccitt_g4() -> bytes:
    return save(photo(mode="1"), "TIFF", compression="group4")


def bigtiff() -> bytes:
    return b"II+\0\x08\0\0\0" + bytes(64)


# --- not images -----------------------------------------------------------------------------------


def zero_length() -> bytes:
    return b""


def random_bytes() -> bytes:
    return random.Random(1).randbytes(4096)


def icon() -> bytes:
    return save(photo((32, 32)), "ICO")


def html() -> bytes:
    return b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>"


def only_a_jpeg_signature() -> bytes:
    return b"\xff\xd8\xff"


CORPUS = [
    # EXIF: unreadable EXIF means no rotation, never a failed job
    HostileImage("jpeg_exif_orientation_6", jpeg_exif_orientation_6, "done"),
    HostileImage("jpeg_exif_orientation_6_wrong_tag_type", jpeg_exif_orientation_6_wrong_tag_type, "done"),
    HostileImage("jpeg_exif_ifd_loop", jpeg_exif_ifd_loop, "done"),
    HostileImage("jpeg_exif_offsets_out_of_range", jpeg_exif_offsets_out_of_range, "done"),
    HostileImage("jpeg_exif_first_ifd_past_the_end", jpeg_exif_first_ifd_past_the_end, "done"),
    HostileImage("png_exif_not_tiff", png_exif_not_tiff, "done"),
    # JPEG
    HostileImage("jpeg_scan_bomb", jpeg_scan_bomb, "refused", 422),
    HostileImage("jpeg_huge_dimensions", jpeg_huge_dimensions, "refused", 422),
    HostileImage("jpeg_cut_in_headers", jpeg_cut_in_headers, "refused", 422),
    HostileImage("jpeg_cut_in_scan", jpeg_cut_in_scan, "refused", 422),
    HostileImage("jpeg_12_bit", jpeg_12_bit, "refused", 415),
    HostileImage("jpeg_lossless_process", jpeg_lossless_process, "refused", 415),
    HostileImage("jpeg_bad_huffman_table", jpeg_bad_huffman_table, "failed"),
    HostileImage("jpeg_progressive", jpeg_progressive, "done"),
    HostileImage("jpeg_cmyk", jpeg_cmyk, "done"),
    HostileImage("jpeg_grey", jpeg_grey, "done"),
    HostileImage("mpo", mpo, "done"),
    HostileImage("jpeg_with_zip_appended", jpeg_with_zip_appended, "done"),
    HostileImage("jpeg_short_jfif_segment", jpeg_short_jfif_segment, "done"),
    HostileImage("jpeg_short_adobe_segment", jpeg_short_adobe_segment, "done"),
    HostileImage("jpeg_short_icc_segment", jpeg_short_icc_segment, "done"),
    HostileImage("jpeg_photoshop_resource_cut_short", jpeg_photoshop_resource_cut_short, "done"),
    # PNG
    HostileImage("png_40_megapixels", png_40_megapixels, "refused", 422),
    HostileImage("png_cut_in_headers", png_cut_in_headers, "refused", 422),
    HostileImage("png_cut_in_data", png_cut_in_data, "refused", 422),
    HostileImage("png_bad_header_crc", png_bad_header_crc, "refused", 422),
    HostileImage("apng_frame_outside_canvas", apng_frame_outside_canvas, "refused", 422),
    HostileImage("png_cut_stream_in_whole_chunks", png_cut_stream_in_whole_chunks, "failed"),
    HostileImage("png_16_bit_rgb", png_16_bit_rgb, "done"),
    HostileImage("png_16_bit_grey", png_16_bit_grey, "done"),
    HostileImage("png_palette_with_transparency", png_palette_with_transparency, "done"),
    HostileImage("png_la", png_la, "done"),
    HostileImage("png_one_bit", png_one_bit, "done"),
    HostileImage("apng", apng, "done"),
    HostileImage("png_with_html_after_the_end", png_with_html_after_the_end, "done"),
    HostileImage("png_xmp_beyond_pillows_text_limit", png_xmp_beyond_pillows_text_limit, "done"),
    HostileImage("png_ztxt_bomb", png_ztxt_bomb, "done"),
    HostileImage("png_icc_bomb", png_icc_bomb, "done"),
    HostileImage("png_broken_icc", png_broken_icc, "done"),
    HostileImage("png_ancillary_chunk_fails_its_checksum", png_ancillary_chunk_fails_its_checksum, "done"),
    HostileImage("png_without_end_chunk", png_without_end_chunk, "done"),
    HostileImage("png_transparency_of_the_wrong_length", png_transparency_of_the_wrong_length, "done"),
    HostileImage("png_empty_gamma_and_density", png_empty_gamma_and_density, "done"),
    # GIF
    HostileImage("gif_canvas_bomb", gif_canvas_bomb, "refused", 422),
    HostileImage("gif_frame_far_outside_the_screen", gif_frame_far_outside_the_screen, "refused", 422),
    HostileImage("gif_lzw_code_size_too_large", gif_lzw_code_size_too_large, "refused", 422),
    HostileImage("gif_graphic_control_of_the_wrong_size", gif_graphic_control_of_the_wrong_size, "done"),
    HostileImage("gif_loop_count_without_data", gif_loop_count_without_data, "done"),
    HostileImage("gif_small", gif_small, "done"),
    HostileImage("gif_animated", gif_animated, "done"),
    HostileImage("gif_without_trailer", gif_without_trailer, "done"),
    HostileImage("gif_cut_in_its_first_frame", gif_cut_in_its_first_frame, "refused", 422),
    HostileImage("gif_javascript_polyglot", gif_javascript_polyglot, "done"),
    # WebP
    HostileImage("webp_canvas_bomb", webp_canvas_bomb, "refused", 422),
    HostileImage("webp_frame_outside_canvas", webp_frame_outside_canvas, "refused", 422),
    HostileImage("webp_corrupt_bitstream", webp_corrupt_bitstream, "failed"),
    HostileImage("webp_animation_flag_on_a_still_image", webp_animation_flag_on_a_still_image, "refused", 422),
    HostileImage("webp_lossy", webp_lossy, "done"),
    HostileImage("webp_animated", webp_animated, "done"),
    # BMP
    HostileImage("bmp_huge_declared_size", bmp_huge_declared_size, "refused", 422),
    HostileImage("bmp_rows_past_the_end", bmp_rows_past_the_end, "refused", 422),
    HostileImage("bmp_rle_row_end_bomb", bmp_rle_row_end_bomb, "refused", 422),
    HostileImage("bmp_rle8_small", bmp_rle8_small, "done"),
    HostileImage("bmp_one_bit", bmp_one_bit, "done"),
    HostileImage("bmp_top_down", bmp_top_down, "done"),
    # TIFF
    HostileImage("tiff_float_strip_offsets", tiff_float_strip_offsets, "refused", 422),
    HostileImage("tiff_strip_past_the_end", tiff_strip_past_the_end, "refused", 422),
    HostileImage("tiff_strip_counts_disagree", tiff_strip_counts_disagree, "refused", 422),
    HostileImage("tiff_huge_dimensions", tiff_huge_dimensions, "refused", 422),
    HostileImage("tiff_jpeg_compression", tiff_jpeg_compression, "refused", 415),
    HostileImage("bigtiff", bigtiff, "refused", 415),
    HostileImage("tiff_lzw_garbage", tiff_lzw_garbage, "failed"),
    HostileImage("tiff_small_grey", tiff_small_grey, "done"),
    HostileImage("tiff_lzw", tiff_lzw, "done"),
    HostileImage("tiff_tiled", tiff_tiled, "done"),
    HostileImage("tiff_16_bit_grey", tiff_16_bit_grey, "done"),
    HostileImage("tiff_16_bit_big_endian_grey", tiff_16_bit_big_endian_grey, "done"),
    HostileImage("tiff_float_grey", tiff_float_grey, "done"),
    HostileImage("tiff_signed_16_bit_grey", tiff_signed_16_bit_grey, "refused", 415),
    HostileImage("tiff_16_bit_white_is_zero", tiff_16_bit_white_is_zero, "refused", 415),
    HostileImage("tiff_cielab", tiff_cielab, "refused", 415),
    HostileImage("tiff_ccitt_g4", tiff_ccitt_g4, "refused", 415),
    # not images
    HostileImage("zero_length", zero_length, "refused", 422),
    HostileImage("random_bytes", random_bytes, "refused", 415),
    HostileImage("icon", icon, "refused", 415),
    HostileImage("html", html, "refused", 415),
    HostileImage("only_a_jpeg_signature", only_a_jpeg_signature, "refused", 422),
]
