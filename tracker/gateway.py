"""The gateway service: the one door between the product and the Midjourney-proxy protocol.

Views, management commands and (later) the worker ask this module, in the product's own
words: refresh what is due, track pasted text, re-check a task, its seed, open its image,
test a gateway. It owns the policy around every call: who may ask about what (ownership),
the circuit breaker, the refresh claim, the site token's tie to the site's URL, and the
process's shared clients. `upstream` below it is pure protocol; nothing else imports it.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Exists, OuterRef
from django.utils import timezone

from . import breaker, heartbeat, notify, ownership, refresh, submitting, tracking
from .models import Gateway, Profile, Submission, TrackedTask, gateway_for
from .stored_text import Stored
from .upstream import (
    Client,
    FileFetcher,
    ImageStream,
    MaybeSubmitted,
    Redirected,
    SeedRefused,
    SubmitRefused,
    TaskNotFound,
    UpstreamError,
    is_public,
    not_allowed,
    origin_of,
    path_on_gateway,
    resolve,
    same_url,
)

log = logging.getLogger(__name__)
GatewayError = UpstreamError  # the one exception callers catch: .message, .permanent
TrackResult = tracking.TrackResult
MAX_PARALLEL = 4  # chunks in flight at once against one gateway
MAX_CLIENTS = 64
# What this service says is in English, like the gateway errors it passes on: a message may
# be stored, and pages translate it when they show it (stored_text.render, `|stored`).
SEED_LATER = Stored.gettext("The seed is available once the task has finished.").english()
CONNECTED = Stored.gettext("Connected: the gateway accepted the token.").english()
NOT_OFFERED = Stored.gettext("The gateway does not offer that action on this task.")
NO_INPUT_WANTED = Stored.gettext("This task is not waiting for input.")
SITE_TOKEN_ELSEWHERE = Stored.gettext(
    "mjdash sends the site's token only to the site's own gateway. Enter your own token for "
    "this gateway in Settings."
).english()

__all__ = ["GatewayError", "ImageStream", "TaskNotFound", "TrackResult"]


# --- refresh ---------------------------------------------------------------------------------


def refresh_due(user) -> None:
    """A page's poll: every gateway this user has unfinished tasks on is refreshed, if it is
    due and this caller wins the lease (for everyone who uses that gateway). While a worker
    runs, it does that asking, and pages only read the database."""
    if heartbeat.worker_alive():
        return
    rows = ownership.usable_by(user, TrackedTask.objects.filter(user=user)).unfinished()
    for gateway_id in rows.order_by().values_list("gateway_id", flat=True).distinct():
        refresh_if_due(gateway_id)


def refresh_task_if_due(task: TrackedTask) -> None:
    """The detail page's poll: its gateway, if due (and no worker does it), then the row."""
    if task.live and ownership.may_use(task.user, task.gateway) and not heartbeat.worker_alive():
        refresh_if_due(task.gateway_id)
    task.refresh_from_db()


def refresh_all_due() -> int:
    """One pass over every gateway that is due (refresh_tasks --once): each refreshed under
    its own lease, a few at once. Returns how many this caller refreshed."""
    gateway_ids = due_gateway_ids()
    if len(gateway_ids) <= 1:
        return sum(refresh_one(gateway_id) for gateway_id in gateway_ids)
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(gateway_ids))) as pool:
        return sum(pool.map(refresh_one, gateway_ids))


def due_gateway_ids() -> list[int]:
    """The gateways with unfinished tasks that are due and that nobody holds."""
    now = timezone.now()
    unfinished = TrackedTask.objects.filter(gateway=OuterRef("pk")).unfinished()
    due = Gateway.objects.filter(Exists(unfinished)).filter(refresh.free_and_due(now))
    return list(due.values_list("pk", flat=True))


def refresh_one(gateway_id: int) -> bool:
    """One gateway's turn, for a worker's thread: a failure is logged and never reaches the
    other gateways, and the thread's database connection is closed after."""
    try:
        return refresh_if_due(gateway_id)
    except Exception:  # one gateway's surprise is logged; the others still get their turn
        log.exception("refreshing gateway %s failed", gateway_id)
        return False
    finally:
        if threading.current_thread() is not threading.main_thread():
            connection.close()


def refresh_if_due(gateway_id: int) -> bool:
    """One gateway's turn, if it is due and free: ask what is due on it (its fast lane, and
    its slow lane when that is due too) and hand the lease back. False if someone else has
    it, or it is not due."""
    holder = refresh.claim(gateway_id)
    if not holder:
        return False
    due = refresh.Due([], slow_lane=False)
    try:
        gateway = Gateway.objects.get(pk=gateway_id)
        due = refresh.due(gateway)
        if due.ids:
            refresh_gateway(gateway, due.ids)
    finally:
        refresh.release(gateway_id, holder, asked_slow=due.slow_lane)
    return True


def refresh_gateway(gateway: Gateway, ids: list[str] | None = None) -> bool:
    """Ask about `ids` (default: all unfinished) and merge the answers. More IDs than one
    chunk go out as parallel chunks (at most MAX_PARALLEL at once), so a refresh takes about
    one round trip however many tasks run, and the answers are merged together in a fixed
    number of queries. Returns False when the gateway could not be asked; the error is
    stored on the rows it concerns, not raised."""
    ids = refresh.unfinished_ids(gateway) if ids is None else list(dict.fromkeys(ids))
    if not ids:
        return True
    size = max(1, settings.MJDASH_LIST_CHUNK)
    chunks = [ids[start : start + size] for start in range(0, len(ids), size)]
    try:
        ask = partial(_ask, _client(gateway))
    except UpstreamError as exc:
        _failed(gateway, ids, exc)
        return False
    if len(chunks) == 1:
        answers = [ask(chunks[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(chunks))) as pool:
            answers = list(pool.map(ask, chunks))
    asked, found, failed, error = [], [], [], None
    for chunk, answer in zip(chunks, answers, strict=True):
        if isinstance(answer, UpstreamError):
            failed, error = failed + chunk, answer
        else:
            asked, found = asked + chunk, found + answer
    if asked:
        _merged(gateway, asked, found)
    if error is not None:
        _failed(gateway, failed, error)
        return False
    breaker.record_success(gateway)
    return True


def _merged(gateway: Gateway, asked: list[str], found: list) -> None:
    """Store the answers; tasks seen finishing now are announced to their owners."""
    merged = refresh.merge(gateway, asked, found)
    notify.finished(merged.finished)


def _ask(client: Client, chunk: list[str]):
    """One chunk's answer, or its failure as a value (so the other chunks still count)."""
    try:
        return client.list_by_condition(chunk)
    except UpstreamError as exc:
        return exc


def _failed(gateway: Gateway, ids: list[str], exc: UpstreamError) -> None:
    log.warning("gateway %s: %s", gateway.display_url, exc.message)
    refresh.note(TrackedTask.objects.filter(gateway=gateway, task_id__in=ids), exc.message)
    if not gateway.circuit_open:  # the breaker's own refusal is not a new failure
        breaker.record_failure(gateway, exc.message, permanent=exc.permanent)


def unreachable_for(user) -> dict[int, str]:
    """The gateways this user's tasks are on that are failing: id → since when, and why."""
    mine = TrackedTask.objects.filter(user=user, gateway=OuterRef("pk"))
    failing = Gateway.objects.filter(unreachable_since__isnull=False).filter(Exists(mine))
    return {gateway.pk: breaker.unreachable_message(gateway) for gateway in failing}


# --- the verbs a page offers -------------------------------------------------------------------


def track(user, text: str) -> TrackResult:
    """Pasted text → the IDs this user does not track yet, looked up at once."""
    return tracking.track(user, text, ask=refresh_gateway)


def recheck(task: TrackedTask) -> None:
    """One task, asked now with a single fetch (the re-check button), at most once per
    refresh interval for each user and task. On a shared gateway, a row the user does not
    own is a guess like any pasted ID: it costs the guessing budget, and someone else's task
    is answered "not found" without a call. A refusal is stored as the row's error, so the
    page shows it where it shows every other."""
    gateway, rows = task.gateway, TrackedTask.objects.filter(pk=task.pk)
    key = f"mjdash:recheck:{task.user_id}:{task.task_id}"
    if not cache.add(key, 1, timeout=max(2, settings.MJDASH_REFRESH_SECONDS)):
        return  # asked moments ago: the button cannot be used to hammer the gateway
    if not ownership.may_use(task.user, gateway):
        refresh.note(rows, ownership.STAFF_ONLY)
        return
    guess = gateway.shared and not ownership.owns(task)
    if guess and ownership.guesses_left(task.user) <= 0:
        refresh.note(rows, ownership.throttled_message(task.user))
        return
    if guess and not ownership.claim(task.user, gateway, [task.task_id]):
        ownership.spend_guesses(task.user, 1)
        refresh.note(rows, "")
        return
    try:
        found = _client(gateway).fetch(task.task_id)
    except UpstreamError as exc:
        _failed(gateway, [task.task_id], exc)
        found = None
    else:
        breaker.record_success(gateway)
        _merged(gateway, [task.task_id], [found] if found else [])
    if guess and found is None:  # unanswered or unknown: it costs, and reserves nothing
        ownership.spend_guesses(task.user, 1)
        ownership.release_unknown(gateway, [task.task_id], user=task.user)


def seed(task: TrackedTask) -> tuple[str, str, bool]:
    """(seed, error message, worth retrying). A refusal reads "not finished yet" only while
    the task still runs; for a finished task it is the gateway's own words."""
    if task.seed:  # a finished task's seed never changes: asked once
        return task.seed, "", False
    try:
        found = _client_for_task(task).image_seed(task.task_id)
    except SeedRefused as exc:
        return "", SEED_LATER if not task.finished else exc.message, False
    except UpstreamError as exc:
        return "", exc.message, not exc.permanent
    if task.finished:
        TrackedTask.objects.filter(pk=task.pk).update(seed=found[:64])
    return found, "", False


def open_image(task: TrackedTask, max_bytes: int | None = None) -> ImageStream:
    """The task's result (picture or clip), streamed from where it is: straight from an
    allowed image host when imageUrl is on one (no gateway call), else the gateway's own
    /mj/image/<id>, then imageUrl when it is on the gateway. Raises GatewayError."""
    url, limit = task.image_url, max_bytes or settings.MJDASH_IMAGE_MAX_BYTES
    if _on_image_host(task, url):
        return _files().open(url, _allowed_hosts(task), limit)
    client = _client_for_task(task)
    try:
        return _followed(task, client.open_image, task.task_id, limit)
    except UpstreamError as exc:
        if not url or exc.status not in (200, 404):
            raise
        fallback = path_on_gateway(task.gateway.base_url, url)
        if not fallback:  # no image proxy here, and imageUrl is on a host we may not ask
            raise (not_allowed(origin_of(url)) if exc.status == 404 else exc) from exc
        return _followed(task, client.open_path, fallback, limit)


def open_file(task: TrackedTask, url: str, max_bytes: int | None = None) -> ImageStream:
    """One more file of the task (an imageUrls entry, its video): from an allowed image
    host, or from the task's own gateway, and from nowhere else. Raises GatewayError."""
    limit = max_bytes or settings.MJDASH_IMAGE_MAX_BYTES
    if _on_image_host(task, url):
        return _files().open(url, _allowed_hosts(task), limit)
    path = path_on_gateway(task.gateway.base_url, url)
    if not path:
        raise not_allowed(origin_of(url))
    return _followed(task, _client_for_task(task).open_path, path, limit)


def _on_image_host(task: TrackedTask, url: str) -> bool:
    """Is `url` on an allowed image host (and not the gateway itself)? Only for the owner."""
    if not url or origin_of(url) not in settings.MJDASH_IMAGE_HOSTS:
        return False
    _check_owner(task)
    return not path_on_gateway(task.gateway.base_url, url)


def _allowed_hosts(task: TrackedTask) -> set[str]:
    """Where a file fetch may go, redirects included: the image hosts (on their standard
    ports, or the port an entry names) and the gateway itself."""
    return {*settings.MJDASH_IMAGE_HOSTS, origin_of(task.gateway.base_url)}


def _followed(task: TrackedTask, opener, what: str, limit: int) -> ImageStream:
    """Open a file on the gateway; a redirect is followed without the token, and only to an
    allowed host."""
    try:
        return opener(what, limit)
    except Redirected as exc:
        return _files().open(exc.location, _allowed_hosts(task), limit)


_fetchers: dict[bool, FileFetcher] = {}


def _files() -> FileFetcher:
    """The process's tokenless client for image hosts. Private addresses only where the
    admin allows private gateways; the guard checks every connection it opens."""
    allow_private = settings.MJDASH_ALLOW_PRIVATE_GATEWAYS
    with _clients_lock:
        if allow_private not in _fetchers:
            _fetchers[allow_private] = FileFetcher(allow_private=allow_private)
        return _fetchers[allow_private]


# --- submitting: each one spends the user's quota at the gateway -------------------------------


def submit_action(task: TrackedTask, custom_id: str, key: str) -> Submission:
    """One of the task's own buttons (U2, V3, zoom, ...): the task it starts is tracked at
    once for the same user, linked to this one. Only a button the gateway offered."""
    offered = {b.get("customId") for b in task.buttons or [] if isinstance(b, dict)}
    if not custom_id or custom_id not in offered:
        raise GatewayError(NOT_OFFERED.english(), permanent=True)
    body = {"taskId": task.task_id, "customId": custom_id}
    return _submit(task.user, task.gateway, "action", body, key, parent=task, custom_id=custom_id)


def submit_modal(task: TrackedTask, prompt: str, key: str) -> Submission:
    """The input a task in MODAL waits for (remix, custom zoom, inpaint)."""
    if not task.needs_input:
        raise GatewayError(NO_INPUT_WANTED.english(), permanent=True)
    body = {"taskId": task.task_id, "prompt": prompt, "maskBase64": ""}
    return _submit(task.user, task.gateway, "modal", body, key, parent=task)


def imagine(user, prompt: str, images: list[str], mode: str, key: str) -> Submission:
    """A new job on the user's gateway: a prompt, reference images as data URLs, and the
    gateway's speed mode ("" for its default)."""
    gateway = gateway_for(user)
    if not ownership.may_use(user, gateway):
        raise GatewayError(ownership.STAFF_ONLY, permanent=True)
    body = {"prompt": prompt, "base64Array": images}
    same = submitting.fingerprint(gateway.pk, prompt, mode, images=images)
    return _submit(user, gateway, "imagine", body, key, mode=mode, fingerprint=same)


def _submit(user, gateway: Gateway, route: str, body: dict, key: str, *, mode="", **fields):
    """Send once per click. The second request with the same key gets the first one's
    outcome; nothing is ever sent again by itself, least of all after the gateway may have
    taken it (a timeout says so, and keeps the key)."""
    parent = fields.get("parent")
    if parent is not None:
        _check_owner(parent)
    submission, first = submitting.begin(user, key, route, **fields)
    if not first:
        return submission
    state = Submission.State
    if not submitting.within_rate(user):
        submitting.settle(submission, state.NOT_SENT, submitting.TOO_FAST.english())
        return submission
    try:
        answer = _client(gateway).submit(route, body, mode)
    except MaybeSubmitted as exc:
        submitting.settle(submission, state.UNCERTAIN, exc.message)
    except SubmitRefused as exc:
        submitting.settle(submission, state.REFUSED, exc.message)
    except UpstreamError as exc:
        submitting.settle(submission, state.NOT_SENT, exc.message)
    else:
        if submitting.track_started(user, gateway, answer.task_id, parent):
            submitting.settle(submission, state.ACCEPTED, answer.description, answer.task_id)
            refresh_gateway(gateway, [answer.task_id])  # it shows its real state at once
        else:
            taken = submitting.TAKEN.english(task_id=answer.task_id)
            submitting.settle(submission, state.ACCEPTED, taken)
    return submission


def test_connection(user) -> tuple[bool, str]:
    """One cheap call to the user's gateway, and what it means in plain words."""
    try:
        _client(gateway_for(user)).ping()
    except UpstreamError as exc:
        return False, exc.message
    return True, CONNECTED


def choose(user, base_url: str, token: str, auth_style: str) -> Gateway:
    """Point `user` at a gateway of their own. An empty token keeps the user's own saved
    token only for the very URL it was saved with; a new URL, or the site's shared gateway,
    gets no token carried over."""
    current = gateway_for(user)
    if not token and same_url(base_url, current.base_url) and not current.shared:
        token = current.token
    gateway = Gateway.for_values(base_url, token, auth_style)
    Profile.objects.update_or_create(user=user, defaults={"gateway": gateway})
    return gateway


def is_public_host(host: str) -> bool:
    """Does `host` resolve, and only to public addresses? (The settings form's early word;
    the real check is made again at every gateway.)"""
    try:
        return all(is_public(address) for address in resolve(host, 443))
    except (OSError, UnicodeError):
        return False


def _client_for_task(task: TrackedTask) -> Client:
    """Never for a task on a shared gateway that is not this user's (asked of nobody), and
    never while the gateway's breaker is open."""
    _check_owner(task)
    return _client(task.gateway)


def _check_owner(task: TrackedTask) -> None:
    """Anything fetched for a task, from its gateway or an image host, is for its owner
    only, on a gateway they may use: anyone else's is "not found"."""
    if not ownership.owns(task) or not ownership.may_use(task.user, task.gateway):
        raise TaskNotFound()


# --- the clients -------------------------------------------------------------------------------

_clients: dict[tuple, Client] = {}
_clients_lock = threading.Lock()


def is_site_gateway(base_url: str) -> bool:
    return same_url(base_url, settings.MJDASH_GATEWAY_URL)


def _client(gateway: Gateway) -> Client:
    """The process's client for a stored gateway, while its breaker is closed. One per
    gateway and token, kept open, so polls reuse its kept-alive connections instead of
    dialling (and building a TLS context) every time. httpx clients are thread-safe.

    Here, where every client is built, the site's token is tied to the site's own URL:
    whatever a form, the admin or the database says, no other URL ever receives it. The
    site's own gateway may sit on a private network; a user's may not, unless allowed."""
    refusal = breaker.refusal(gateway)
    if refusal:
        raise UpstreamError(refusal)
    site = is_site_gateway(gateway.base_url)
    site_token = gateway.token and gateway.token == settings.MJDASH_GATEWAY_TOKEN
    if site_token and not (site and gateway.shared):  # shared: its tasks have owners
        raise UpstreamError(SITE_TOKEN_ELSEWHERE, permanent=True)
    allow_private = site or settings.MJDASH_ALLOW_PRIVATE_GATEWAYS
    key = (
        gateway.base_url,
        gateway.token,
        gateway.auth_style,
        allow_private,
        settings.MJDASH_GATEWAY_TIMEOUT,
        settings.MJDASH_GATEWAY_RETRIES,
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if len(_clients) >= MAX_CLIENTS:  # settings pages can mint many; start over,
                _clients.clear()  # without closing clients another request may be using
            client = Client(
                gateway.base_url,
                gateway.token,
                gateway.auth_style,
                allow_private=allow_private,
            )
            _clients[key] = client
        return client


# --- webhooks (notifications) ------------------------------------------------------------------

_webhook_senders: dict[bool, object] = {}


def post_webhook(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST a notification to a user's webhook receiver; its 2xx status, or GatewayError
    (`permanent` when sending the same again cannot help). The same rules as image fetches:
    the address checked at connect time (private ones only where the admin allows private
    gateways), no redirects, one deadline (MJDASH_WEBHOOK_TIMEOUT), the answer read only up to
    a cap. The sender is kept per process, like the other clients."""
    from .upstream import WebhookSender  # here, so this section stands apart from the top

    allow_private = settings.MJDASH_ALLOW_PRIVATE_GATEWAYS
    with _clients_lock:
        sender = _webhook_senders.get(allow_private)
        if sender is None:
            sender = _webhook_senders[allow_private] = WebhookSender(allow_private=allow_private)
    return sender.post(url, body, headers, float(settings.MJDASH_WEBHOOK_TIMEOUT))
