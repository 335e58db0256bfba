"""What mjdash stores: gateways (URL and token) and the tasks each user tracks on them."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .fields import EncryptedTextField, StoredGeneratedField

PERCENT = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,3})?)\s*%")


class Status(models.TextChoices):
    """Every status a gateway reports, with the words a person sees. An empty status is a
    real state: just submitted, not yet picked up (docs/gateway-quirks.md, E8)."""

    QUEUED = "", _("Queued at gateway")
    NOT_START = "NOT_START", _("Not started")
    SUBMITTED = "SUBMITTED", _("Submitted")
    IN_PROGRESS = "IN_PROGRESS", _("In progress")
    MODAL = "MODAL", _("Needs input")
    SUCCESS = "SUCCESS", _("Done")
    FAILURE = "FAILURE", _("Failed")
    CANCEL = "CANCEL", _("Cancelled")


FINISHED = (Status.SUCCESS, Status.FAILURE, Status.CANCEL)
FAILED = (Status.FAILURE, Status.CANCEL)


class AuthStyle(models.TextChoices):
    BEARER = "bearer", _("Authorization: Bearer <token>")
    RAW = "raw", _("Authorization: <token> (no Bearer)")
    MJ_API_SECRET = "mj-api-secret", _("mj-api-secret: <token>")


class Gateway(models.Model):
    """One gateway + token. Users who enter the same pair share the row, and so share one
    refresh per interval: new-api scopes tasks by the token's user, so the answers are theirs
    alike, while different tokens never share cached state."""

    base_url = models.URLField(max_length=500)
    token = EncryptedTextField(blank=True)  # encrypted at rest; never rendered whole
    auth_style = models.CharField(max_length=20, choices=AuthStyle, default=AuthStyle.BEARER)
    fingerprint = models.CharField(max_length=64, unique=True, editable=False)
    # The site default: one token for everyone who picks no gateway of their own, so the
    # gateway would hand any of them any task made with it. Tasks on a shared gateway belong
    # to the first account that tracks them (TaskOwner).
    shared = models.BooleanField(default=False, editable=False)
    # The refresh claim: only the request whose conditional UPDATE moves this forward asks
    # the gateway; everyone else renders what is stored.
    refresh_due_at = models.DateTimeField(null=True, blank=True)
    # Who is asking right now, and until when: a refresh holds the gateway until it is done
    # or its lease runs out (a worker that died mid-cycle), so no two ask at once.
    refresh_holder = models.CharField(max_length=32, blank=True, editable=False)
    refresh_lease_until = models.DateTimeField(null=True, blank=True)
    # The slow lane (tasks that sit in a queue, wait for input or went stale) was last asked
    # then: one stamp for the whole batch instead of a write on every row.
    slow_asked_at = models.DateTimeField(null=True, blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # The circuit breaker: after N transient failures in a row, no calls until the cool-off
    # ends; then one probe (the next claim winner) decides.
    consecutive_failures = models.PositiveIntegerField(default=0)
    circuit_open_until = models.DateTimeField(null=True, blank=True)
    unreachable_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.display_url} ({self.masked_token})"

    @staticmethod
    def make_fingerprint(base_url: str, token: str, auth_style: str) -> str:
        raw = f"{base_url.rstrip('/')}\n{auth_style}\n{token}".encode()
        return hashlib.sha256(raw).hexdigest()

    @classmethod
    def for_values(cls, base_url: str, token: str, auth_style: str) -> Gateway:
        base_url = base_url.strip().rstrip("/")
        fingerprint = cls.make_fingerprint(base_url, token, auth_style)
        site_token = bool(token) and token == settings.MJDASH_GATEWAY_TOKEN
        gateway, _ = cls.objects.get_or_create(
            fingerprint=fingerprint,
            defaults={
                "base_url": base_url,
                "token": token,
                "auth_style": auth_style,
                "shared": site_token,  # the site's token is shared, whoever saves it
            },
        )
        return gateway

    @classmethod
    def site_default(cls) -> Gateway:
        gateway = cls.for_values(
            settings.MJDASH_GATEWAY_URL,
            settings.MJDASH_GATEWAY_TOKEN,
            settings.MJDASH_GATEWAY_AUTH,
        )
        if not gateway.shared:
            gateway.shared = True
            cls.objects.filter(pk=gateway.pk).update(shared=True)
        return gateway

    @property
    def display_url(self) -> str:
        """The base URL without any user:password@ part, fit for pages and logs."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    @property
    def circuit_open(self) -> bool:
        return bool(self.circuit_open_until and self.circuit_open_until > timezone.now())

    @property
    def masked_token(self) -> str:
        """What pages and the admin may show of the token. Nothing at all of the site's own
        token: it is not the user's, and its tail would help no one but an attacker."""
        if not self.token:
            return gettext("no token")
        if self.shared or self.token == settings.MJDASH_GATEWAY_TOKEN:
            return gettext("the site's token")
        return "…" + self.token[-4:] if len(self.token) > 8 else "…" + "•" * 4


class Profile(models.Model):
    """A user's own choices; `gateway` null means the site default gateway. It also
    counts the task IDs this user asked the shared gateway about that it did not know."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    gateway = models.ForeignKey(Gateway, null=True, blank=True, on_delete=models.SET_NULL)
    guess_misses = models.PositiveIntegerField(default=0)
    guess_window_started_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"


def gateway_for(user) -> Gateway:
    """The gateway this user's new tasks go to."""
    profile = Profile.objects.filter(user=user).select_related("gateway").first()
    if profile and profile.gateway:
        return profile.gateway
    return Gateway.site_default()


class TaskOwner(models.Model):
    """Who a task on a shared gateway belongs to: the first account that tracked it (or
    submitted it through mjdash). Nobody else's row for that ID is ever filled in, and
    mjdash makes no gateway call for it. Staff may reassign a task in the admin."""

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE)
    task_id = models.CharField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    claimed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["gateway", "task_id"], name="one_owner_per_task")
        ]

    def __str__(self) -> str:
        return f"{self.task_id} belongs to {self.user}"


class TrackedTaskQuerySet(models.QuerySet):
    # The conditions themselves, for filters and for counts alike.
    UNFINISHED = ~models.Q(status__in=FINISHED) & models.Q(missing_at_gateway=False)
    DONE = models.Q(status=Status.SUCCESS)
    FAILED = models.Q(status__in=FAILED)
    IN_GALLERY = DONE & ~models.Q(image_url="", video_url="")

    def finished(self) -> TrackedTaskQuerySet:
        """Nothing more will happen: a final status, or the gateway does not know the ID.
        (The database keeps `finished_rank` from UNFINISHED, and indexes it.)"""
        return self.filter(finished_rank=1)

    def unfinished(self) -> TrackedTaskQuerySet:
        return self.filter(finished_rank=0)

    def done(self) -> TrackedTaskQuerySet:
        return self.filter(self.DONE)

    def failed(self) -> TrackedTaskQuerySet:
        return self.filter(self.FAILED)

    def finished_images(self) -> TrackedTaskQuerySet:
        """What the gallery shows (the database keeps `in_gallery` from IN_GALLERY)."""
        return self.filter(in_gallery=True)


class TrackedTask(models.Model):
    """One row per user per task ID: the last state its gateway reported."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    gateway = models.ForeignKey(Gateway, on_delete=models.PROTECT)
    task_id = models.CharField(max_length=64)

    status = models.CharField(max_length=32, blank=True, choices=Status)
    progress = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=32, blank=True)
    prompt = models.TextField(blank=True)
    prompt_en = models.TextField(blank=True)
    description = models.TextField(blank=True)
    state = models.TextField(blank=True)
    fail_reason = models.TextField(blank=True)
    image_url = models.URLField(max_length=1000, blank=True)
    image_urls = models.JSONField(default=list, blank=True)
    video_url = models.URLField(max_length=1000, blank=True)
    buttons = models.JSONField(default=list, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    parent_task_id = models.CharField(max_length=64, blank=True)  # the gateway's parentId
    raw = models.JSONField(default=dict, blank=True)

    missing_at_gateway = models.BooleanField(default=False)
    seen_at_gateway = models.BooleanField(default=False)  # the gateway has answered for it once
    progress_changed_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    added_at = models.DateTimeField(default=timezone.now)
    seed = models.CharField(max_length=64, blank=True)  # kept once the gateway has told it
    # A digest of what the gateway last said (every stored field but the raw JSON): a refresh
    # compares this, not the row, and writes only the rows whose digest moved.
    state_hash = models.CharField(max_length=32, blank=True, editable=False)

    # The archive (tracker/archive.py): the images kept once the task succeeded.
    archived_at = models.DateTimeField(null=True, blank=True)
    archive_error = models.CharField(max_length=500, blank=True)
    archive_attempts = models.PositiveSmallIntegerField(default=0)
    archive_due_at = models.DateTimeField(null=True, blank=True)  # a job is owed from then
    archive_lease_until = models.DateTimeField(null=True, blank=True)  # a worker holds it
    downloaded_at = models.DateTimeField(null=True, blank=True)  # first put in a ZIP

    # Organising, the user's own: a favourite, hidden from the default views, a note.
    favourite = models.BooleanField(default=False)
    hidden = models.BooleanField(default=False)
    note = models.TextField(blank=True, max_length=5000)
    tags = models.ManyToManyField("Tag", blank=True, related_name="tasks")
    # 0 while the gateway may still change the task, 1 once it is finished: the lists'
    # default order (what runs first), kept by the database itself so that an index serves
    # it and 10,000 tasks sort as fast as 10.
    finished_rank = StoredGeneratedField(
        expression=models.Case(
            models.When(TrackedTaskQuerySet.UNFINISHED, then=models.Value(0)),
            default=models.Value(1),
        ),
        output_field=models.SmallIntegerField(),
        db_persist=True,
    )
    in_gallery = StoredGeneratedField(  # done, with an image or a video to show
        expression=models.Case(
            models.When(TrackedTaskQuerySet.IN_GALLERY, then=models.Value(True)),
            default=models.Value(False),
        ),
        output_field=models.BooleanField(),
        db_persist=True,
    )

    objects = TrackedTaskQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "task_id"], name="one_row_per_user_task")
        ]
        indexes = [
            models.Index(fields=["user", "-added_at"]),
            models.Index(fields=["gateway", "status"]),
            # The lists' default order, and the counts and action menu, read from indexes
            # alone however many tasks an account holds.
            models.Index(
                fields=["user", "hidden", "finished_rank", "-added_at", "-id"],
                name="list_running_first",
            ),
            models.Index(
                fields=["user", "status", "missing_at_gateway", "hidden", "action"],
                name="list_counts",
            ),
            models.Index(fields=["user", "hidden", "-finished_at", "-id"], name="list_finished"),
            models.Index(fields=["user", "finished_rank", "gateway"], name="list_unfinished"),
            models.Index(
                fields=["user", "in_gallery", "hidden", "-finished_at", "-id"],
                name="gallery_order",
            ),
            models.Index(
                fields=["user", "in_gallery", "downloaded_at", "action"], name="gallery_new"
            ),
        ]
        ordering = ["-added_at", "id"]

    def __str__(self) -> str:
        return f"{self.task_id} ({self.status or 'queued'})"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED or self.missing_at_gateway

    @property
    def is_done(self) -> bool:
        return self.status == Status.SUCCESS

    @property
    def is_failed(self) -> bool:
        return self.status in FAILED

    @property
    def needs_input(self) -> bool:
        return self.status == Status.MODAL

    @property
    def stale(self) -> bool:
        """Unfinished, and nothing has moved for MJDASH_STALE_MINUTES: stop spinning."""
        if self.finished or self.progress_changed_at is None:
            return False
        limit = timedelta(minutes=settings.MJDASH_STALE_MINUTES)
        return timezone.now() - self.progress_changed_at > limit

    @property
    def last_asked_at(self):
        """When the gateway last answered about this task. A refresh writes a row only when
        its state moved and stamps the batch on the gateway, by lane (tracker/refresh.py):
        so the later of the row's own stamp and its lane's, while it is unfinished."""
        stamps = [self.last_checked_at]
        if not self.finished and self.gateway.last_refreshed_at:
            slow_after = timezone.now() - timedelta(seconds=settings.MJDASH_SLOW_AFTER_SECONDS)
            moved = self.progress_changed_at
            slow = self.needs_input or (moved is not None and moved <= slow_after)
            stamps.append(self.gateway.slow_asked_at if slow else self.gateway.last_refreshed_at)
        return max((stamp for stamp in stamps if stamp), default=None)

    @property
    def live(self) -> bool:
        """Worth polling the page for: unfinished and not stale."""
        return not self.finished and not self.stale

    @property
    def percent(self) -> int:
        """0-100 from whatever progress text the gateway sent; SUCCESS is always 100."""
        if self.is_done:
            return 100
        match = PERCENT.search(self.progress or "")
        return min(100, int(float(match.group(1)))) if match else 0

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at and self.finished_at >= self.started_at:
            return self.finished_at - self.started_at
        return None

    @property
    def has_image(self) -> bool:
        return bool(self.image_url)

    @property
    def archiving_recently(self) -> bool:
        """Archiving, with its job queued in the last ten minutes: worth a page asking
        again (a site that runs no worker does not make pages poll for ever)."""
        due = self.archive_due_at
        return self.archiving and due is not None and timezone.now() - due < timedelta(minutes=10)

    @property
    def has_media(self) -> bool:
        return bool(self.image_url or self.video_url)

    @property
    def archiving(self) -> bool:
        """Its files are still to be kept: succeeded, not archived, and a job is owed (or
        has not failed for good)."""
        return (
            self.is_done
            and self.archived_at is None
            and (self.archive_due_at is not None or not self.archive_error)
        )

    @property
    def final_prompt(self) -> str:
        value = (self.properties or {}).get("finalPrompt", "")
        return value if isinstance(value, str) else ""

    @property
    def status_label(self) -> str:
        if self.missing_at_gateway:
            if self.seen_at_gateway:
                return gettext("No longer known to the gateway")
            return gettext("Not found at the gateway")
        if self.status in Status.values:
            return Status(self.status).label
        return self.status.replace("_", " ").title()  # a status no gateway has sent before

    @property
    def status_key(self) -> str:
        """A CSS-friendly name for the badge colour."""
        if self.missing_at_gateway:
            return "missing"
        return (self.status or "queued").lower().replace("_", "-")


class WorkerBeat(models.Model):
    """A background worker's sign of life. While one has beaten recently, pages only read
    the database: the worker keeps every unfinished task current."""

    name = models.CharField(max_length=200, unique=True)  # host:pid
    beat_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"worker {self.name}"


class Blob(models.Model):
    """Bytes in the archive storage, named by their sha256: a file two rows (or two users, or
    a re-fetch) share is stored once. Each user reaches it only through a row of their own."""

    sha256 = models.CharField(max_length=64, unique=True)
    size = models.BigIntegerField()
    content_type = models.CharField(max_length=32)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.sha256[:12]} ({self.content_type}, {self.size} bytes)"

    @property
    def name(self) -> str:
        """Its path in the archive storage."""
        extension = EXTENSIONS.get(self.content_type, "bin")
        return f"{self.sha256[:2]}/{self.sha256[2:4]}/{self.sha256}.{extension}"

    @property
    def is_video(self) -> bool:
        return self.content_type.startswith("video/")


EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
}


class ArchivedFile(models.Model):
    """One kept picture or video of a tracked row: part 0 is the whole result (the grid, the
    upscale, the clip), parts 1-4 the grid's four images, parts 11 and up its videos."""

    WHOLE = 0
    QUADRANTS = (1, 2, 3, 4)
    FIRST_VIDEO = 11

    task = models.ForeignKey(TrackedTask, on_delete=models.CASCADE, related_name="files")
    part = models.PositiveSmallIntegerField()
    original = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")
    thumbnail = models.ForeignKey(
        Blob, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    source_url = models.CharField(max_length=1000, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "part"], name="one_file_per_part")]
        ordering = ["part"]

    def __str__(self) -> str:
        return f"{self.task.task_id} part {self.part}"

    @property
    def is_quadrant(self) -> bool:
        return self.part in self.QUADRANTS

    @property
    def is_video(self) -> bool:
        return self.original.is_video


class Tag(models.Model):
    """A user's own free-text label; a task carries any number of them."""

    MAX_LENGTH = 40

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    name = models.CharField(max_length=MAX_LENGTH)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="one_tag_per_name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AccessToken(models.Model):
    """A personal access token for the JSON API. Only its SHA-256 is stored: the token itself
    is shown once, when it is made. `prefix` (its first characters) tells tokens apart."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


# --- Notifications (tracker/notify.py) ---------------------------------------------------------


class Channel(models.Model):
    """Where a user is told, away from the page, that tasks finished: a webhook receiver or
    an e-mail address. Each finished task is told once per channel (Notice); `digest` sends
    the tasks that finish close together as one message. The last attempt's outcome is kept
    here for the settings page."""

    MAX_PER_USER = 5

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", _("Webhook")
        EMAIL = "email", _("E-mail")

    class Outcome(models.TextChoices):
        SENT = "sent", _("Sent")
        RETRYING = "retrying", _("Failed; trying again")
        FAILED = "failed", _("Failed; gave up")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    kind = models.CharField(max_length=16, choices=Kind)
    target = models.CharField(max_length=1000)  # the webhook URL or the e-mail address
    secret = EncryptedTextField(blank=True)  # signs webhooks; encrypted, never shown whole
    digest = models.BooleanField(default=False)
    language = models.CharField(max_length=16, blank=True)  # the e-mails' language
    created_at = models.DateTimeField(default=timezone.now)
    # An e-mail address sends nothing but its confirmation until its owner follows the link
    # in it: nobody can point mjdash's mail at someone else's inbox. Webhooks need none.
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=16, blank=True, choices=Outcome)
    last_error = models.CharField(max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.user}"

    @property
    def is_webhook(self) -> bool:
        return self.kind == self.Kind.WEBHOOK

    @property
    def display_target(self) -> str:
        """The address as pages show it. A webhook URL often holds a key of its own (chat
        services put one in the path), so only its origin and last four characters show."""
        if not self.is_webhook:
            return self.target
        parts = urlsplit(self.target)
        origin = urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], "", "", ""))
        rest = self.target[len(origin) :] if self.target.startswith(origin) else ""
        return origin + ("/…" + rest[-4:] if len(rest) > 8 else rest)

    @property
    def masked_secret(self) -> str:
        """What a page may show of the secret: its last four characters at most."""
        if not self.secret:
            return gettext("no secret")
        return "…" + self.secret[-4:] if len(self.secret) > 12 else "…" + "•" * 4


class Delivery(models.Model):
    """One message to one channel: one finished task, several (a digest), or a test. Each
    attempt is counted when a worker takes its lease; a failed one is tried again later,
    waiting longer each time, until MJDASH_NOTIFY_ATTEMPTS."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed; gave up")

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    test = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=State, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(null=True, blank=True)  # the next attempt is owed from then
    lease_until = models.DateTimeField(null=True, blank=True)  # a worker is sending it
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "due_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"delivery {self.pk} to {self.channel} ({self.state})"


class Notice(models.Model):
    """That one task's finish is told on one channel. The unique constraint makes it once,
    however often and by however many workers the finish is seen. It joins a Delivery when
    a worker sends it (alone, or with others in a digest)."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notices")
    task = models.ForeignKey(TrackedTask, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=32, choices=Status)  # the status it finished with
    delivery = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.CASCADE, related_name="notices"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "task"], name="one_notice_per_task")
        ]
        indexes = [models.Index(fields=["channel", "delivery"], name="notice_pending")]

    def __str__(self) -> str:
        return f"{self.task_id} on {self.channel_id}"


class Submission(models.Model):
    """One deliberate submit to a gateway (an imagine, a button, a modal's input) and what
    came of it, under the click's idempotency key: the same key again is answered with this
    outcome, never with a second call. Submits spend the user's paid quota."""

    class State(models.TextChoices):
        SENDING = "sending", _("Sending")
        ACCEPTED = "accepted", _("Accepted")
        REFUSED = "refused", _("Refused")
        UNCERTAIN = "uncertain", _("Maybe accepted")
        NOT_SENT = "not_sent", _("Not sent")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=64)  # sha256 of the click's idempotency key
    kind = models.CharField(max_length=16)  # imagine, action, modal
    parent = models.ForeignKey(TrackedTask, null=True, blank=True, on_delete=models.SET_NULL)
    custom_id = models.CharField(max_length=200, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)  # an imagine's prompt and images
    state = models.CharField(max_length=16, choices=State, default=State.SENDING)
    task_id = models.CharField(max_length=64, blank=True)  # the task the gateway started
    message = models.CharField(max_length=500, blank=True)  # stored in English (Stored)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="one_submit_per_key")]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} by {self.user} ({self.state})"
