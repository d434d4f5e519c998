"""Logos uploaded for invoices and the portal: only PNG or JPEG, small, of sensible dimensions.

Why read the headers ourselves: the type is taken from the bytes, never from the file name or the
browser's content type (both are the uploader's to choose), and a picture whose header claims
50,000 × 50,000 pixels is refused before any library decodes it (a decompression bomb).

Pure: no Django, no I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

__all__ = ["LOGO_MAX_BYTES", "LOGO_MAX_SIDE", "LOGO_MIN_SIDE", "ImageFacts", "image_facts", "logo_problem"]

LOGO_MAX_BYTES: Final = 512 * 1024
LOGO_MAX_SIDE: Final = 2000
LOGO_MIN_SIDE: Final = 16

_PNG: Final = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers carry the dimensions (C4 DHT, C8 JPG and CC DAC are not frames).
_SOF: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


@dataclass(frozen=True, slots=True)
class ImageFacts:
    kind: str  # "png" | "jpeg"
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return f"image/{self.kind}"


def image_facts(data: bytes) -> ImageFacts | None:
    """Type and dimensions from a PNG or JPEG header; None for anything else or a broken header."""
    if data.startswith(_PNG):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return ImageFacts("png", width, height)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_facts(data)
    return None


def _jpeg_facts(data: bytes) -> ImageFacts | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            return None
        if marker in _SOF:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return ImageFacts("jpeg", width, height)
        if marker == 0xDA:  # start of scan before any frame header
            return None
        pos += 2 + length
    return None


def logo_problem(data: bytes) -> str | None:
    """Why ``data`` cannot be a logo (the rule it breaks), or None when it can."""
    if len(data) > LOGO_MAX_BYTES:
        return f"must be at most {LOGO_MAX_BYTES // 1024} KB (this file has {len(data):,} bytes)"
    facts = image_facts(data)
    if facts is None:
        return "must be a PNG or JPEG picture"
    sides = f"{facts.width} × {facts.height} pixels"
    if max(facts.width, facts.height) > LOGO_MAX_SIDE:
        return f"must be at most {LOGO_MAX_SIDE} pixels wide and high (this one is {sides})"
    if min(facts.width, facts.height) < LOGO_MIN_SIDE:
        return f"must be at least {LOGO_MIN_SIDE} pixels wide and high (this one is {sides})"
    return None
