"""Image helpers: small thumbnails made with Pillow, download names and types."""

from __future__ import annotations

import io
import warnings

from django.utils.text import slugify
from PIL import Image

# Decoding takes about 4 bytes a pixel whatever the file's size, so the limit is on the
# pixels a header declares, checked before a byte is decoded: 25 Mpx (~100 MB at most)
# covers a 4096 px upscale (16.7 Mpx) with room to spare.
MAX_SOURCE_PIXELS = 25_000_000
Image.MAX_IMAGE_PIXELS = MAX_SOURCE_PIXELS
THUMB_PX = 384
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
}


def thumbnail(data: bytes) -> bytes:
    """A WebP of at most THUMB_PX on the long side. Raises ValueError for anything that is
    not a PNG, JPEG, WebP or GIF picture."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below
            picture = _decode(data)
    except Image.DecompressionBombError as exc:
        raise ValueError("the picture declares more pixels than mjdash decodes") from exc
    except (OSError, SyntaxError) as exc:
        raise ValueError("not a picture Pillow can read") from exc
    picture.thumbnail((THUMB_PX, THUMB_PX))
    out = io.BytesIO()
    picture.save(out, "WEBP", quality=78, method=4)
    return out.getvalue()


def _decode(data: bytes) -> Image.Image:
    """The picture as RGB, refused by the pixels its header declares before any decoding."""
    with Image.open(io.BytesIO(data), formats=["PNG", "JPEG", "WEBP", "GIF"]) as image:
        if image.width * image.height > MAX_SOURCE_PIXELS:
            raise ValueError(
                f"the picture declares {image.width}×{image.height} pixels, more than "
                "mjdash decodes"
            )
        image.draft("RGB", (THUMB_PX, THUMB_PX))
        return image.convert("RGB")


def download_name(prompt: str, task_id: str, content_type: str) -> str:
    """<prompt-slug>_<id>.<ext>, readable and safe on every file system."""
    slug = slugify(prompt, allow_unicode=True)[:60].strip("-") or "midjourney"
    return f"{slug}_{task_id}.{EXTENSIONS.get(content_type, 'bin')}"
