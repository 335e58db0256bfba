"""Telling people their tasks finished while they were not looking: a signed webhook or an
e-mail, once per task per channel, sent by the worker and tried again with growing waits.

- `finished(row_ids)`: the refresh's hook, called with rows it has just seen finish. It notes
  what each channel owes (a Notice: the unique constraint makes it once per task, however
  often the finish is seen) and queues a job when the transaction commits. Cheap, and it
  never raises into the refresh.
- `send_pending(channel_id)`: the job that bundles: each owed task becomes one message; on a
  digest channel, everything owed becomes one (the job waits MJDASH_NOTIFY_DIGEST_SECONDS
  first). Each message is its own job, so a slow receiver holds a worker for one deadline.
- `attempt(delivery_id)`: that job: one try under a lease; its outcome is kept on the
  Delivery and on the Channel (the settings page shows it). A transient failure is tried
  again after 30 s, 2 min, 8 min… until MJDASH_NOTIFY_ATTEMPTS; a permanent one is not.
- `send_test(channel)`: the settings page's button: one try, now.
- `sweep()`: deliveries and notices a dead worker left behind, queued again.

Webhooks are signed: `X-Mjdash-Signature: sha256=<hex>` is the HMAC-SHA256, keyed with the
channel's secret, of the `X-Mjdash-Timestamp` value, a full stop, and the exact body
(README, "Notifications").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import time
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.mail import EmailMessage, mailers
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext

from . import ratelimit
from .models import FINISHED, Channel, Delivery, Notice, Status, TrackedTask
from .stored_text import Stored
from .tasks import send_delivery, send_notices

log = logging.getLogger(__name__)
MAX_DIGEST = 200  # tasks in one message; a bigger batch goes out as several
FOLD_AFTER = 10  # more tasks owed at once than this go out as one message, digest or not
SENDS_PER_HOUR = 6  # tests and confirmations one account may ask for in an hour
CONFIRM_SALT = "mjdash.notify.confirm"
CONFIRM_DAYS = 3
MAX_BACKOFF = timedelta(hours=1)
SWEEP_EVERY = 60  # seconds between looks for work a dead worker lost
SIGNATURE, TIMESTAMP = "X-Mjdash-Signature", "X-Mjdash-Timestamp"
# Why a message was not sent, stored in English (Channel.last_error); pages translate it.
NO_MAILER = Stored.gettext("This site has no mail server set up, so it cannot send e-mail.")
MAIL_REFUSED = Stored.gettext("The mail server refused the address.")
MAIL_FAILED = Stored.gettext("The mail server could not take the message (%(kind)s).")
UNEXPECTED = Stored.gettext("Sending failed unexpectedly (%(kind)s).")


class DeliveryError(Exception):
    """A message could not be sent: `message` is fit to show, `permanent` means trying the
    same again cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message, self.permanent = message, permanent


def lease() -> timedelta:
    """How long one worker holds one delivery: a few times the longest a send may take."""
    return timedelta(seconds=max(60, 3 * settings.MJDASH_WEBHOOK_TIMEOUT))


# --- the refresh's hook ----------------------------------------------------------------------


def finished(row_ids: list[int]) -> None:
    """Rows the refresh has just seen reach SUCCESS, FAILURE or CANCEL: note what each of
    their owners' channels owes, and queue the sending once the refresh commits. One query
    when nobody has a channel; two more (in a savepoint) when someone does. A failure here is
    logged and never reaches the refresh."""
    if not row_ids:
        return
    rows = TrackedTask.objects.filter(pk__in=row_ids, status__in=FINISHED)
    try:
        mine = Channel.objects.filter(user__in=rows.values("user"), confirmed_at__isnull=False)
        channels = list(mine.only("user", "digest"))
        if channels:
            with transaction.atomic():  # a savepoint: a failure here leaves the refresh whole
                _note(rows, channels)
    except Exception:
        log.exception("notifications for %d finished tasks could not be noted", len(row_ids))
        return
    if channels:
        transaction.on_commit(partial(_queue, channels), robust=True)


def _note(rows, channels: list[Channel]) -> None:
    done = list(rows.values_list("pk", "user_id", "status"))
    Notice.objects.bulk_create(
        [
            Notice(channel=channel, task_id=pk, status=status)
            for channel in channels
            for pk, user_id, status in done
            if user_id == channel.user_id
        ],
        ignore_conflicts=True,  # told already: the constraint keeps it once
    )


def _queue(channels: list[Channel]) -> None:
    now = timezone.now()
    for channel in channels:
        wait = timedelta(seconds=settings.MJDASH_NOTIFY_DIGEST_SECONDS if channel.digest else 0)
        send_notices.using(run_after=now + wait).enqueue(channel.pk)


# --- the worker's side -----------------------------------------------------------------------


def send_pending(channel_id: int) -> str:
    """Bundle what this channel owes into messages, each task alone or (a digest) up to
    MAX_DIGEST at once, and queue each. Notices are taken into a delivery by a conditional
    UPDATE, so two workers running this job at once never send the same task twice."""
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return "the channel was removed"
    owed = Notice.objects.filter(channel=channel, delivery=None).order_by("pk")
    owed_ids = list(owed.values_list("pk", flat=True))
    # A flood (a gateway finishing hundreds at once) goes out as one message, not hundreds:
    # a receiver, and the queue every worker shares, never take more than a few at a time.
    size = MAX_DIGEST if channel.digest or len(owed_ids) > FOLD_AFTER else 1
    queued = 0
    for start in range(0, len(owed_ids), size):
        delivery = _bundle(channel, owed_ids[start : start + size])
        if delivery is not None:
            send_delivery.enqueue(delivery.pk)
            queued += 1
    return f"{queued} messages queued"


def _bundle(channel: Channel, notice_ids: list[int]) -> Delivery | None:
    with transaction.atomic():
        delivery = Delivery.objects.create(channel=channel, due_at=timezone.now())
        taken = Notice.objects.filter(pk__in=notice_ids, delivery=None).update(delivery=delivery)
        if taken:
            return delivery
        delivery.delete()  # another worker took them all
    return None


def attempt(delivery_id: int) -> str:
    """One try at a delivery, if it is still owed and no other worker holds it. Returns what
    happened, for the worker's log."""
    if not _take(delivery_id):
        return "skipped: sent already, given up, or another worker holds it"
    delivery = Delivery.objects.select_related("channel").get(pk=delivery_id)
    notices = list(delivery.notices.select_related("task").order_by("pk"))
    if not (notices or delivery.test):  # its tasks were untracked meanwhile
        delivery.delete()
        return "nothing left to send"
    try:
        _send(delivery, notices)
    except DeliveryError as exc:
        return _failed(delivery, exc)
    except Exception as exc:  # a bug: say so on the settings page, and try again later
        log.exception("notification %s failed unexpectedly", delivery.pk)
        return _failed(delivery, DeliveryError(UNEXPECTED.english(kind=type(exc).__name__)))
    _record(delivery, Delivery.State.SENT, Channel.Outcome.SENT)
    return f"sent {delivery}"


def _take(delivery_id: int) -> bool:
    """The lease, and the attempt counted, in one conditional UPDATE."""
    now = timezone.now()
    return bool(
        Delivery.objects.filter(pk=delivery_id, state=Delivery.State.PENDING)
        .filter(attempts__lt=settings.MJDASH_NOTIFY_ATTEMPTS)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + lease(), attempts=F("attempts") + 1, last_attempt_at=now)
    )


def _failed(delivery: Delivery, exc: DeliveryError) -> str:
    attempts = delivery.attempts  # this one included (counted with the lease)
    retry = not (exc.permanent or delivery.test) and attempts < settings.MJDASH_NOTIFY_ATTEMPTS
    wait = timedelta(seconds=settings.MJDASH_NOTIFY_RETRY_SECONDS * 4 ** max(0, attempts - 1))
    due = timezone.now() + min(wait, MAX_BACKOFF)
    log.info("notification %s failed (attempt %s): %s", delivery.pk, attempts, exc.message)
    if not retry:
        _record(delivery, Delivery.State.FAILED, Channel.Outcome.FAILED, exc.message)
        return f"failed for good: {exc.message}"
    _record(delivery, Delivery.State.PENDING, Channel.Outcome.RETRYING, exc.message, due)
    send_delivery.using(run_after=due).enqueue(delivery.pk)
    return f"failed, retrying at {due:%H:%M:%S}: {exc.message}"


def _record(delivery: Delivery, state: str, outcome: str, error: str = "", due=None) -> None:
    """This attempt's outcome, on the delivery and on its channel (for the settings page)."""
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk).update(
        state=state,
        last_error=error[:500],
        due_at=due,
        lease_until=None,
        sent_at=now if state == Delivery.State.SENT else None,
    )
    Channel.objects.filter(pk=delivery.channel_id).update(
        last_outcome=outcome, last_error=error[:500], last_attempt_at=now
    )


def may_send_now(user) -> bool:
    """At most SENDS_PER_HOUR tests and confirmations an hour for one account: the buttons
    cannot make mjdash a mail cannon or a POST generator."""
    return ratelimit.hit(f"notify-sends:{user.pk}", 3600)[0] <= SENDS_PER_HOUR


def confirmation_token(channel: Channel) -> str:
    return signing.dumps([channel.pk, channel.target], salt=CONFIRM_SALT, compress=True)


def confirm(channel: Channel, token: str) -> bool:
    """The link in a confirmation e-mail: True once this very address is confirmed."""
    try:
        pk, target = signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRM_DAYS * 86400)
    except (signing.BadSignature, ValueError, TypeError):
        return False
    if (pk, target) != (channel.pk, channel.target):
        return False
    Channel.objects.filter(pk=channel.pk, confirmed_at__isnull=True).update(
        confirmed_at=timezone.now()
    )
    return True


def send_confirmation(channel: Channel) -> tuple[bool, str]:
    """The one message an unconfirmed address gets: a link that confirms it."""
    path = reverse("channel_confirm", args=[channel.pk, confirmation_token(channel)])
    with translation.override(channel.language or settings.LANGUAGE_CODE):
        subject = gettext("Confirm this address for mjdash notifications")
        body = render_to_string(
            "tracker/notify_confirm.txt", {"link": _link(path), "days": CONFIRM_DAYS}
        )
    try:
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [channel.target]).send(
            using="default"
        )
    except (OSError, smtplib.SMTPException, KeyError) as exc:
        error = MAIL_FAILED.english(kind=type(exc).__name__)
        Channel.objects.filter(pk=channel.pk).update(
            last_error=error, last_attempt_at=timezone.now()
        )
        return False, error
    return True, ""


def send_test(channel: Channel) -> tuple[bool, str]:
    """The settings page's button: one message saying it is a test, sent now, recorded like
    any other (and not tried again). Returns (sent, why not). An address not confirmed yet
    gets its confirmation again instead."""
    if channel.confirmed_at is None:
        return send_confirmation(channel)
    delivery = Delivery.objects.create(channel=channel, test=True, due_at=timezone.now())
    attempt(delivery.pk)
    delivery.refresh_from_db()
    return delivery.state == Delivery.State.SENT, delivery.last_error


def sweep(limit: int = 200) -> int:
    """Queue again what a dead worker lost: deliveries still owed whose attempt is long
    overdue and unleased, and owed notices that no job took up. At most once a minute.
    Returns how many jobs it queued."""
    if not cache.add("mjdash:notify-sweep", 1, timeout=SWEEP_EVERY):
        return 0
    now = timezone.now()
    late = now - lease()
    lost = (
        Delivery.objects.filter(state=Delivery.State.PENDING, test=False, due_at__lt=late)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .values_list("pk", flat=True)
    )
    deliveries = list(lost[:limit])
    Delivery.objects.filter(pk__in=deliveries).update(due_at=now)
    digest_wait = timedelta(seconds=settings.MJDASH_NOTIFY_DIGEST_SECONDS)
    stranded = Notice.objects.filter(delivery=None, created_at__lt=late - digest_wait)
    channels = list(stranded.order_by().values_list("channel", flat=True).distinct()[:limit])
    for pk in deliveries:
        send_delivery.enqueue(pk)
    for pk in channels:
        send_notices.enqueue(pk)
    return len(deliveries) + len(channels)


# --- the messages ----------------------------------------------------------------------------


def _send(delivery: Delivery, notices: list[Notice]) -> None:
    if delivery.channel.is_webhook:
        _post(delivery, notices)
    else:
        _mail(delivery, notices)


def payload(delivery: Delivery, notices: list[Notice]) -> dict:
    """What a webhook receives (as JSON), and what an e-mail lists."""
    return {
        "event": "test" if delivery.test else "tasks.finished",
        "delivery": delivery.pk,
        "tasks": [_record_of(notice) for notice in notices],
    }


def _record_of(notice: Notice) -> dict:
    task = notice.task
    done = notice.status == Status.SUCCESS and task.has_media
    return {
        "id": task.task_id,
        "status": notice.status,
        "action": task.action,
        "prompt": task.prompt,
        "fail_reason": task.fail_reason,
        "finished_at": task.finished_at.isoformat() if task.finished_at else None,
        "url": _link(reverse("task_detail", args=[task.task_id])),
        "image": _link(reverse("image", args=[task.task_id])) if done else None,
    }


def _link(path: str) -> str:
    return settings.MJDASH_SITE_URL + path


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 of "<timestamp>.<body>", keyed with the
    secret."""
    signed = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _post(delivery: Delivery, notices: list[Notice]) -> None:
    from . import gateway  # the gateway service imports this module for its hook

    body = json.dumps(payload(delivery, notices), ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Mjdash-Event": "test" if delivery.test else "tasks.finished",
        "X-Mjdash-Delivery": str(delivery.pk),
        TIMESTAMP: timestamp,
    }
    if delivery.channel.secret:
        headers[SIGNATURE] = sign(delivery.channel.secret, timestamp, body)
    try:
        gateway.post_webhook(delivery.channel.target, body, headers)
    except gateway.GatewayError as exc:
        raise DeliveryError(exc.message, permanent=exc.permanent) from exc


def _mail(delivery: Delivery, notices: list[Notice]) -> None:
    if "default" not in mailers:
        raise DeliveryError(NO_MAILER.english(), permanent=True)
    channel = delivery.channel
    with translation.override(channel.language or settings.LANGUAGE_CODE):
        subject = _subject(delivery, notices)
        body = render_to_string(
            "tracker/notify_email.txt",
            {"test": delivery.test, "tasks": [_lines(n) for n in notices]},
        )
    message = EmailMessage(
        subject,
        body,
        settings.DEFAULT_FROM_EMAIL,
        [channel.target],
        headers={"X-Mjdash-Delivery": str(delivery.pk)},
    )
    try:
        message.send(using="default")
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(MAIL_REFUSED.english(), permanent=True) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(MAIL_FAILED.english(kind=type(exc).__name__)) from exc


def _subject(delivery: Delivery, notices: list[Notice]) -> str:
    if delivery.test:
        return gettext("mjdash: a test notification")
    if len(notices) == 1:
        notice = notices[0]
        if notice.status == Status.SUCCESS:
            return gettext("mjdash: task %(id)s is done") % {"id": notice.task.task_id}
        return gettext("mjdash: task %(id)s failed") % {"id": notice.task.task_id}
    count = len(notices)
    return ngettext(
        "mjdash: %(count)d task finished", "mjdash: %(count)d tasks finished", count
    ) % {"count": count}


def _lines(notice: Notice) -> dict:
    record = _record_of(notice)
    return {**record, "status_label": Status(notice.status).label}


# --- the settings page's channels ------------------------------------------------------------


class TooMany(Exception):
    """The account has Channel.MAX_PER_USER channels already."""


def mail_ready() -> bool:
    """Can this site send e-mail at all (a default mailer is set up)?"""
    return "default" in mailers


def add_channel(user, kind: str, target: str, secret: str = "", digest: bool = False) -> Channel:
    if Channel.objects.filter(user=user).count() >= Channel.MAX_PER_USER:
        raise TooMany()
    webhook = kind == Channel.Kind.WEBHOOK
    channel = Channel.objects.create(
        user=user,
        kind=kind,
        target=target,
        secret=secret if webhook else "",
        digest=digest,
        language=translation.get_language() or "",
        confirmed_at=timezone.now() if webhook else None,
    )
    if not webhook and may_send_now(user):
        send_confirmation(channel)
    return channel
