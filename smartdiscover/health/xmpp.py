"""
The XMPP probe: a client stream to the domain, its stream features, and
the stream restarted over STARTTLS when the target asks for it.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from smartdiscover.config.model import Security
from smartdiscover.health.conversation import Conversation
from smartdiscover.health.session import Unexpected, excerpt
from smartdiscover.health.starttls import starttls

_FEATURES_END = re.compile(rb"<stream:features\s*/>|</stream:features\s*>")
_STREAM_ERROR = re.compile(rb"<stream:error\s*>\s*<([A-Za-z-]+)")


def _xml(buffer: bytes) -> None:
    """
    Reject a reply that is not XML, or is an XMPP stream error.
    """
    head = buffer.lstrip()[:1]
    if head and head != b"<":
        raise Unexpected(f"unexpected reply {excerpt(buffer)}")
    if error := _STREAM_ERROR.search(buffer):
        raise Unexpected(f"stream error: {error.group(1).decode('ascii')}")


def _features(buffer: bytes) -> tuple[int, bytes] | None:
    """
    The stream header and the <stream:features/> element.
    """
    _xml(buffer)
    if end := _FEATURES_END.search(buffer):
        return end.end(), buffer[buffer.find(b"<stream:features"):end.end()]
    if b"</stream:stream>" in buffer:
        raise Unexpected("server closed the stream")
    return None


def _proceed(buffer: bytes) -> tuple[int, bytes] | None:
    """
    <proceed/> after <starttls/>.
    """
    _xml(buffer)
    if found := re.search(rb"<proceed\b[^>]*>", buffer):
        return found.end(), found.group()
    if re.search(rb"<failure\b", buffer):
        raise Unexpected("server refused STARTTLS")
    return None


async def xmpp(c: Conversation) -> None:
    s = await c.connect()
    domain = escape(c.target.domain or c.target.host, {"'": "&apos;"})
    header = (f"<?xml version='1.0'?><stream:stream to='{domain}' version='1.0'"
              " xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
              ).encode("utf-8")
    features = await c.ask(s, header, _features, "the stream features")
    if c.target.security is Security.STARTTLS:
        await starttls(c, s, b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
                       _proceed, b"<PROCEED", offered=b"<starttls" in features)
        await c.ask(s, header, _features, "the stream features after STARTTLS")
    c.detail = "stream features received"
    s.send(b"</stream:stream>")
