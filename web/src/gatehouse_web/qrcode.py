"""The authenticator app's QR code, shown inline under the strict CSP.

The CSP's `img-src` is `'self'` (and the logo's origin): no `data:` URIs, so the API's SVG cannot be
an <img>. It is put into the page as markup instead, but never as received: it is parsed and
rebuilt from an allowlist (an <svg> with its size, and <path> elements whose attributes are
drawing instructions and colours only). Anything else — a script, an event handler, a link, a
style, a foreign element, a DOCTYPE or entity — and there is no QR code; the manual key still
works."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

from markupsafe import Markup, escape

SVG_NS = "http://www.w3.org/2000/svg"
_NUMBER = re.compile(r"[0-9]{1,5}(?:\.[0-9]{1,4})?")
_PATH_ATTRIBUTES = {
    "d": re.compile(r"[MmHhVvLlZz0-9.,\s-]{1,100000}"),
    "stroke": re.compile(r"#[0-9a-fA-F]{3,8}"),
    "fill": re.compile(r"none|#[0-9a-fA-F]{3,8}"),
    "transform": re.compile(r"scale\([0-9]{1,3}(?:\.[0-9]{1,3})?\)"),
}
_SIZE_ATTRIBUTES = {
    "width": _NUMBER,
    "height": _NUMBER,
    "viewBox": re.compile(r"[0-9.]{1,10}(?: [0-9.]{1,10}){3}"),
}
MAX_LENGTH = 200_000


def safe_qr_svg(markup: str, label: str) -> Markup | None:
    """The QR code rebuilt from what is allowed (labelled `label` for screen readers), or None."""
    if not markup or len(markup) > MAX_LENGTH or "<!" in markup or "<?" in markup:
        return None
    try:
        # no DTD got this far ("<!" is refused above): no entity to expand, nothing external to load
        root = ElementTree.fromstring(markup)  # noqa: S314
    except ElementTree.ParseError:
        return None
    if root.tag != f"{{{SVG_NS}}}svg" or (root.text or "").strip():
        return None
    size = _allowed(root.attrib, _SIZE_ATTRIBUTES)
    if size is None or not {"width", "height"} <= set(size):
        return None
    size.setdefault("viewBox", f"0 0 {size['width']} {size['height']}")  # so that CSS can scale it
    paths = []
    for child in root:
        attributes = _allowed(child.attrib, _PATH_ATTRIBUTES) if child.tag == f"{{{SVG_NS}}}path" else None
        if attributes is None or len(child) or (child.text or "").strip() or "d" not in attributes:
            return None
        paths.append(f"<path{_attributes(attributes)}/>")
    if not paths:
        return None
    # every name is from the allowlist and every value matched its pattern and is escaped
    return Markup(  # noqa: S704
        f'<svg xmlns="{SVG_NS}"{_attributes(size)} role="img" aria-label="{escape(label)}" class="qr">'
        f"{''.join(paths)}</svg>"
    )


def _allowed(attributes: dict[str, str], allowlist: dict[str, re.Pattern[str]]) -> dict[str, str] | None:
    for name, value in attributes.items():
        pattern = allowlist.get(name)
        if pattern is None or not pattern.fullmatch(value):
            return None
    return dict(attributes)


def _attributes(attributes: dict[str, str]) -> str:
    return "".join(f' {name}="{escape(value)}"' for name, value in sorted(attributes.items()))
