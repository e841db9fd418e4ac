"""The mode table: each Pillow mode becomes the 8-bit picture a viewer shows on a white page.

Pixel by pixel on tiny images; whole photos through the real model are in
tests/integration/test_mode_fidelity.py.
"""

import numpy as np
import pytest
from PIL import Image, PngImagePlugin, TiffImagePlugin

from jobs.imagecheck import SHOWN_MODES, ImageLimits, ImageRefused, inspect_image
from models.preprocessing import VIEWER_CONVERSIONS, UndecodableImage, as_viewer_shows, decode_rgb
from tests.support.hostile_images import save

WHITE = (255, 255, 255)


def rgb(image: Image.Image) -> list:
    return np.asarray(as_viewer_shows(image).convert("RGB")).reshape(-1, 3).tolist()


def grey(*values) -> list:
    return [[v, v, v] for v in values]


def from_bytes(mode: str, values, dtype) -> Image.Image:
    return Image.frombytes(mode, (len(values), 1), np.array(values, dtype).tobytes())


def with_info(image: Image.Image, **info) -> Image.Image:
    image.info.update(info)
    return image


def palette_image(mode: str, pixels: bytes) -> Image.Image:
    image = Image.frombytes(mode, (len(pixels) // len(mode), 1), pixels)
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    return image


CASES = {
    "1": (Image.frombytes("1", (2, 1), b"\x40"), grey(0, 255)),
    "L": (from_bytes("L", [0, 90, 255], np.uint8), grey(0, 90, 255)),
    "L with a transparent key": (with_info(from_bytes("L", [0, 90], np.uint8), transparency=90), [[0] * 3, WHITE]),
    "RGB with a transparent key": (
        with_info(Image.frombytes("RGB", (2, 1), bytes([1, 2, 3, 4, 5, 6])), transparency=(4, 5, 6)),
        [[1, 2, 3], WHITE],
    ),
    "P": (palette_image("P", b"\0\1"), [[10, 20, 30], [200, 100, 50]]),
    "P with a transparent index": (with_info(palette_image("P", b"\0\1"), transparency=1), [[10, 20, 30], WHITE]),
    "PA": (palette_image("PA", bytes([0, 255, 1, 0])), [[10, 20, 30], WHITE]),
    "LA": (Image.frombytes("LA", (3, 1), bytes([40, 255, 40, 0, 40, 128])), grey(40, 255, 148)),
    "RGBA": (Image.frombytes("RGBA", (2, 1), bytes([200, 0, 0, 255, 200, 0, 0, 0])), [[200, 0, 0], WHITE]),
    "La (premultiplied)": (Image.frombytes("La", (3, 1), bytes([40, 255, 0, 0, 20, 128])), grey(40, 255, 147)),
    "CMYK": (Image.frombytes("CMYK", (2, 1), bytes([0, 0, 0, 0, 255, 0, 0, 0])), [WHITE, [0, 255, 255]]),
    "YCbCr": (Image.frombytes("YCbCr", (2, 1), bytes([90, 128, 128, 255, 128, 128])), grey(90, 255)),
    "I;16": (from_bytes("I;16", [0, 90 * 257, 32768, 65535], "<u2"), grey(0, 90, 128, 255)),
    "I;16L": (from_bytes("I;16L", [0, 90 * 257, 65535], "<u2"), grey(0, 90, 255)),
    "I;16B": (from_bytes("I;16B", [0, 90 * 257, 65535], ">u2"), grey(0, 90, 255)),
    "I;16N": (from_bytes("I;16N", [0, 90 * 257, 65535], "=u2"), grey(0, 90, 255)),
    "I (unsigned 32-bit)": (from_bytes("I", [0, 90 * 0x01010101, 0xFFFFFFFF], "<u4"), grey(0, 90, 255)),
    "F (0 is black, 1 white)": (
        from_bytes("F", [0.0, 90 / 255, 1.0, -3.0, 7.0, np.nan, np.inf], "<f4"),
        grey(0, 90, 255, 0, 255, 0, 255),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_each_mode_shows_as_a_viewer_shows_it_on_white(name):
    image, expected = CASES[name]
    shown = rgb(image)
    assert np.abs(np.array(shown) - np.array(expected)).max() <= 1, (shown, expected)


def test_every_mode_of_the_table_has_a_case_and_the_check_admits_exactly_the_table():
    assert {CASES[name][0].mode for name in CASES} == set(VIEWER_CONVERSIONS)
    assert set(VIEWER_CONVERSIONS) == SHOWN_MODES


def test_pillow_opens_tiff_in_no_mode_outside_the_table_but_cielab_which_is_refused_by_name():
    opened = {mode for mode, _ in TiffImagePlugin.OPEN_INFO.values()}
    assert opened - SHOWN_MODES == {"LAB"}
    with pytest.raises(ImageRefused, match="mode LAB") as refused:
        inspect_image(save(Image.new("LAB", (8, 8)), "TIFF"), ImageLimits())
    assert refused.value.status == 415
    with pytest.raises(UndecodableImage, match="mode LAB"):  # had it reached the worker anyway
        as_viewer_shows(Image.new("LAB", (8, 8)))


@pytest.mark.parametrize("size", [((1 << 20) + 5, 1), (3, (1 << 19) + 7)])
def test_high_depth_grey_converts_across_tile_edges(size):
    """Converted in tiles of about a megapixel: an image a row or three columns wide crosses them."""
    values = np.arange(size[0] * size[1], dtype=np.uint32) % 256
    image = Image.fromarray((values * 257).astype("<u2").reshape(size[1], size[0]))
    np.testing.assert_array_equal(np.asarray(as_viewer_shows(image)).reshape(-1), values)


@pytest.mark.parametrize(
    "image, transparency",
    [(from_bytes("L", [0, 90], np.uint8), 90), (palette_image("P", b"\0\1"), 1)],
    ids=["L", "P"],
)
def test_a_png_transparent_key_survives_the_metadata_the_worker_drops(image, transparency):
    """The worker drops descriptive PNG chunks before decoding; tRNS is not one of them."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta/>", zip=True)
    data = save(image, "PNG", transparency=transparency, pnginfo=info, icc_profile=b"broken")
    assert np.asarray(decode_rgb(data)).reshape(-1, 3)[1].tolist() == list(WHITE)
