"""Uploads are refused whole before their bytes are read when the request is larger than the
most any form here takes (an Imagine's reference pictures), so nobody can make the server
spool gigabytes to disk."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler

from .forms import MAX_REFERENCES

SLACK = 256 * 1024  # the form's own fields and the multipart boundaries


def largest_upload() -> int:
    return MAX_REFERENCES * settings.MJDASH_REFERENCE_MAX_BYTES + SLACK


class CappedUpload(FileUploadHandler):
    """First in FILE_UPLOAD_HANDLERS: checks the declared length, passes everything else on."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length > largest_upload():
            raise RequestDataTooBig("The upload is larger than any form here takes.")

    def receive_data_chunk(self, raw_data, start):
        return raw_data

    def file_complete(self, file_size):
        return None
