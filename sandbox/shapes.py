"""How the other gateways write a task (docs/gateway-quirks.md, E11-E14).

new-api's shape lives on SimTask.snapshot; these are novicezk's Java DTO (nulls, no buttons,
`progress: ""` on failure) and trueai's C# TaskInfo (nulls included, `buttons: []`, imageUrls
as {url, thumbnail} objects, imageUrl null until success).

Neither has an image proxy: every URL they send names a file on Midjourney's or Discord's CDN,
which the sandbox serves under another host name (`cdn_address`).
"""

from __future__ import annotations

from .tasks import SimTask, clip_url, image_url_list


def attachment_url(task: SimTask, cdn_address: str) -> str:
    """Where a direct gateway (no /mj/image proxy) says the picture is: the whole grid as a
    Discord attachment on the CDN."""
    return f"{cdn_address}/attachments/{task.id}/grid_0.png"


def novicezk(task: SimTask, now: float, cdn_address: str) -> dict:
    status = task.status(now) or "NOT_START"
    phase = task.phase(now)
    started = phase >= 1
    finished = status in ("SUCCESS", "FAILURE")
    # novicezk fills imageUrl with the blurred preview while the job runs
    shows_picture = task.has_final_image(now) or status == "IN_PROGRESS"
    image_url = attachment_url(task, cdn_address) if shows_picture else None
    properties = {"notifyHook": None, "discordInstanceId": "sandbox", "flags": 0}
    if finished:
        properties["finalPrompt"] = task.properties()["finalPrompt"]
        properties.update(task.lineage())
    return {
        "id": task.id,
        "properties": properties,
        "action": task.action if task.action in NOVICEZK_ACTIONS else "IMAGINE",
        "status": status if status != "MODAL" else "IN_PROGRESS",
        "prompt": task.prompt,
        "promptEn": task.prompt if started else None,
        "description": f"/imagine {task.prompt}",
        "state": None,
        "submitTime": task.ms(0),
        "startTime": task.ms(1) if started else None,
        "finishTime": task.ms(2 + 5) if finished else None,
        "imageUrl": image_url,
        "progress": task.progress(now, failed="") if started else None,
        "failReason": task.fail_reason if status == "FAILURE" else None,
    }


NOVICEZK_ACTIONS = {"IMAGINE", "UPSCALE", "VARIATION", "REROLL", "DESCRIBE", "BLEND"}


def trueai(task: SimTask, now: float, cdn_address: str) -> dict:
    status = task.status(now) or "NOT_START"
    phase = task.phase(now)
    started = phase >= 1
    finished = status in ("SUCCESS", "FAILURE")
    success = status == "SUCCESS"
    image_url = attachment_url(task, cdn_address) if success else None
    video_url = clip_url(task, cdn_address, 0) if success and task.action == "VIDEO" else None
    image_urls = image_url_list(task, cdn_address, as_objects=True) if success else None
    return {
        "id": task.id,
        "parentId": task.parent_id or None,
        "botType": "MID_JOURNEY",
        "userId": None,
        "nonce": task.id[-10:],
        "messageId": None,
        "instanceId": "sandbox",
        "action": task.action,
        "status": status,
        "prompt": task.prompt,
        "promptEn": task.prompt if started else None,
        "promptFull": f"{task.prompt} --v 7" if started else None,
        "description": "提交成功",
        "state": None,
        "submitTime": task.ms(0),
        "startTime": task.ms(1) if started else None,
        "finishTime": task.ms(2 + 5) if finished else None,
        "imageUrl": image_url,
        "imageUrls": image_urls,
        "thumbnailUrl": None,
        "progress": task.progress(now, failed="") if started else None,
        "failReason": task.fail_reason if status == "FAILURE" else None,
        "buttons": task.buttons(status) if success else [],
        "seed": task.seed if success else None,
        "mode": "FAST",
        "videoUrl": video_url,
        "videoUrls": [{"url": u["url"], "thumbnail": None} for u in image_urls or []]
        if task.action == "VIDEO"
        else None,
        "width": 2048 if success else None,
        "height": 2048 if success else None,
        "size": None,
        "contentType": "image/png" if success else None,
        "properties": task.properties() if finished else {},
        "isCompleted": finished,
        "displays": {"status": status, "action": task.action},
    }
