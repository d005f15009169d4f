"""
automx2 as a reference: the Python autodiscover server most deployments
would use instead, deployed as its documentation suggests (gunicorn behind
an nginx that terminates TLS).

It gets its own virtualenv in a cache directory, so that the project's
environment never sees Flask, SQLAlchemy or gunicorn, and the install is
paid once.  Its data is a fresh SQLite file per run, seeded through its own
/initdb/ route with the demo configuration's servers for example.test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

from servers import Processes, free_port, pinned, post, start_nginx_tls, wait

WORKERS = 2
RESPONSE = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}"
PAYLOAD = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"

# The same servers as etc/sd.ini's demo: IMAP 993, POP3 995, SMTP 465, all implicit TLS.
SEED = {
    "version": 2,
    "provider": "Example Test",
    "domains": [{"name": "example.test"}],
    "servers": [
        {"name": "mail.example.test", "type": "imap", "port": 993},
        {"name": "mail.example.test", "type": "pop", "port": 995},
        {"name": "mail.example.test", "type": "smtp", "port": 465},
    ],
}

CONF = """
[automx2]
loglevel = WARNING
db_echo = no
db_uri = sqlite:///{db}
# One proxy (nginx) in front: X-Forwarded-* are believed once.
proxy_count = 1
"""

# TLS terminated by one nginx worker with the same certificate, as for the
# static reference; every request goes on to gunicorn.
PROXY_LOCATION = """
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }}"""


class Unavailable(Exception):
    """automx2 could not be installed, started or seeded; the reason is the message."""


def default_venv() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "smartdiscover-bench" / "automx2-venv"


def ensure_venv(venv: Path) -> str:
    """
    The virtualenv with automx2 and gunicorn, created on first use.

    @return: "automx2 X, gunicorn Y", the versions measured.
    """
    versions = [str(venv / "bin" / "python"), "-c",
                "import importlib.metadata as m; "
                "print(f\"automx2 {m.version('automx2')}, gunicorn {m.version('gunicorn')}\")"]
    found = subprocess.run(versions, capture_output=True, text=True) if (
        venv / "bin" / "python").exists() else None
    if found is None or found.returncode != 0:
        print(f"installing automx2 and gunicorn into {venv}", file=sys.stderr)
        steps = [[sys.executable, "-m", "venv", "--clear", str(venv)],
                 [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                  "--disable-pip-version-check", "automx2", "gunicorn"]]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                raise Unavailable(f"{' '.join(step[:4])} failed: {_tail(done.stderr)}")
        found = subprocess.run(versions, capture_output=True, text=True)
        if found.returncode != 0:
            raise Unavailable(f"installed, but: {_tail(found.stderr)}")
    return found.stdout.strip()


def start_automx2(venv: Path, work: Path, tls: Path, processes: Processes) -> tuple[int, bytes]:
    """
    gunicorn (2 workers) and its nginx, both on CPU 0 like the other
    servers, seeded and checked.

    @return: the TLS port and automx2's answer to the POX request, which
        every later sample must repeat.
    @raise Unavailable: with the reason when it does not answer as it should.
    """
    home = work / "automx2"
    home.mkdir()
    (home / "automx2.conf").write_text(CONF.format(db=home / "automx2.db"))
    upstream = free_port()
    gunicorn = subprocess.Popen(pinned(0, [
        str(venv / "bin" / "gunicorn"), "--workers", str(WORKERS),
        "--bind", f"127.0.0.1:{upstream}", "--error-logfile", str(home / "gunicorn.log"),
        "automx2.server:app"]),
        cwd=home, env=dict(os.environ, AUTOMX2_CONF=str(home / "automx2.conf")),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes.append(gunicorn)
    try:
        wait(upstream, gunicorn)
        seed(upstream)
    except (RuntimeError, OSError) as e:
        raise Unavailable(f"gunicorn: {e}; {_tail(_read(home / 'gunicorn.log'))}") from None
    try:
        port = start_nginx_tls(home, tls, PROXY_LOCATION.format(upstream=upstream), processes)
        status, answer = post(port, tls / "server.crt")
    except (RuntimeError, OSError) as e:
        raise Unavailable(f"nginx in front of gunicorn: {e}") from None
    problem = check_answer(status, answer)
    if problem:
        raise Unavailable(f"{problem}; gunicorn log: {_tail(_read(home / 'gunicorn.log'))}")
    return port, answer


def seed(port: int) -> None:
    """Tables and the example.test rows, by automx2's own route (POST /initdb/ with JSON)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/initdb/", data=json.dumps(SEED).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode("utf-8", "replace")
    if "prepared" not in text:
        raise RuntimeError(f"/initdb/ answered: {text[:200]}")


def check_answer(status: int, answer: bytes) -> str | None:
    """
    None when the answer is a 200 with Autodiscover XML that sends IMAP
    clients to mail.example.test:993; otherwise what is wrong.
    """
    if status != 200:
        return f"answered {status}: {answer[:200]!r}"
    try:
        root = ET.fromstring(answer)
    except ET.ParseError as e:
        return f"answered 200 but no XML ({e}): {answer[:200]!r}"
    for protocol in root.iter(f"{PAYLOAD}Protocol"):
        if (protocol.findtext(f"{PAYLOAD}Type") == "IMAP"
                and protocol.findtext(f"{PAYLOAD}Server") == "mail.example.test"
                and protocol.findtext(f"{PAYLOAD}Port") == "993"):
            return None if root.tag == f"{RESPONSE}Autodiscover" else f"root is {root.tag}"
    return f"no IMAP mail.example.test:993 in {answer[:300]!r}"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])
