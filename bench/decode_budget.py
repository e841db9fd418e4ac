"""The worst images the structural check admits, decoded as the worker decodes them: CPU and memory each.

    .venv/bin/python -m bench.decode_budget

Each image is as large as ``jobs.imagecheck``'s default limits allow (and as costly per pixel as
its format gets), passes ``inspect_image``, and goes through ``models.preprocessing.prepare`` in a
fresh subprocess that reports its CPU seconds and how far its peak RSS (VmHWM) rose above what it
held before decoding. The budget the limits are chosen for: about 1 s of CPU and 100 MB each.
"""

import io
import json
import math
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from jobs.imagecheck import ImageLimits, inspect_image

LIMITS = ImageLimits()
UPLOAD_LIMIT = 1024 * 1024  # MAX_IMAGE_BYTES's default: an image larger than this never reaches the check


def _size(max_pixels: int) -> tuple[int, int]:
    width = math.isqrt(max_pixels * 4 // 3)
    return width, max_pixels // width


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_rgba() -> bytes:
    return _save(Image.new("RGBA", _size(LIMITS.max_pixels), (40, 90, 200, 128)), "PNG")


def png_grey_16_bit() -> bytes:
    """16-bit grey: Pillow holds it in 2 bytes a pixel; the worker rescales it to 8 bits tile by tile."""
    return _save(Image.new("I;16", _size(LIMITS.max_pixels), 40000), "PNG")


def tiff_float_grey() -> bytes:
    """32-bit floating-point grey, the widest one-band mode: 4 bytes a pixel before the rescale."""
    return _save(Image.new("F", _size(LIMITS.max_pixels), 0.6), "TIFF", compression="tiff_adobe_deflate")


def jpeg_baseline_cmyk() -> bytes:
    return _save(Image.new("CMYK", _size(LIMITS.max_pixels), (40, 90, 200, 10)), "JPEG", quality=90)


def jpeg_progressive_max_scans() -> bytes:
    """A 4:4:4 CMYK progressive JPEG (the most coefficients a JPEG can hold), its last scan
    repeated up to the scan limit: libjpeg walks every block of that component once more per scan."""
    data = _save(Image.new("CMYK", _size(LIMITS.max_pixels), (40, 90, 200, 10)), "JPEG", progressive=True)
    last_scan = data.rindex(b"\xff\xda")
    scan = data[last_scan:-2]
    scans = data.count(b"\xff\xda")
    return data[:-2] + scan * (LIMITS.max_jpeg_scans - scans) + b"\xff\xd9"


def _bmp_rle(bits: int, rows: bytes) -> bytes:
    width, height = _size(LIMITS.max_bmp_rle_pixels)
    pixels = rows * height + b"\x00\x01"
    colours = 1 << bits
    palette = b"".join(bytes([i % 256, 255 - i % 256, 90, 0]) for i in range(colours))
    header = struct.pack(
        "<IiiHHIIiiII", 40, width, height, 1, bits, 1 if bits == 8 else 2, len(pixels), 2835, 2835, colours, 0
    )
    offset = 14 + len(header) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + palette + pixels


def bmp_rle4_runs() -> bytes:
    """RLE4 runs of 255 pixels: Pillow's RLE4 decoder is Python, one loop turn per pixel."""
    width = _size(LIMITS.max_bmp_rle_pixels)[0]
    return _bmp_rle(4, b"\xff\x12" * (width // 255) + bytes([width % 255, 0x12]) + b"\x00\x00")


def bmp_rle8_row_ends() -> bytes:
    """One pixel, then end-of-row: Pillow pads the rest of each row one pixel per loop turn."""
    return _bmp_rle(8, b"\x01\x05\x00\x00")


def bmp_rgb_raw() -> bytes:
    return _save(Image.new("RGB", _size(LIMITS.max_pixels), (40, 90, 200)), "BMP")


def tiff_rgba_deflate() -> bytes:
    return _save(
        Image.new("RGBA", _size(LIMITS.max_pixels), (40, 90, 200, 128)), "TIFF", compression="tiff_adobe_deflate"
    )


def gif_palette() -> bytes:
    return _save(Image.new("P", _size(LIMITS.max_pixels), 7), "GIF")


def webp_lossless_rgba() -> bytes:
    return _save(Image.new("RGBA", _size(LIMITS.max_webp_pixels), (40, 90, 200, 128)), "WEBP", lossless=True)


WORST_CASES = [
    png_rgba,
    png_grey_16_bit,
    tiff_float_grey,
    jpeg_baseline_cmyk,
    jpeg_progressive_max_scans,
    bmp_rgb_raw,
    bmp_rle4_runs,
    bmp_rle8_row_ends,
    tiff_rgba_deflate,
    gif_palette,
    webp_lossless_rgba,
]

_MEASURE = """
import sys, time
from pathlib import Path
from models.preprocessing import prepare
data = Path(sys.argv[1]).read_bytes()
Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
def hwm():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
before, started = hwm(), time.process_time()
prepare(data)
print(time.process_time() - started, (hwm() - before) / 1024)
"""


def measure(data: bytes) -> tuple[float, float]:
    """CPU seconds and peak RSS growth (MB) of prepare() on ``data``, in a fresh interpreter."""
    with tempfile.NamedTemporaryFile(suffix=".img") as file:
        file.write(data)
        file.flush()
        run = subprocess.run(
            [sys.executable, "-c", _MEASURE, file.name],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
    if run.returncode:
        raise RuntimeError(f"decoding failed: {run.stderr}")
    cpu, peak = run.stdout.split()
    return float(cpu), float(peak)


def main() -> None:
    print(f"limits: {LIMITS}")
    print(f"{'image':28} {'size':>11} {'bytes':>9} {'check µs':>9} {'cpu s':>6} {'peak MB':>8}")
    results = {}
    for make in WORST_CASES:
        data = make()
        inspect_image(data, LIMITS)  # warm (numpy's first call); timed below
        started = time.perf_counter()
        facts = inspect_image(data, LIMITS)  # admitted, or this raises: the case is not a worst *admitted* one
        checked = (time.perf_counter() - started) * 1e6
        cpu, peak = measure(data)
        note = "" if len(data) <= UPLOAD_LIMIT else "  (over the 1 MiB upload limit)"
        print(
            f"{make.__name__:28} {facts.width:>5}x{facts.height:<5} {len(data):>9} {checked:>9.0f} "
            f"{cpu:>6.2f} {peak:>8.0f}{note}"
        )
        results[make.__name__] = {"cpu_s": cpu, "peak_mb": peak, "bytes": len(data)}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
