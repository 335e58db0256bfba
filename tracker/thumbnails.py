"""Pictures made with Pillow (and PyAV for a video's first frame): thumbnails, the four
images of a grid, and download names. Only the expected formats are ever opened, and a
picture is refused by the pixels its header declares before a byte of it is decoded."""

from __future__ import annotations

import io
import warnings
from typing import BinaryIO

from django.utils.text import slugify
from PIL import Image

from .models import EXTENSIONS, ArchivedFile
from .stored_text import Stored

FIRST_VIDEO_PART = ArchivedFile.FIRST_VIDEO

# Decoding takes about 4 bytes a pixel whatever the file's size, so the limit is on the
# pixels a header declares, checked before a byte is decoded: 25 Mpx (~100 MB at most)
# covers a 4096 px upscale (16.7 Mpx) with room to spare.
MAX_SOURCE_PIXELS = 25_000_000
Image.MAX_IMAGE_PIXELS = MAX_SOURCE_PIXELS
FORMATS = ["PNG", "JPEG", "WEBP", "GIF"]
THUMB_PX = 512
# Why a file was refused, quoted in a stored archive error (English; pages translate it).
TOO_MANY_PIXELS = Stored.gettext(
    "the picture declares %(width)s×%(height)s pixels, more than mjdash decodes"
)
BOMB = Stored.gettext("the picture declares more pixels than mjdash decodes")
NOT_A_PICTURE = Stored.gettext("not a picture Pillow can read")
VIDEO_TOO_LARGE = Stored.gettext("the video's frames are larger than mjdash decodes")
NOT_A_VIDEO = Stored.gettext("not a video mjdash can read")
NO_FRAMES = Stored.gettext("the video has no frames")
# Actions whose result is a 2×2 grid of four images (the rest give one image).
GRID_ACTIONS = {
    "IMAGINE", "VARIATION", "REROLL", "BLEND", "HIGH_VARIATION", "LOW_VARIATION",
    "STRONG_VARIATION", "SUBTLE_VARIATION", "PAN", "PAN_LEFT", "PAN_RIGHT", "PAN_UP",
    "PAN_DOWN", "ZOOM", "OUTPAINT", "CUSTOM_ZOOM", "INPAINT",
}  # fmt: skip


def open_picture(source: BinaryIO) -> Image.Image:
    """The picture in `source` as RGB(A), or ValueError for anything that is not a PNG, JPEG,
    WebP or GIF within the pixel limit (a decompression bomb is refused before decoding)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below
            image = Image.open(source, formats=FORMATS)
            if image.width * image.height > MAX_SOURCE_PIXELS:
                raise ValueError(TOO_MANY_PIXELS.english(width=image.width, height=image.height))
            image.load()
    except Image.DecompressionBombError as exc:
        raise ValueError(BOMB.english()) from exc
    except (OSError, SyntaxError) as exc:
        raise ValueError(NOT_A_PICTURE.english()) from exc
    return image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")


def thumbnail(picture: Image.Image) -> bytes:
    """A WebP of at most THUMB_PX on the long side."""
    small = picture.copy()
    small.thumbnail((THUMB_PX, THUMB_PX))
    out = io.BytesIO()
    small.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()


def quadrants(picture: Image.Image) -> list[bytes]:
    """The four images of a 2×2 grid, left to right and top to bottom, each as a PNG."""
    half_w, half_h = picture.width // 2, picture.height // 2
    boxes = [(0, 0), (half_w, 0), (0, half_h), (half_w, half_h)]
    out = []
    for x, y in boxes:
        buffer = io.BytesIO()
        picture.crop((x, y, x + half_w, y + half_h)).save(buffer, "PNG", compress_level=3)
        out.append(buffer.getvalue())
    return out


VIDEO_FORMATS = {"video/mp4": "mp4", "video/webm": "webm"}


def first_frame(source: BinaryIO, content_type: str) -> Image.Image:
    """A video's first frame (the poster), or ValueError for anything PyAV cannot decode.
    The container is the one its first bytes showed: FFmpeg guesses no other format."""
    import av  # only the worker decodes video; the web process never imports it

    try:
        with av.open(source, mode="r", format=VIDEO_FORMATS[content_type]) as container:
            stream = container.streams.video[0]
            if stream.width * stream.height > MAX_SOURCE_PIXELS:
                raise ValueError(VIDEO_TOO_LARGE.english())
            for frame in container.decode(stream):
                return frame.to_image().convert("RGB")
    except (av.FFmpegError, IndexError, StopIteration) as exc:
        raise ValueError(NOT_A_VIDEO.english()) from exc
    raise ValueError(NO_FRAMES.english())


def download_name(prompt: str, task_id: str, content_type: str, part: int | None = None) -> str:
    """<prompt-slug>_<id>[_n].<ext> (n: the grid's n-th image; videoN: its N-th clip),
    readable and safe on every file system."""
    slug = slugify(prompt, allow_unicode=True)[:60].strip("-_") or "midjourney"
    suffix = f"_{part}" if part else ""
    if part and part >= FIRST_VIDEO_PART:
        suffix = f"_video{part - FIRST_VIDEO_PART + 1}"
    return f"{slug}_{task_id}{suffix}.{EXTENSIONS.get(content_type, 'bin')}"
