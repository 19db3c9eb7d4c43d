"""Issue 9 item 12: the borders of form controls have at least 3:1 contrast (WCAG 2.1 SC 1.4.11)."""

from __future__ import annotations

import re
from importlib.resources import files


def _luminance(colour: str) -> float:
    hexa = colour.lstrip("#")
    if len(hexa) == 3:
        hexa = "".join(c * 2 for c in hexa)
    channels = [int(hexa[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_wcag_1_4_11_form_control_borders_have_3_to_1_contrast() -> None:
    css = files("ostiary.web").joinpath("static/ostiary.css").read_text()
    rules = re.findall(r"([^{}]+)\{([^}]*)\}", css)
    controls = [(sel.strip(), body) for sel, body in rules
                if re.search(r"(^|[\s,])(input|select|button)\b", sel) and "border: 1px solid" in body]
    assert controls, "no form-control rules found"
    for selector, body in controls:
        colour = re.search(r"border: 1px solid (#[0-9a-fA-F]{3,6})", body)
        if colour is None or "primary" in selector:
            continue
        # against the card (white) and the page background (branding default #f4f6f8)
        for background in ("#ffffff", "#f4f6f8"):
            assert contrast(colour.group(1), background) >= 3.0, (selector, colour.group(1), background)
