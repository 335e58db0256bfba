"""Django as the benchmarks run it: set up against the environment's database, migrated,
with the test Client allowed, but templates rendered as production renders them."""

from __future__ import annotations


def setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.template.base import PartialTemplate, Template
    from django.test.utils import _TestState, setup_test_environment

    setup_test_environment()  # lets the test Client run against this real database
    # ...but render templates as production does: the test environment instruments every
    # template render (a signal and a copy of the context for each {% include %}), which a
    # served page never pays.
    Template._render = _TestState.saved_data.template_render
    PartialTemplate._render = _TestState.saved_data.partial_template_render
    call_command("migrate", verbosity=0)
