from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path

from tracker.views import account


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on pages that do not name one (the admin's)."""
    return redirect(static("img/favicon.svg"), permanent=True)


# Password reset sends mail: with no mailer (EMAIL_HOST unset) its pages are not routed at
# all, and the login page, which links to them only where they resolve, offers no link.
account_urls = [
    pattern
    for pattern in auth_urls.urlpatterns
    if "default" in settings.MAILERS or not pattern.name.startswith("password_reset")
]

urlpatterns = [
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    path("accounts/logout/", account.Logout.as_view(), name="logout"),
    path("accounts/", include(account_urls)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("tracker.api_urls")),
    path("", include("tracker.urls")),
]
