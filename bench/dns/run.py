"""
DNS throughput: SmartDiscover's responder against NSD serving the same zone,
in one run, with dnsperf on loopback.

    python bench/dns/run.py [--seconds 10] [--runs 3] [--rrl]

Prints queries/s, lost queries and the ratio to NSD, the median of --runs
runs each.  The server under test is pinned to CPU 0 and dnsperf to CPU 1
when the machine has two cores.  Needs dnsperf and nsd (Debian packages).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from smartdiscover.config import load  # noqa: E402
from smartdiscover.dns.records import all_records  # noqa: E402

QUERIES = [
    ("_imaps._tcp", "SRV"), ("_imap._tcp", "SRV"), ("_submissions._tcp", "SRV"),
    ("_submission._tcp", "SRV"), ("_pop3s._tcp", "SRV"), ("_caldavs._tcp", "SRV"),
    ("_caldavs._tcp", "TXT"), ("_carddavs._tcp", "SRV"), ("_xmpp-client._tcp", "SRV"),
    ("_sips._tcp", "SRV"), ("_autodiscover._tcp", "SRV"), ("autodiscover", "A"),
    ("autoconfig", "AAAA"), ("mail", "A"), ("@", "SOA"), ("@", "NAPTR"), ("@", "MX"),
    ("nothere", "A"),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpu: int, command: list[str]) -> list[str]:
    if (os.cpu_count() or 1) > 1 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)] + command
    return command


def zone_text(domain: str, records: list) -> str:
    """
    The zone in master-file syntax, for NSD.
    """
    lines = [f"$ORIGIN {domain}.", "$TTL 300"]
    for owner, _, payload in records:
        lines.append(f"{owner}. {_presentation(payload)}")
    return "\n".join(lines) + "\n"


def _presentation(payload: object) -> str:
    from twisted.names import dns
    kind = type(payload).__name__.replace("Record_", "")
    ttl = payload.ttl
    if isinstance(payload, dns.Record_SOA):
        return (f"{ttl} IN SOA {payload.mname}. {payload.rname}. {payload.serial} "
                f"{payload.refresh} {payload.retry} {payload.expire} {payload.minimum}")
    if isinstance(payload, dns.Record_SRV):
        target = f"{payload.target}." if str(payload.target) else "."
        return f"{ttl} IN SRV {payload.priority} {payload.weight} {payload.port} {target}"
    if isinstance(payload, dns.Record_NAPTR):
        return (f'{ttl} IN NAPTR {payload.order} {payload.preference} "{payload.flags.string.decode()}" '
                f'"{payload.service.string.decode()}" "" {payload.replacement}.')
    if isinstance(payload, dns.Record_TXT):
        return f'{ttl} IN TXT "{payload.data[0].decode()}"'
    if isinstance(payload, dns.Record_MX):
        return f"{ttl} IN MX {payload.preference} {payload.name}."
    if isinstance(payload, dns.Record_NS):
        return f"{ttl} IN NS {payload.name}."
    if isinstance(payload, (dns.Record_A, dns.Record_AAAA)):
        return f"{ttl} IN {kind} {payload.dottedQuad() if kind == 'A' else socket.inet_ntop(socket.AF_INET6, payload.address)}"
    raise ValueError(kind)


def wait_udp(port: int, timeout: float = 20.0) -> None:
    import dns.message
    import dns.query
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            dns.query.udp(dns.message.make_query("example.test", "SOA"), "127.0.0.1",
                          port=port, timeout=0.5)
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on {port}")


def dnsperf(port: int, queries: Path, seconds: int) -> tuple[float, int]:
    out = subprocess.run(
        pinned(1, ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries),
                   "-l", str(seconds), "-c", "4", "-q", "200", "-t", "2"]),
        capture_output=True, text=True, check=True).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))
    return qps, lost


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rrl", action="store_true",
                        help="keep RRL on (with the benchmark client exempted)")
    args = parser.parse_args()
    for tool in ("dnsperf", "nsd"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            print(f"{tool} is missing: apt-get install dnsperf nsd", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="bench-dns-"))
    try:
        return _bench(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _bench(work: Path, args: argparse.Namespace) -> int:
    ours, theirs = free_port(), free_port()
    shutil.copy(ROOT / "etc" / "users.passwd", work / "users.passwd")
    ini = (ROOT / "etc" / "sd.ini").read_text()
    ini = ini.replace("dns = 127.0.0.1:8053", f"dns = 127.0.0.1:{ours}")
    ini = re.sub(r"https = ssl:\d+:", f"https = ssl:{free_port()}:interface=127.0.0.1:", ini)
    ini = re.sub(r"http = tcp:\d+", f"http = tcp:{free_port()}:interface=127.0.0.1", ini)
    rrl = "rrl_exempt = 127.0.0.1\n" if args.rrl else "rrl_rate = 0\n"
    ini = ini.replace("[dns]\n", "[dns]\n" + rrl)
    (work / "sd.ini").write_text(ini)
    model = load(work / "sd.ini")

    queries = work / "queries"
    queries.write_text("".join(
        f"{domain if name == '@' else f'{name}.{domain}'} {kind}\n"
        for domain in model.domains for name, kind in QUERIES))
    zones = all_records(model, serial=1)
    conf = ["server:", f"  ip-address: 127.0.0.1@{theirs}", "  server-count: 1",
            f"  zonesdir: \"{work}\"", f"  pidfile: \"{work}/nsd.pid\"", "  username: \"\"",
            "  database: \"\"", "  rrl-ratelimit: 0", "  verbosity: 0",
            f"  xfrdfile: \"{work}/xfrd.state\"", f"  logfile: \"{work}/nsd.log\"",
            "remote-control:", "  control-enable: no"]
    for domain, records in zones.items():
        (work / f"{domain}.zone").write_text(zone_text(domain, records))
        conf += ["zone:", f"  name: \"{domain}\"", f"  zonefile: \"{domain}.zone\""]
    (work / "nsd.conf").write_text("\n".join(conf) + "\n")

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    servers = {
        "smartdiscover": subprocess.Popen(
            pinned(0, [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                       "-n", "--pidfile=", "smartdiscover", "--config", str(work / "sd.ini")]),
            env=env, stdout=open(work / "twistd.log", "wb"), stderr=subprocess.STDOUT),
        "nsd": subprocess.Popen(pinned(0, ["nsd", "-d", "-c", str(work / "nsd.conf")]),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    }
    try:
        wait_udp(ours)
        wait_udp(theirs)
        results: dict[str, list[tuple[float, int]]] = {"smartdiscover": [], "nsd": []}
        for _ in range(args.runs):
            results["smartdiscover"].append(dnsperf(ours, queries, args.seconds))
            results["nsd"].append(dnsperf(theirs, queries, args.seconds))
    finally:
        for process in servers.values():
            process.terminate()
            process.wait(10)
    log = (work / "twistd.log").read_text(errors="replace")
    if "Traceback" in log or "failed" in log:
        print(log[-3000:], file=sys.stderr)
    median = {name: statistics.median(q for q, _ in runs) for name, runs in results.items()}
    for name, runs in results.items():
        print(f"{name:14} {median[name]:10.0f} queries/s (median of "
              f"{', '.join(f'{q:.0f}' for q, _ in runs)}), lost {sum(l for _, l in runs)}")
    print(f"ratio smartdiscover/nsd: {median['smartdiscover'] / median['nsd']:.2f}"
          f" (RRL {'on, client exempt' if args.rrl else 'off'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
