"""Simulated Midjourney tasks that advance with the clock, shaped like new-api's MidjourneyDto.

A task never stores its current state: `snapshot()` derives it from how long ago the task was
submitted, so every request sees a consistent, moving picture without a background thread.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field

# Percent values a job reports while it runs, as new-api shows them (a new value per 15 s poll).
PROGRESS_STEPS = (8, 23, 46, 62, 85)
GRID_ACTIONS = {"IMAGINE", "VARIATION", "REROLL", "BLEND", "HIGH_VARIATION", "LOW_VARIATION"}

SUBMIT_DESCRIPTIONS = ("提交成功", "Submit success", "排队中，前面还有1个任务")


def new_task_id(now: float | None = None) -> str:
    """A millisecond timestamp plus three random digits, as novicezk and trueai make them."""
    millis = int((now if now is not None else time.time()) * 1000)
    return f"{millis}{random.randint(0, 999):03d}"


@dataclass
class SimTask:
    id: str
    owner: str
    action: str = "IMAGINE"
    prompt: str = ""
    outcome: str = "SUCCESS"  # SUCCESS, FAILURE or MODAL
    fail_reason: str = "任务超时"
    submitted_at: float = field(default_factory=time.time)
    step_seconds: float = 4.0
    description: str = "提交成功"
    seed: str = ""
    image_urls_shape: str = "absent"  # absent, null, empty, strings, objects
    parent_id: str = ""  # the task this one was made from (trueai's parentId)
    made_with: str = ""  # the parent's button customId it was submitted with
    awaiting_input: bool = False  # MODAL: waits for /mj/submit/modal (custom zoom, inpaint)

    def __post_init__(self) -> None:
        self.outcome = self.outcome.upper()  # a test may say "failure"; gateways send FAILURE
        if not self.seed:
            self.seed = str(random.Random(self.id).randint(10**9, 4 * 10**9))

    # --- the clock -------------------------------------------------------------------------

    def phase(self, now: float) -> int:
        """0 = inserted, 1 = SUBMITTED, 2.. = IN_PROGRESS steps, then final."""
        if self.step_seconds <= 0:
            return 2 + len(PROGRESS_STEPS)
        return max(0, int((now - self.submitted_at) / self.step_seconds))

    def status(self, now: float) -> str:
        if self.awaiting_input:
            return "MODAL"
        phase = self.phase(now)
        if phase == 0:
            return ""
        if phase == 1:
            return "SUBMITTED"
        if phase < 2 + len(PROGRESS_STEPS):
            return "IN_PROGRESS"
        return self.outcome

    def has_final_image(self, now: float) -> bool:
        return self.status(now) == "SUCCESS" or (
            self.action == "DESCRIBE" and self.status(now) != ""
        )

    def has_preview(self, now: float) -> bool:
        """A running job shows its blurred preview; a failed one keeps the last preview (E10)."""
        return self.status(now) in ("IN_PROGRESS", "FAILURE") and self.action != "DESCRIBE"

    def ms(self, phase: int) -> int:
        return int((self.submitted_at + phase * self.step_seconds) * 1000)

    # --- the wire shape --------------------------------------------------------------------

    def snapshot(self, now: float, server_address: str, cdn_address: str) -> dict:
        """The task as new-api's fetch answers it: every key present, Go zero values, key order
        of the Go struct. imageUrl goes through new-api's own proxy at `server_address`; the
        video and imageUrls name the files on Midjourney's CDN (`cdn_address`)."""
        status = self.status(now)
        phase = self.phase(now)
        progress = self.progress(now)

        image_url = ""
        if self.has_final_image(now) or self.has_preview(now):
            image_url = f"{server_address}/mj/image/{self.id}"
            if status != "SUCCESS":  # new-api busts caches of anything not final
                image_url += f"?rand={time.time_ns()}"

        video_url = ""
        video_urls = None
        if self.action == "VIDEO" and status == "SUCCESS":
            video_url = clip_url(self, cdn_address, 0)
            video_urls = [{"url": video_url}]

        finished = status in ("SUCCESS", "FAILURE")
        task = {
            "id": self.id,
            "action": self.action,
            "customId": "",
            "botType": "",
            "prompt": self.prompt,
            "promptEn": self.prompt if phase >= 1 else "",
            "description": self.description,
            "state": "",
            "submitTime": self.ms(0) + (37 if phase >= 1 else 0),
            "startTime": self.ms(2) if phase >= 2 else 0,
            "finishTime": self.ms(2 + len(PROGRESS_STEPS)) if finished else 0,
            "imageUrl": image_url,
            "videoUrl": video_url,
            "videoUrls": video_urls,
            "status": status,
            "progress": progress,
            "failReason": self.fail_reason if status == "FAILURE" else "",
            "buttons": self.buttons(status) if status in ("SUCCESS", "MODAL") else None,
            "maskBase64": "",
            "properties": self.properties() if finished else None,
        }
        if self.image_urls_shape != "absent":
            task["imageUrls"] = self._image_urls(cdn_address, status == "SUCCESS")
        return task

    def _image_urls(self, cdn_address: str, done: bool) -> list | None:
        shape = self.image_urls_shape
        if shape == "null" or (shape != "empty" and not done):
            return None if shape == "null" else []
        if shape == "empty":
            return []
        return image_url_list(self, cdn_address, as_objects=shape == "objects")

    def progress(self, now: float, *, failed: str = "100%") -> str:
        """The percent text; new-api forces 100% on failure, novicezk and trueai send ""."""
        status, phase = self.status(now), self.phase(now)
        if status == "IN_PROGRESS":
            return f"{PROGRESS_STEPS[phase - 2]}%"
        if status == "SUCCESS":
            return "100%"
        return failed if status == "FAILURE" else "0%"

    def buttons(self, status: str) -> list[dict]:
        job = self.message_hash
        if status == "MODAL":
            return [_button(f"MJ::CustomZoom::{job}", "🔍", "Custom Zoom")]
        if self.action in GRID_ACTIONS:
            buttons = [_button(f"MJ::JOB::upsample::{i}::{job}", "", f"U{i}") for i in range(1, 5)]
            buttons.append(_button(f"MJ::JOB::reroll::0::{job}::SOLO", "🔄", ""))
            buttons += [
                _button(f"MJ::JOB::variation::{i}::{job}", "", f"V{i}") for i in range(1, 5)
            ]
            return buttons
        if self.action == "UPSCALE":
            return [
                _button(f"MJ::JOB::high_variation::1::{job}::SOLO", "🪄", "Vary (Strong)"),
                _button(f"MJ::JOB::low_variation::1::{job}::SOLO", "🪄", "Vary (Subtle)"),
                _button(f"MJ::Outpaint::50::1::{job}::SOLO", "🔍", "Zoom Out 2x"),
                _button(f"MJ::CustomZoom::{job}", "🔍", "Custom Zoom"),
                _button(f"MJ::JOB::pan_left::1::{job}::SOLO", "⬅️", ""),
            ]
        return []

    @property
    def message_hash(self) -> str:
        """The Discord message hash of this task's result, which its buttons' customIds
        carry; a UUID, as Midjourney's are, made from the task ID."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mjdash-sandbox/{self.id}"))

    def lineage(self) -> dict:
        """The properties that tie a task to its family (novicezk's names)."""
        found = {"messageId": f"m{self.id}", "messageHash": self.message_hash}
        if self.made_with:
            found["customId"] = self.made_with
        if self.parent_id:
            found["referencedMessageId"] = f"m{self.parent_id}"
        return found

    def properties(self) -> dict:
        if self.action == "DESCRIBE":
            final = "\n\n".join(
                f"{n}️⃣ {self.prompt or 'a picture'}, variant {n} --ar 1:1" for n in range(1, 5)
            )
            return {"finalPrompt": final, "finalZhPrompt": ""}
        return {"finalPrompt": self.prompt, "finalZhPrompt": ""}


def image_url_list(task: SimTask, cdn_address: str, *, as_objects: bool) -> list:
    """One entry per picture of the grid, or the .mp4 clips of a VIDEO task, all on the CDN,
    in either shape gateways use: plain URL strings, or {url, thumbnail} objects (trueai)."""
    make_url = clip_url if task.action == "VIDEO" else picture_url
    urls = [make_url(task, cdn_address, i) for i in range(4)]
    if not as_objects:
        return urls
    return [
        {"url": url, "thumbnail": thumbnail_url(task, cdn_address, i)} for i, url in enumerate(urls)
    ]


def picture_url(task: SimTask, cdn_address: str, index: int) -> str:
    """One picture of the grid on the CDN, as Midjourney names them (0_0.png … 0_3.png)."""
    return f"{cdn_address}/attachments/{task.id}/0_{index}.png"


def thumbnail_url(task: SimTask, cdn_address: str, index: int) -> str:
    """A small WebP of one picture (of a video's first frame, for a VIDEO task)."""
    return f"{cdn_address}/attachments/{task.id}/0_{index}_640_N.webp"


def clip_url(task: SimTask, cdn_address: str, index: int) -> str:
    """One .mp4 clip of a VIDEO task on the CDN."""
    return f"{cdn_address}/video/{task.id}/0_{index}.mp4"


def _button(custom_id: str, emoji: str, label: str) -> dict:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": 2}


class TaskStore:
    """Tasks per id, each owned by the gateway user whose token submitted it. Thread-safe."""

    def __init__(self) -> None:
        self._tasks: dict[str, SimTask] = {}
        self._lock = threading.Lock()

    def add(self, task: SimTask) -> SimTask:
        with self._lock:
            while task.id in self._tasks:
                task.id = str(int(task.id) + 1)
            self._tasks[task.id] = task
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    def get(self, task_id: str) -> SimTask | None:
        return self._tasks.get(task_id)

    def owned(self, owner: str, task_id: str) -> SimTask | None:
        task = self._tasks.get(task_id)
        return task if task is not None and task.owner == owner else None

    def owned_many(self, owner: str, ids: list[str]) -> list[SimTask]:
        """Insertion (DB) order, not request order; unknown and foreign ids dropped."""
        wanted = set(ids)
        with self._lock:
            return [t for t in self._tasks.values() if t.id in wanted and t.owner == owner]
