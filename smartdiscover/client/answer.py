"""
The POX request the probe sends and what it makes of the answer
(PROTOCOLS.md sections 2.3-2.9 and 11.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from smartdiscover.discovery.outlook import RESPONSE_2006
from smartdiscover.discovery.request import OUTLOOK_REQUEST, OUTLOOK_RESPONSE
from smartdiscover.discovery.xml import UnsafeXML, parse

_BOM = b"\xef\xbb\xbf"


def request_body(address: str) -> bytes:
    """
    An Outlook request for C{address}, asking for the 2006a response schema.
    """
    root = etree.Element(f"{{{OUTLOOK_REQUEST}}}Autodiscover", nsmap={None: OUTLOOK_REQUEST})
    request = etree.SubElement(root, f"{{{OUTLOOK_REQUEST}}}Request")
    etree.SubElement(request, f"{{{OUTLOOK_REQUEST}}}EMailAddress").text = address
    etree.SubElement(request, f"{{{OUTLOOK_REQUEST}}}AcceptableResponseSchema").text = \
        OUTLOOK_RESPONSE
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


@dataclass(frozen=True)
class Protocol:
    """
    One advertised Protocol: a socket service (Server, Port, security) or
    URLs (EwsUrl, OWAUrl, an extension's Server URL...), as (element, URL).
    """

    type: str
    server: str | None = None
    port: int | None = None
    ssl: str | None = None
    encryption: str | None = None
    urls: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Answer:
    """
    The verdict on a 200 body.  C{kind}: "settings", "redirectAddr",
    "redirectUrl", "error" or "invalid"; C{target} the redirect's address or
    URL; C{problems} (detail, fix) pairs that some client trips over.
    """

    kind: str
    detail: str
    target: str | None = None
    protocols: tuple[Protocol, ...] = ()
    problems: tuple[tuple[str, str], ...] = field(default=())


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in parent if _local(c) == name), None)


def _text(parent: etree._Element, name: str) -> str | None:
    found = _child(parent, name)
    text = (found.text or "").strip() if found is not None else ""
    return text or None


def parse_answer(body: bytes) -> Answer:
    """
    Read an Autodiscover answer with the hardened parser.
    """
    problems: list[tuple[str, str]] = []
    start = body[len(_BOM):] if body.startswith(_BOM) else body
    if not start.startswith(b"<?xml"):
        problems.append(("the answer does not start with <?xml (exchangelib rejects it)",
                         "serialize the document with its XML declaration first"))
    try:
        root = parse(body)
    except UnsafeXML as e:
        return Answer("invalid", f"not an XML document: {e}")
    if root.tag != f"{{{RESPONSE_2006}}}Autodiscover":
        return Answer("invalid", f"root element {etree.QName(root).text} is not Autodiscover "
                      f"in the {RESPONSE_2006} namespace")
    response = _child(root, "Response")
    if response is None:
        return Answer("invalid", "no Response element", problems=tuple(problems))
    error = _child(response, "Error")
    if error is not None:
        if etree.QName(response).namespace != RESPONSE_2006:
            problems.append(("an Error inside a 2006a Response crashes exchangelib",
                             "put Error in a Response of the 2006 namespace"))
        code = _text(error, "ErrorCode") or "?"
        message = _text(error, "Message") or ""
        return Answer("error", f"Error {code}: {message}".rstrip(": "),
                      problems=tuple(problems))
    account = _child(response, "Account")
    if account is None:
        return Answer("invalid", "neither Error nor Account in the Response",
                      problems=tuple(problems))
    action = _text(account, "Action") or "settings"
    if action == "redirectAddr":
        target = _text(account, "RedirectAddr")
        if target is None:
            return Answer("invalid", "Action redirectAddr without RedirectAddr")
        return Answer("redirectAddr", f"redirectAddr to {target}", target,
                      problems=tuple(problems))
    if action == "redirectUrl":
        upper, lower = _text(account, "RedirectURL"), _text(account, "RedirectUrl")
        target = upper or lower
        if target is None:
            return Answer("invalid", "Action redirectUrl without RedirectUrl")
        if upper is None:
            problems.append(("redirectUrl only in <RedirectUrl>: exchangelib reads only "
                             "<RedirectURL>", "write both spellings, or answer HTTP 302"))
        return Answer("redirectUrl", f"redirectUrl to {target}", target,
                      problems=tuple(problems))
    if action != "settings":
        return Answer("invalid", f"unknown Action {action!r}", problems=tuple(problems))
    protocols = tuple(_protocol(p) for p in account if _local(p) == "Protocol")
    types = ", ".join(p.type for p in protocols) or "no Protocol"
    ews = any(name == "EwsUrl" for p in protocols for name, _ in p.urls)
    detail = f"POX settings: {types}" + ("" if ews else " (no EwsUrl: exchangelib needs one)")
    return Answer("settings", detail, protocols=protocols, problems=tuple(problems))


def _protocol(element: etree._Element) -> Protocol:
    kind = (_text(element, "Type") or "?").upper()
    server = _text(element, "Server")
    urls: list[tuple[str, str]] = []
    for node in element.iter():
        text = (node.text or "").strip() if len(node) == 0 else ""
        if node is not element and text.lower().startswith(("https://", "http://")):
            urls.append((_local(node), text))
    if server is not None and server.lower().startswith(("https://", "http://")):
        server = None  # an extension's URL, listed in urls
    port_text = _text(element, "Port") or ""
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else None
    unique = tuple(dict.fromkeys(urls))
    return Protocol(kind, server, port, _text(element, "SSL"), _text(element, "Encryption"),
                    unique)
