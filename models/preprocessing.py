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


class UndecodableImage(ValueError):
    """The image could not be decoded; whatever the decoder raised, the job fails with its message."""


def decode_rgb(data: bytes) -> Image.Image:
    """Decode to an upright RGB image: first frame of an animation, EXIF rotation applied.

    Call it only on data that ``jobs.imagecheck.inspect_image`` admitted: that check bounds the
    pixels and scans, so the decode stays within its time and memory budget. No copy is made
    beyond what rotation and mode conversion need.
    """
    try:
        image = Image.open(io.BytesIO(data))  # a BytesIO holds no resource: no close needed
    except Exception as error:
        raise UndecodableImage(_reason(error)) from None
    try:
        image.seek(0)
        image.draft("RGB", DRAFT_SIZE)  # JPEG only; a no-op for other formats
        image.load()
        upright = _upright(image)
        return upright if upright.mode == "RGB" else upright.convert("RGB")
    except Exception as error:  # Pillow's decoders raise OSError, SyntaxError, struct.error, ...
        raise UndecodableImage(_reason(error)) from None


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


def _upright(image: Image.Image) -> Image.Image:
    """EXIF rotation applied; unreadable EXIF means no rotation rather than a failed job."""
    try:
        method = _UPRIGHT.get(image.getexif().get(ExifTags.Base.Orientation, 1))  # 1: upright
    except Exception:  # hostile EXIF raises anything from SyntaxError to struct.error
        return image
    return image.transpose(method) if method is not None else image


def to_model_input(image: Image.Image) -> np.ndarray:
    """224x224x3 float32 in [-1, 1], the layout MobileNet was trained on."""
    resized = image.resize(INPUT_SIZE, Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32) / 127.5 - 1.0


def prepare(data: bytes) -> np.ndarray:
    return to_model_input(decode_rgb(data))
