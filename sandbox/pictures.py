"""Pictures for the sandbox: real 2048x2048 PNG grids (1-8 MB), their 1024x1024 quadrants and
small WebP thumbnails as a CDN holds them, blurred JPEG previews, and a decompression bomb.

Each picture is drawn once per task and kept on disk, so the image endpoint can stream it in
chunks the way new-api's proxy does.
"""

from __future__ import annotations

import functools
import io
import random
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

GRID_SIZE = 2048
THUMBNAIL_SIZE = 640
BOMB_SIDE = 10000
_draw_lock = threading.Lock()


def _tile(rng: random.Random, size: int) -> Image.Image:
    """One picture of the grid: a coloured gradient, a few shapes, and grain for weight."""
    gradient = Image.linear_gradient("L").resize((size, size))
    channels = [gradient.rotate(rng.choice((0, 90, 180, 270))) for _ in range(3)]
    tile = Image.merge("RGB", channels)
    tint = Image.new("RGB", (size, size), tuple(rng.randint(0, 255) for _ in range(3)))
    tile = Image.blend(tile, tint, 0.45)
    draw = ImageDraw.Draw(tile)
    for _ in range(rng.randint(3, 7)):
        x, y = rng.randint(0, size), rng.randint(0, size)
        r = rng.randint(size // 12, size // 3)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    grain = Image.effect_noise((size, size), rng.uniform(4, 48)).convert("RGB")
    return Image.blend(tile, grain, rng.uniform(0.08, 0.3))


def draw_grid(task_id: str, *, single: bool = False, size: int = GRID_SIZE) -> Image.Image:
    rng = random.Random(task_id)
    if single:
        return _tile(rng, size)
    half = size // 2
    grid = Image.new("RGB", (size, size))
    for i, (x, y) in enumerate(((0, 0), (half, 0), (0, half), (half, half))):
        grid.paste(_tile(random.Random(f"{task_id}:{i}:{rng.random()}"), half), (x, y))
    return grid


class ImageCache:
    """Draws each task's pictures once and keeps them as files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _cached(self, name: str, make: Callable[[Path], None]) -> Path:
        """The file `name`, made by `make(tmp_path)` the first time it is asked for."""
        path = self.directory / name
        with _draw_lock:
            if not path.exists():
                tmp = path.with_name(f"{name}.tmp")
                make(tmp)
                tmp.replace(path)
        return path

    def final_png(self, task_id: str, *, single: bool = False) -> Path:
        return self._cached(
            f"{task_id}.png",
            lambda tmp: draw_grid(task_id, single=single).save(tmp, "PNG", compress_level=1),
        )

    def quadrant_png(self, task_id: str, index: int, *, single: bool = False) -> Path:
        """The index-th picture of the grid (0 top left, then row by row) as its own PNG, the
        way Midjourney's CDN keeps each picture of a job at 0_<index>.png."""
        grid = self.final_png(task_id, single=single)

        def crop(tmp: Path) -> None:
            with Image.open(grid) as image:
                image.crop(quadrant_box(index)).save(tmp, "PNG", compress_level=1)

        return self._cached(f"{task_id}_{index}.png", crop)

    def thumbnail_webp(self, task_id: str, index: int, *, single: bool = False) -> Path:
        """A small WebP of one picture, as trueai's `thumbnail` URLs (…_640_N.webp) serve."""
        quadrant = self.quadrant_png(task_id, index, single=single)

        def shrink(tmp: Path) -> None:
            with Image.open(quadrant) as image:
                image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
                image.save(tmp, "WEBP", quality=60)

        return self._cached(f"{task_id}_{index}_{THUMBNAIL_SIZE}.webp", shrink)

    def preview_jpeg(self, task_id: str, progress: int) -> bytes:
        """A small, blurred progress preview that sharpens as the job advances."""
        image = draw_grid(task_id, size=512)
        blur = max(0.0, 12 * (1 - progress / 100))
        buf = io.BytesIO()
        image.filter(ImageFilter.GaussianBlur(blur)).save(buf, "JPEG", quality=70)
        return buf.getvalue()


def quadrant_box(index: int, size: int = GRID_SIZE) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) of the index-th picture in a grid of `size` pixels."""
    half = size // 2
    x, y = (index % 2) * half, (index // 2) * half
    return x, y, x + half, y + half


@functools.cache
def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A well-formed grayscale PNG of side x side black pixels: ~100 KB on the wire for
    10000x10000, ~100 MB once decoded. Made once, row block by row block, so building it
    never holds the decoded pixels either."""
    compressor = zlib.compressobj(9)
    rows = (b"\x00" + bytes(side)) * 100  # each row: filter type 0, then the pixels
    idat = [compressor.compress(rows) for _ in range(side // 100)]
    idat.append(compressor.compress((b"\x00" + bytes(side)) * (side % 100)))
    idat.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(idat))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
