"""
Log observers for twistd's C{--logger} option.

twistd takes C{--logger=<fully qualified name>} of a zero-argument callable
that returns an L{ILogObserver}, and uses it instead of C{--logfile} or
C{--syslog}::

    twistd --nodaemon --pidfile= --logger=smartdiscover.logs.json_stdout smartdiscover ...
    twistd --nodaemon --pidfile= --logger=smartdiscover.logs.text_stdout smartdiscover ...

Both write to standard output (under systemd: the journal; avoid
C{--logfile}, which rotates at 1 MB and keeps every old file) and drop
events below C{info}:

  - L{json_stdout}: one JSON object per line ("JSON lines": no RFC 7464
    record separator), as written by L{twisted.logger.eventAsJSON}; read
    them back with C{eventsFromJSONLogFile(f, recordSeparator="")} or C{jq};
    the message text is C{log_format} with the event's fields.
  - L{text_stdout}: Twisted's classic text lines
    (C{<time> [<namespace>#<level>] <message>}).

The observer keeps the C{sys.stdout} of the moment it is created: twistd
creates it before it redirects standard output into the log, so output
printed later by the program becomes a log event instead of looping back.

Nothing here filters fields: code must never log secrets (passwords,
C{Authorization} headers, request bodies) in any event field.
"""

from __future__ import annotations

import sys

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    jsonFileLogObserver,
    textFileLogObserver,
)

__all__ = ["json_stdout", "text_stdout"]


def _at_info(observer: ILogObserver) -> ILogObserver:
    return FilteringLogObserver(
        observer, [LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)])


def json_stdout() -> ILogObserver:
    """
    An observer writing each event of level info or above to standard
    output as one JSON object on one line.
    """
    return _at_info(jsonFileLogObserver(sys.stdout, recordSeparator=""))


def text_stdout() -> ILogObserver:
    """
    An observer writing each event of level info or above to standard
    output as text.
    """
    return _at_info(textFileLogObserver(sys.stdout))
