"""The gallery: every finished image, newest first."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ..models import TrackedTask
from .common import AuthedRequest

PAGE_SIZE = 24


@login_required
@require_GET
def gallery(request: AuthedRequest) -> HttpResponse:
    images = (
        TrackedTask.objects.filter(user=request.user)
        .finished_images()
        .order_by("-finished_at", "-added_at", "-id")
    )
    page = Paginator(images, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "tracker/gallery.html", {"page_obj": page})
