"""Images of every common mode and format become the same 224x224 RGB input Keras expects."""

import io

import numpy as np
import pytest
from PIL import Image

from models.preprocessing import decode_rgb, prepare
from tests.conftest import image_bytes


@pytest.mark.parametrize(
    "mode, fmt",
    [
        ("RGB", "JPEG"),
        ("L", "JPEG"),
        ("L", "PNG"),
        ("RGBA", "PNG"),
        ("P", "PNG"),
        ("P", "GIF"),
        ("RGB", "WEBP"),
        ("RGB", "BMP"),
        ("CMYK", "JPEG"),
        ("LA", "PNG"),
        ("I;16", "PNG"),
    ],
)
def test_every_mode_becomes_224x224_rgb_in_minus_one_to_one(mode, fmt):
    array = prepare(image_bytes(mode=mode, fmt=fmt, size=(300, 200)))
    assert array.shape == (224, 224, 3)
    assert array.dtype == np.float32
    assert array.min() >= -1.0 and array.max() <= 1.0


def test_values_follow_mobilenet_preprocess_input():
    array = prepare(image_bytes(fmt="PNG", color=(255, 0, 127)))
    np.testing.assert_allclose(array[0, 0], [1.0, -1.0, 127 / 127.5 - 1], atol=1e-6)


def test_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (50, 50), color) for color in [(255, 0, 0), (0, 0, 255)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    assert tuple(decode_rgb(buffer.getvalue()).getpixel((25, 25))) == (255, 0, 0)


def test_exif_rotation_is_applied():
    image = Image.new("RGB", (200, 100), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 100, 100))  # white on the left half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    upright = decode_rgb(buffer.getvalue())
    assert upright.size == (100, 200)
    assert sum(upright.getpixel((50, 20))) > 600, "the white half is on top once rotated"
    assert sum(upright.getpixel((50, 180))) < 100


def test_large_jpeg_is_decoded_at_a_reduced_scale_but_never_below_twice_the_input():
    assert decode_rgb(image_bytes(size=(4000, 3000))).size == (1000, 750)  # 1/4 scale: both sides stay >= 448
    assert decode_rgb(image_bytes(size=(900, 900))).size == (450, 450)


def test_photo_sized_jpeg_decodes_exactly_as_without_draft():
    data = image_bytes(size=(500, 375))
    with Image.open(io.BytesIO(data)) as image:
        reference = np.asarray(image.convert("RGB"))
    np.testing.assert_array_equal(np.asarray(decode_rgb(data)), reference)
