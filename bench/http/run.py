"""
HTTP throughput: SmartDiscover's authenticated POX answer against a bare
twisted.web resource and nginx (one worker) serving the same bytes, over
TLS with the same certificate, in one run.

    python bench/http/run.py [--requests 20000] [--runs 3]

Keep-alive POSTs with h2load (--h1; the credentials are cached after the
first request) and new connections per request with wrk (Connection: close).
Prints requests/s (median of --runs), p50/p99 latency from h2load, failed
requests, and SmartDiscover's ratio to the reference.  Servers on CPU 0,
load generators on CPU 1.  Needs h2load (nghttp2-client), wrk and nginx.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BODY = (b'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.'
        b'com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>demo@'
        b'example.test</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/'
        b'exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>'
        b'</Request></Autodiscover>')
AUTH = "Basic " + base64.b64encode(b"demo@example.test:demo-password").decode()


# One worker, the same certificate, the answer as a static file for any method.
NGINX = """
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {work}/tls/server.crt;
        ssl_certificate_key {work}/tls/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /autodiscover/autodiscover.xml {{
            default_type "text/xml; charset=utf-8";
            alias {work}/answer.xml;
            # Static files refuse POST (405): serve them as to a GET instead.
            error_page 405 =200 $uri;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpu: int, command: list[str]) -> list[str]:
    if (os.cpu_count() or 1) > 1 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)] + command
    return command


def wait(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def h2load(url: str, body: Path, requests: int) -> tuple[float, float, float, int]:
    """
    Keep-alive POSTs: requests/s, mean ms per request, 0, failed requests.
    """
    out = subprocess.run(pinned(1, [
        "h2load", "--h1", "-n", str(requests), "-c", "20", "-t", "1", "-d", str(body),
        "-H", f"Authorization: {AUTH}", "-H", "Content-Type: text/xml", url]),
        capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"([\d.]+) req/s", out).group(1))
    failed = int(re.search(r"(\d+) failed", out).group(1))
    codes = re.search(r"status codes: (\d+) 2xx", out)
    if codes is not None:
        failed = max(failed, requests - int(codes.group(1)))  # a wrong answer is a failure
    # h2load prints min, max, mean and sd per request, no percentiles: the mean is kept.
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out).group(1)
    return rate, _ms(mean), 0.0, failed


def _ms(value: str) -> float:
    number = float(re.match(r"[\d.]+", value).group(0))
    return number / 1000 if value.endswith("us") else number * 1000 if value.endswith(
        "s") and not value.endswith("ms") else number


def wrk_close(url: str, seconds: int) -> float:
    out = subprocess.run(pinned(1, [
        "wrk", "-t1", "-c20", f"-d{seconds}s", "-H", "Connection: close",
        "-H", f"Authorization: {AUTH}", url]),
        capture_output=True, text=True, check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="of each wrk run")
    args = parser.parse_args()
    for tool in ("h2load", "wrk", "nginx"):
        if not shutil.which(tool):
            print(f"{tool} is missing: apt-get install nghttp2-client wrk nginx",
                  file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="bench-http-"))
    work.chmod(0o755)  # nginx's workers (not root) read the answer file
    processes: list[subprocess.Popen[bytes]] = []
    try:
        ours, bare = free_port(), free_port()
        shutil.copy(ROOT / "etc" / "users.passwd", work / "users.passwd")
        ini = (ROOT / "etc" / "sd.ini").read_text()
        ini = re.sub(r"https = ssl:\d+:", f"https = ssl:{ours}:interface=127.0.0.1:", ini)
        ini = re.sub(r"http = tcp:\d+\n", "", ini)
        ini = re.sub(r"dns = .*\n", "", ini)
        (work / "sd.ini").write_text(ini + "\n[health]\ninterval = 0\n")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        processes.append(subprocess.Popen(pinned(0, [
            sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
            "--pidfile=", "smartdiscover", "--config", str(work / "sd.ini")]),
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait(ours)
        # The reference serves exactly what SmartDiscover answers.
        context = ssl.create_default_context(cafile=str(work / "tls" / "server.crt"))
        connection = http.client.HTTPSConnection("127.0.0.1", ours, context=context)
        connection.request("POST", "/autodiscover/autodiscover.xml", body=BODY,
                           headers={"Authorization": AUTH})
        answer = connection.getresponse().read()
        (work / "answer.xml").write_bytes(answer)
        (work / "body.xml").write_bytes(BODY)
        processes.append(subprocess.Popen(pinned(0, [
            sys.executable, str(Path(__file__).with_name("bare.py")), str(bare),
            str(work / "tls" / "server.crt"), str(work / "tls" / "server.key"),
            str(work / "answer.xml")]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait(bare)
        reference = free_port()
        (work / "nginx.conf").write_text(NGINX.format(work=work, port=reference))
        processes.append(subprocess.Popen(pinned(0, [
            "nginx", "-c", str(work / "nginx.conf"), "-p", str(work)]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait(reference)
        results: dict[str, dict[str, list[float]]] = {}
        for name, port in (("smartdiscover", ours), ("bare twisted.web", bare),
                           ("nginx", reference)):
            url = f"https://127.0.0.1:{port}/autodiscover/autodiscover.xml"
            runs = [h2load(url, work / "body.xml", args.requests) for _ in range(args.runs)]
            closes = [wrk_close(f"https://127.0.0.1:{port}/autodiscover/autodiscover.xml",
                                args.seconds) for _ in range(args.runs)]
            results[name] = {"keepalive": [r[0] for r in runs], "mean_ms": [r[1] for r in runs],
                             "failed": [r[3] for r in runs], "close": closes}
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    if "nginx" in results and not results["nginx"]["keepalive"]:
        return 1
    for name, r in results.items():
        print(f"{name:18} keep-alive {statistics.median(r['keepalive']):8.0f} req/s "
              f"(runs {', '.join(f'{x:.0f}' for x in r['keepalive'])}), mean "
              f"{statistics.median(r['mean_ms']):.1f} ms, failed {int(sum(r['failed']))}; "
              f"new connection {statistics.median(r['close']):6.0f} req/s")
    ours_r = results["smartdiscover"]
    for name in ("bare twisted.web", "nginx"):
        other = results[name]
        keepalive = statistics.median(ours_r["keepalive"]) / statistics.median(other["keepalive"])
        close = statistics.median(ours_r["close"]) / statistics.median(other["close"])
        print(f"smartdiscover / {name}: keep-alive {keepalive:.2f}, new connection {close:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
