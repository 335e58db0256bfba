from __future__ import annotations

from django.urls import path

from .views import account, actions, dashboard, export, gallery, media, notifications, tasks

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("tasks/list/", dashboard.task_list, name="task_list"),
    path("tasks/<str:task_id>/", tasks.task_detail, name="task_detail"),
    path("tasks/<str:task_id>/seed/", tasks.task_seed, name="task_seed"),
    path("tasks/<str:task_id>/recheck/", tasks.task_recheck, name="task_recheck"),
    path("tasks/<str:task_id>/untrack/", tasks.task_untrack, name="task_untrack"),
    path("tasks/<str:task_id>/archive/", tasks.task_archive, name="task_archive"),
    path("tasks/<str:task_id>/thumb/", tasks.task_thumb, name="task_thumb"),
    path("tasks/<str:task_id>/organise/", tasks.task_organise, name="task_organise"),
    path("tasks/<str:task_id>/action/", actions.task_action, name="task_action"),
    path("tasks/<str:task_id>/modal/", actions.task_modal, name="task_modal"),
    path("imagine/", actions.imagine, name="imagine"),
    path("gallery/", gallery.gallery, name="gallery"),
    path("gallery/download.zip", gallery.download_zip, name="download_zip"),
    path("gallery/bulk/", gallery.gallery_bulk, name="gallery_bulk"),
    path("gallery/layout/", gallery.gallery_layout, name="gallery_layout"),
    path("gallery/<str:task_id>/view/", gallery.lightbox, name="lightbox"),
    path("mj/image/<str:task_id>", media.image, name="image"),
    path("mj/image/<str:task_id>/thumb", media.image, {"thumb": True}, name="thumb"),
    path("mj/image/<str:task_id>/<int:part>", media.image, name="image_part"),
    path(
        "mj/image/<str:task_id>/<int:part>/thumb",
        media.image,
        {"thumb": True},
        name="thumb_part",
    ),
    path("settings/", account.settings_page, name="settings"),
    path("settings/test/", account.test_connection, name="test_connection"),
    path("settings/tokens/", account.token_create, name="token_create"),
    path("settings/tokens/revoke/", account.token_revoke, name="token_revoke"),
    path(
        "settings/notifications/webhook/",
        notifications.channel_add,
        {"kind": "webhook"},
        name="channel_add_webhook",
    ),
    path(
        "settings/notifications/email/",
        notifications.channel_add,
        {"kind": "email"},
        name="channel_add_email",
    ),
    path(
        "settings/notifications/<int:channel_id>/test/",
        notifications.channel_test,
        name="channel_test",
    ),
    path(
        "settings/notifications/<int:channel_id>/remove/",
        notifications.channel_remove,
        name="channel_remove",
    ),
    path(
        "settings/notifications/<int:channel_id>/confirm/<str:token>/",
        notifications.channel_confirm,
        name="channel_confirm",
    ),
    path("export.csv", export.export_csv, name="export_csv"),
    path("export.json", export.export_json, name="export_json"),
    path("accounts/signup/", account.signup, name="signup"),
]
