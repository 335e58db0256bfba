"""Pictures for the sandbox: real 2048x2048 PNG grids (1-8 MB), blurred JPEG previews, a tiny MP4.

Each picture is drawn once per task and kept on disk, so the image endpoint can stream it in
chunks the way new-api's proxy does.
"""

from __future__ import annotations

import io
import random
import threading
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

GRID_SIZE = 2048
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

    def final_png(self, task_id: str, *, single: bool = False) -> Path:
        path = self.directory / f"{task_id}.png"
        with _draw_lock:
            if not path.exists():
                tmp = path.with_suffix(".tmp")
                draw_grid(task_id, single=single).save(tmp, "PNG", compress_level=1)
                tmp.replace(path)
        return path

    def preview_jpeg(self, task_id: str, progress: int) -> bytes:
        """A small, blurred progress preview that sharpens as the job advances."""
        image = draw_grid(task_id, size=512)
        blur = max(0.0, 12 * (1 - progress / 100))
        buf = io.BytesIO()
        image.filter(ImageFilter.GaussianBlur(blur)).save(buf, "JPEG", quality=70)
        return buf.getvalue()


# The smallest well-formed MP4 box sequence a browser recognises as video/mp4 (no frames).
TINY_MP4 = bytes.fromhex(
    "0000001c667479706973366d0000020069736f6d69736f326d703431"  # ftyp
    "00000008667265650000000866726565"  # free boxes
)
