"""
Serialising XML answers: lxml builds them, so every value is escaped.
"""

from __future__ import annotations

from lxml import etree

DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'


def to_bytes(root: etree._Element) -> bytes:
    """
    UTF-8 bytes that start with the XML declaration and nothing before it
    (exchangelib accepts a body only if it starts with C{<?xml}).
    """
    return DECLARATION + etree.tostring(root, encoding="utf-8", xml_declaration=False)


def child(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    """
    Append C{<tag>text</tag>} to C{parent}, in C{parent}'s namespace.
    """
    parent_tag = parent.tag  # lxml allows bytes or a QName too; ours are text
    if isinstance(parent_tag, str) and parent_tag[0] == "{":  # "{namespace}Local"
        tag = parent_tag[:parent_tag.index("}") + 1] + tag  # in the same namespace
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element
