"""
The one hardened XML parser used for every request body.
"""

from __future__ import annotations

import re

from lxml import etree

# Explicit, never the process-wide default (another library may weaken that).
PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_pis=True,
    remove_comments=True,
    collect_ids=False,
)

MAX_DEPTH = 32
_DOCTYPE = re.compile(rb"<!(doctype|entity)", re.IGNORECASE)


class UnsafeXML(ValueError):
    """
    A body that is not well-formed, or carries constructs we never accept.
    """


def parse(body: bytes) -> etree._Element:
    """
    Parse C{body} (raw bytes: lxml honours its encoding declaration).

    @raise UnsafeXML: malformed, a DOCTYPE (entities live there), or nested
        deeper than any autodiscover request.
    """
    if _DOCTYPE.search(body):
        raise UnsafeXML("DOCTYPE not allowed")
    try:
        root = etree.fromstring(body, PARSER)
    except (etree.XMLSyntaxError, ValueError) as e:
        raise UnsafeXML(f"malformed XML: {e}") from None
    if root is None:
        raise UnsafeXML("empty document")
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise UnsafeXML("DOCTYPE not allowed")
    depth = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        if depth > MAX_DEPTH:
            raise UnsafeXML("nested too deeply")
    return root
