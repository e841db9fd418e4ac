"""Image bytes to the network's input, exactly as Keras prepares it.

Keras's reference path is ``load_img(target_size=(224, 224), interpolation="bilinear")``,
``img_to_array`` and ``mobilenet.preprocess_input`` (x / 127.5 - 1). We do the same
with Pillow, plus EXIF rotation so phone photos are upright.

Large JPEGs are decoded straight to a smaller scale in the DCT domain
(``draft``), never below twice the input size: images up to 448 pixels a side
decode exactly as Keras does, and a 12-megapixel photo decodes several times faster.
"""
import io

import numpy as np
from PIL import Image, ImageOps

INPUT_SIZE = (224, 224)
DRAFT_SIZE = (2 * INPUT_SIZE[0], 2 * INPUT_SIZE[1])


class TooManyPixels(ValueError):
    """Decoding the image could exhaust the worker's memory, so it is refused from its header."""


def decode_rgb(data: bytes, max_pixels: int | None = None) -> Image.Image:
    """Decode to an upright RGB image: first frame of an animation, EXIF rotation applied.

    With ``max_pixels``, a larger image raises TooManyPixels before any pixel is decoded.
    """
    try:
        opened = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:  # beyond Pillow's own limit, refused at open
        raise TooManyPixels(f"the image has too many pixels: {error}") from None
    with opened as image:
        width, height = image.size
        if max_pixels is not None and width * height > max_pixels:
            raise TooManyPixels(f"the image is {width}x{height} pixels; the limit is {max_pixels} pixels")
        image.seek(0)
        image.draft("RGB", DRAFT_SIZE)  # JPEG only; a no-op for other formats
        upright = ImageOps.exif_transpose(image)
        return upright.convert("RGB")


def to_model_input(image: Image.Image) -> np.ndarray:
    """224x224x3 float32 in [-1, 1], the layout MobileNet was trained on."""
    resized = image.resize(INPUT_SIZE, Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32) / 127.5 - 1.0


def prepare(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    return to_model_input(decode_rgb(data, max_pixels))
