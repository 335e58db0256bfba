"""A stand-in Midjourney-proxy gateway (new-api flavour) for mjdash's demo and tests.

It is a foreign server that mjdash happens to ship: stdlib HTTP plus Pillow, no Django, and it
never imports mjdash code. Run it with `python -m sandbox --help`.
"""
