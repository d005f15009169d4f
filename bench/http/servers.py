"""
The servers under test, SmartDiscover and the references that need no
installing (bare twisted.web, nginx with a static file), and the small
helpers every server needs: CPU pinning, waiting for a port, one sample
request, the memory of a process.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATH = "/autodiscover/autodiscover.xml"
BODY = (b'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.'
        b'com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>demo@'
        b'example.test</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/'
        b'exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>'
        b'</Request></Autodiscover>')
AUTH = "Basic " + base64.b64encode(b"demo@example.test:demo-password").decode()

Processes = list[subprocess.Popen[bytes]]


# One worker terminating TLS with the benchmark's certificate; the caller
# gives the location blocks.
NGINX_TLS = """
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {tls}/server.crt;
        ssl_certificate_key {tls}/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
{locations}
    }}
}}
"""

# The answer as a static file for any method.
STATIC_LOCATION = """
        location = /autodiscover/autodiscover.xml {{
            default_type "text/xml; charset=utf-8";
            alias {work}/answer.xml;
            # Static files refuse POST (405): serve them as to a GET instead.
            error_page 405 =200 $uri;
        }}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpu: int, command: list[str]) -> list[str]:
    """
    Servers on CPU 0, load generators on CPU 1: on two cores they would
    otherwise take turns on both and measure each other's scheduling.
    """
    if (os.cpu_count() or 1) > 1 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)] + command
    return command


def wait(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    """Until something accepts connections on C{port}; fails early if C{process} died."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server for port {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def post(port: int, cafile: Path) -> tuple[int, bytes]:
    """One POX POST as the load generators send it: status and answer bytes."""
    context = ssl.create_default_context(cafile=str(cafile))  # it names 127.0.0.1 too
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    try:
        connection.request("POST", PATH, body=BODY,
                           headers={"Authorization": AUTH, "Content-Type": "text/xml"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def get_text(port: int, path: str, cafile: Path) -> str:
    """A GET over TLS, for SmartDiscover's /metrics."""
    context = ssl.create_default_context(cafile=str(cafile))
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    try:
        connection.request("GET", path)
        return connection.getresponse().read().decode("utf-8", "replace")
    finally:
        connection.close()


def rss_mb(pid: int) -> float:
    """Resident memory from /proc (VmRSS, in kB), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def smartdiscover_ini(work: Path, port: int, comment: str = "", workers: int = 1) -> str:
    """
    The shipped etc/sd.ini on one HTTPS port on 127.0.0.1: no plain HTTP,
    no DNS, no health probes (nothing else competes for CPU 0).  The
    development certificate is created in work/tls on first start.
    """
    ini = (ROOT / "etc" / "sd.ini").read_text()
    ini = re.sub(r"https = ssl:\d+:", f"https = ssl:{port}:interface=127.0.0.1:", ini)
    ini = re.sub(r"http = tcp:\d+\n", "", ini)
    ini = re.sub(r"dns = .*\n", "", ini)
    ini = ini.replace("[server]\n", f"[server]\nworkers = {workers}\n", 1)
    return ini + "\n[health]\ninterval = 0\n" + (f"; {comment}\n" if comment else "")


def start_smartdiscover(work: Path, processes: Processes,
                        workers: int = 1) -> tuple[int, subprocess.Popen[bytes]]:
    """
    twistd in the foreground, so that the process started is the server
    (its PID is the one to signal and to read the memory of).  One process
    is pinned to CPU 0 like the references; C{workers} processes get every
    CPU (the load generator's too: that is the price of using them).
    """
    port = free_port()
    shutil.copy(ROOT / "etc" / "users.passwd", work / "users.passwd")
    name = "sd.ini" if workers == 1 else f"sd-workers-{workers}.ini"
    (work / name).write_text(smartdiscover_ini(work, port, workers=workers))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [
        sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
        "--pidfile=", "--logfile", str(work / f"{name}.log"),
        "smartdiscover", "--config", str(work / name)]
    process = subprocess.Popen(pinned(0, command) if workers == 1 else command,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes.append(process)
    wait(port, process)
    return port, process


def start_bare(work: Path, processes: Processes) -> int:
    """bench/http/bare.py serving work/answer.xml with the same certificate."""
    port = free_port()
    process = subprocess.Popen(pinned(0, [
        sys.executable, str(Path(__file__).with_name("bare.py")), str(port),
        str(work / "tls" / "server.crt"), str(work / "tls" / "server.key"),
        str(work / "answer.xml")]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes.append(process)
    wait(port, process)
    return port


def start_nginx(work: Path, processes: Processes) -> int:
    """nginx, one worker, serving work/answer.xml as a static file with the same certificate."""
    return start_nginx_tls(work, work / "tls", STATIC_LOCATION.format(work=work), processes)


def start_nginx_tls(work: Path, tls: Path, locations: str, processes: Processes) -> int:
    """
    One nginx worker on CPU 0, its files in C{work}, TLS with the pair in
    C{tls}, serving C{locations}; its port once it listens.
    """
    port = free_port()
    (work / "nginx.conf").write_text(NGINX_TLS.format(work=work, port=port, tls=tls,
                                                      locations=locations))
    process = subprocess.Popen(pinned(0, ["nginx", "-c", str(work / "nginx.conf"),
                                          "-p", str(work)]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes.append(process)
    wait(port, process)
    return port
