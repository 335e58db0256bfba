"""mjdash settings: everything comes from the environment, with safe development defaults.

Every variable is listed, with its default, in .env.example and the README.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    """true/false, 1/0, yes/no or on/off, in any case; anything else stops the start."""
    value = os.environ.get(name, default)
    word = value.strip().lower()
    if word in ("true", "1", "yes", "on"):
        return True
    if word in ("false", "0", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false (got {value!r})")


def envint(name: str, default: str) -> int:
    value = os.environ.get(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def envjson(name: str) -> dict:
    """A JSON object from the environment ({} when unset); anything else stops the start."""
    raw = os.environ.get(name, "").strip()
    try:
        value = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f'{name} must be a JSON object, like {{"location": "…"}}.')
    return value


def envsecret(name: str, default: str = "") -> str:
    """A secret from NAME, or from the file that NAME_FILE points to (Docker/systemd style)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return os.environ.get(name, default)


DEBUG = envbool("DEBUG", "False")
SECRET_KEY = envsecret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=True for local development).")
    SECRET_KEY = "mjdash-insecure-development-key-never-use-in-production"

SECRET_KEY_FALLBACKS = [
    k.strip() for k in os.environ.get("SECRET_KEY_FALLBACKS", "").split(",") if k.strip()
]

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
if DEBUG and not ALLOWED_HOSTS:
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

DATA_DIR = Path(os.environ.get("MJDASH_DATA_DIR", BASE_DIR / "data"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",
    "django_tasks_db",
    "tracker",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tracker.middleware.HtmxLoginRedirectMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it turns a locked-out login into our 429 page
]

ROOT_URLCONF = "mjdash.urls"
WSGI_APPLICATION = "mjdash.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tracker.context_processors.site",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'mjdash.sqlite3'}")
    )
}
# Persistent connections: on a server database each web thread and worker keeps its connection
# for DATABASE_CONN_MAX_AGE seconds instead of opening one per request (measured: 1.55x the
# polls per second at 60 s), and checks it is alive before reusing it, so a restarted server
# costs one reconnect, not an error. Connections stay bounded: one per gunicorn thread and per
# worker process. SQLite opens a file, not a connection over the network: 0 there.
_server_database = DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3"
DATABASES["default"]["CONN_MAX_AGE"] = envint(
    "DATABASE_CONN_MAX_AGE", "60" if _server_database else "0"
)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = _server_database
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the poll view read while a refresh writes; a busy timeout rides out short locks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    # Sessions are read from Redis on every request by every web process, and written through
    # to the database, so a Redis that restarts or evicts (a cache keeps nothing it must) logs
    # nobody out.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Two languages: English and Simplified Chinese. A visitor gets the one their browser asks
# for (Accept-Language) until they pick one in the header, which a cookie remembers.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # The image archive: originals, thumbnails and quadrants, named by their sha256. Any
    # Django storage works; an S3-compatible bucket is django-storages' S3Storage with its
    # options as JSON (README, "Keeping images in a bucket").
    "archive": {
        "BACKEND": os.environ.get(
            "MJDASH_ARCHIVE_BACKEND", "django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": envjson("MJDASH_ARCHIVE_OPTIONS") or {"location": str(MEDIA_ROOT / "archive")},
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Security headers. CSP: scripts only from us or with the per-request nonce; no inline styles.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "media-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = envbool("SECURE_COOKIES", "False")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "False")
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "0")
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "False")
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "False")
if envbool("BEHIND_HTTPS_PROXY", "False"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Accounts. Login throttling (django-axes): after MJDASH_LOGIN_FAILURE_LIMIT failures for one
# username from one client address, that pair is refused for the cool-off, even with the right
# password; a refused try restarts the cool-off. AxesStandaloneBackend only checks the lockout;
# ModelBackend logs people in.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("MJDASH_LOGIN_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = timedelta(minutes=envint("MJDASH_LOGIN_COOLOFF_MINUTES", "15"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "mjdash.accounts.locked_out"
AXES_CLIENT_IP_CALLABLE = "mjdash.accounts.client_ip"
# Reverse proxies in front of mjdash that each append the client's address to
# X-Forwarded-For. 0 trusts no header and uses the connection's own address (REMOTE_ADDR).
MJDASH_PROXY_COUNT = envint("MJDASH_PROXY_COUNT", "0")

# Mail, for password reset only. Without EMAIL_HOST there is no mailer, so nothing can try to
# send mail, and the password reset pages are not routed (mjdash/urls.py).
MAILERS = {}
_smtp = {
    "host": os.environ.get("EMAIL_HOST", ""),
    "port": envint("EMAIL_PORT", "587"),
    "username": os.environ.get("EMAIL_HOST_USER", ""),
    "password": envsecret("EMAIL_HOST_PASSWORD"),
    "use_tls": envbool("EMAIL_USE_TLS", "True"),
    "timeout": 10,
}
if _smtp["host"]:
    MAILERS["default"] = {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": _smtp,
    }
else:
    SILENCED_SYSTEM_CHECKS = ["mail.W001"]  # "no default mailer": deliberately so
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "webmaster@localhost")
# Notifications (tracker/notify.py): tasks that finish within the digest window go out as one
# message on channels that ask for a digest; a failed delivery is tried again after 30 s,
# 2 min, 8 min… up to the attempts; a webhook gets this many seconds, start to end.
# MJDASH_SITE_URL makes the links in webhooks and e-mails absolute (e.g. https://mj.example.com).
MJDASH_NOTIFY_DIGEST_SECONDS = envint("MJDASH_NOTIFY_DIGEST_SECONDS", "60")
MJDASH_NOTIFY_ATTEMPTS = envint("MJDASH_NOTIFY_ATTEMPTS", "6")
MJDASH_NOTIFY_RETRY_SECONDS = envint("MJDASH_NOTIFY_RETRY_SECONDS", "30")
MJDASH_WEBHOOK_TIMEOUT = envint("MJDASH_WEBHOOK_TIMEOUT", "10")
MJDASH_SITE_URL = os.environ.get("MJDASH_SITE_URL", "").rstrip("/")

# mjdash itself
# The gateway settings were once named MJDASH_UPSTREAM_* (and ..._PRIVATE_UPSTREAMS); those
# names are still read where the new ones are not set, so a deployment survives the rename.
_RENAMED = {
    f"MJDASH_UPSTREAM_{name}": f"MJDASH_GATEWAY_{name}"
    for name in ("URL", "TOKEN", "TOKEN_FILE", "AUTH", "TIMEOUT", "RETRIES")
}
_RENAMED["MJDASH_ALLOW_PRIVATE_UPSTREAMS"] = "MJDASH_ALLOW_PRIVATE_GATEWAYS"
for _old, _new in _RENAMED.items():
    if _old in os.environ:
        os.environ.setdefault(_new, os.environ[_old])
MJDASH_GATEWAY_URL = os.environ.get("MJDASH_GATEWAY_URL", "http://127.0.0.1:8765")
MJDASH_GATEWAY_TOKEN = envsecret("MJDASH_GATEWAY_TOKEN")
MJDASH_GATEWAY_AUTH = os.environ.get("MJDASH_GATEWAY_AUTH", "bearer")
if MJDASH_GATEWAY_AUTH not in ("bearer", "raw", "mj-api-secret"):
    raise ImproperlyConfigured("MJDASH_GATEWAY_AUTH must be bearer, raw or mj-api-secret")
MJDASH_ALLOW_SIGNUP = envbool("MJDASH_ALLOW_SIGNUP", "False")
# Users may name their own gateway; by default not one on this server's own network.
MJDASH_ALLOW_PRIVATE_GATEWAYS = envbool("MJDASH_ALLOW_PRIVATE_GATEWAYS", str(DEBUG))
MJDASH_REFRESH_SECONDS = envint("MJDASH_REFRESH_SECONDS", "5")
MJDASH_POLL_SECONDS = envint("MJDASH_POLL_SECONDS", "3")
MJDASH_GATEWAY_TIMEOUT = envint("MJDASH_GATEWAY_TIMEOUT", "10")
MJDASH_GATEWAY_RETRIES = envint("MJDASH_GATEWAY_RETRIES", "2")
# A submit (imagine, a button, a modal) is sent once and waited for this long; new-api waits
# up to 60 s on its own upstream.
MJDASH_SUBMIT_TIMEOUT = envint("MJDASH_SUBMIT_TIMEOUT", "30")
# Submits (each spends the user's quota at the gateway) one account may send in a minute.
MJDASH_SUBMIT_RATE_PER_MINUTE = envint("MJDASH_SUBMIT_RATE_PER_MINUTE", "12")
# The largest reference picture an Imagine may carry (sent to the gateway as base64).
MJDASH_REFERENCE_MAX_BYTES = envint("MJDASH_REFERENCE_MAX_BYTES", str(5 * 1024 * 1024))
# An upload larger than four such pictures is refused before its bytes are read.
FILE_UPLOAD_HANDLERS = [
    "tracker.uploads.CappedUpload",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
MJDASH_LIST_CHUNK = envint("MJDASH_LIST_CHUNK", "100")
MJDASH_BREAKER_FAILURES = envint("MJDASH_BREAKER_FAILURES", "3")
MJDASH_BREAKER_COOLOFF_SECONDS = envint("MJDASH_BREAKER_COOLOFF_SECONDS", "60")
MJDASH_STALE_MINUTES = envint("MJDASH_STALE_MINUTES", "10")
# The cadence (tracker/refresh.py): a task whose state has not changed for SLOW_AFTER seconds
# (it sits in a queue, waits for input, or went stale) is asked every SLOW_REFRESH seconds
# instead of every REFRESH seconds. A refresh holds its gateway for at most LEASE seconds, so
# a worker that dies mid-cycle blocks nobody for longer.
MJDASH_SLOW_AFTER_SECONDS = envint("MJDASH_SLOW_AFTER_SECONDS", "60")
MJDASH_SLOW_REFRESH_SECONDS = envint("MJDASH_SLOW_REFRESH_SECONDS", "30")
MJDASH_REFRESH_LEASE_SECONDS = envint("MJDASH_REFRESH_LEASE_SECONDS", "120")
# The background worker (`manage.py worker`) beats this often; pages leave the asking to it
# while its last beat is at most three beats old.
MJDASH_WORKER_BEAT_SECONDS = envint("MJDASH_WORKER_BEAT_SECONDS", "5")
MJDASH_IMAGE_MAX_BYTES = envint("MJDASH_IMAGE_MAX_BYTES", str(50 * 1024 * 1024))
MJDASH_IMAGE_TIMEOUT = envint("MJDASH_IMAGE_TIMEOUT", "60")  # seconds for every byte of one image
# Hosts images may come from besides the gateway itself: Midjourney's and Discord's public
# CDNs, where novicezk and trueai gateways leave them. Every fetch is still address-checked.
MJDASH_IMAGE_HOSTS = [
    h.strip().lower()
    for h in os.environ.get(
        "MJDASH_IMAGE_HOSTS", "cdn.midjourney.com,cdn.discordapp.com,media.discordapp.net"
    ).split(",")
    if h.strip()
]
# The archive: per-user quota in MiB (0: none), and the worker's lease on one archive job
# (a job whose worker died is taken up again once its lease runs out).
MJDASH_ARCHIVE_QUOTA_MB = envint("MJDASH_ARCHIVE_QUOTA_MB", "0")
MJDASH_ARCHIVE_LEASE_SECONDS = envint("MJDASH_ARCHIVE_LEASE_SECONDS", "300")
MJDASH_ARCHIVE_ATTEMPTS = envint("MJDASH_ARCHIVE_ATTEMPTS", "8")
# Behind nginx (X-Accel-Redirect) or Apache/lighttpd (X-Sendfile), archived files can be
# sent by the web server: the internal URL prefix that maps onto the archive folder.
MJDASH_ACCEL_REDIRECT = os.environ.get("MJDASH_ACCEL_REDIRECT", "")
MJDASH_SENDFILE = envbool("MJDASH_SENDFILE", "False")

# Background jobs (archiving) run through Django's Tasks framework. By default the queue is the
# database (django-tasks-db: the same on SQLite and PostgreSQL); MJDASH_TASK_QUEUE=rq puts it
# on Redis (REDIS_URL) through RQ (django-tasks-rq). `python manage.py worker` runs whichever
# is chosen; the code that queues a job is the same for both.
MJDASH_TASK_QUEUE = os.environ.get("MJDASH_TASK_QUEUE", "db").strip().lower()
if MJDASH_TASK_QUEUE == "db":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
elif MJDASH_TASK_QUEUE == "rq":
    if not REDIS_URL:
        raise ImproperlyConfigured("MJDASH_TASK_QUEUE=rq needs REDIS_URL, where RQ keeps it")
    INSTALLED_APPS.append("django_rq")
    DATABASE_ROUTERS = ["mjdash.routers.NoTablesForDjangoRQ"]
    # A job may run as long as its archive lease; then another worker may take it up.
    RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": MJDASH_ARCHIVE_LEASE_SECONDS}}
    RQ = {"JOB_CLASS": "django_tasks_rq.Job"}  # runs a job as Django's Tasks framework does
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
else:
    raise ImproperlyConfigured(f"MJDASH_TASK_QUEUE must be db or rq (got {MJDASH_TASK_QUEUE!r})")
# The site's gateway and token are shared by everyone who picks no gateway of their own.
# False keeps that shared default for staff only; everyone else brings their own token.
MJDASH_SHARED_DEFAULT_FOR_ALL = envbool("MJDASH_SHARED_DEFAULT_FOR_ALL", "True")
# Guessing task IDs on the shared gateway: after this many unknown IDs in the window, an
# account's further unknown IDs are refused until the window ends.
MJDASH_GUESS_LIMIT = envint("MJDASH_GUESS_LIMIT", "20")
MJDASH_GUESS_WINDOW_MINUTES = envint("MJDASH_GUESS_WINDOW_MINUTES", "15")
# The JSON API: requests per minute for each personal access token.
MJDASH_API_RATE_PER_MINUTE = envint("MJDASH_API_RATE_PER_MINUTE", "120")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
