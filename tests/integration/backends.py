"""
Real directory and mail servers for the tests of the LDAP and IMAP
authentication backends: a private C{slapd} (OpenLDAP) and a private
Dovecot, each run as a child process on free loopback ports, with its
configuration, data, sockets, pid file, log and TLS certificate all in one
directory that the test hands over.

Use::

    server = SlapdServer(Path(self.mktemp()))
    self.addCleanup(server.stop)

or as a context manager (C{with DovecotServer(path) as server: ...}).
Neither touches the system's own slapd or Dovecot (configuration, data,
services); both need the Debian packages installed (slapd, ldap-utils,
dovecot-imapd) and run as root (Dovecot's login processes chroot).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from smartdiscover.web.devcert import create_development_certificate

from .service import free_port

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SLAPPASSWD = "/usr/sbin/slappasswd"
LDAP_SCHEMA = Path("/etc/ldap/schema")
LDAP_MODULES = Path("/usr/lib/ldap")
DOVECOT = "/usr/sbin/dovecot"
# Dovecot's longest socket path below base_dir is "/token-login/imap-urlauth";
# a Unix socket path has at most 107 bytes.
MAX_BASE_DIR = 107 - len("/token-login/imap-urlauth") - 8


def _find(program: str) -> str:
    if os.access(program, os.X_OK):
        return program
    found = shutil.which(Path(program).name)
    if found is None:
        raise RuntimeError(f"{program} is not installed")
    return found


class _ChildServer:
    """
    A server run in the foreground as a child process, its output in
    C{log_path}.
    """

    name = "server"
    process: subprocess.Popen[bytes] | None = None
    log_path: Path

    def _spawn(self, argv: list[str], cwd: Path) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            argv, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def _wait_listening(self, ports: list[int], host: str = "127.0.0.1") -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        waiting = list(ports)
        while waiting:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise RuntimeError(f"{self.name} exited with {code}:\n{self.log()}")
            try:
                socket.create_connection((host, waiting[0]), timeout=1).close()
                waiting.pop(0)
                continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"{self.name} did not listen on {waiting[0]}:\n{self.log()}")
            time.sleep(0.02)

    def log(self) -> str:
        """
        Everything the server has logged so far.
        """
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float = 5.0) -> str:
        """
        Wait until C{text} shows in the log (Dovecot writes its log through
        a separate process, a moment after the client got its answer) and
        return the whole log.
        """
        deadline = time.monotonic() + timeout
        while True:
            log = self.log()
            if text in log:
                return log
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the {self.name} log:\n{log}")
            time.sleep(0.02)

    def stop(self) -> int | None:
        """
        Terminate the server and wait for it (and, through its process
        group, for any children it left); safe to call more than once.
        """
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            # Signal the whole group: Dovecot's master alone takes over a
            # second to shut its children down.
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        # The server leads its own process group (Dovecot's log, auth, anvil
        # and imap processes are in it too): give the rest a moment to leave
        # on their own, then make sure.
        deadline = time.monotonic() + 2.0
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _group_alive(process.pid):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not self._log.closed:
            self._log.close()
        return process.returncode

    def __enter__(self) -> _ChildServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    """
    Whether any process but a zombie is left in the process group C{pgid}.
    """
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                line = f.read()
        except OSError:
            continue
        fields = line[line.rindex(b")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _let_others_through(directory: Path) -> None:
    """
    Dovecot's auth process (user dovecot) reads the passwd file and its imap
    processes (user nobody) their maildirs, so every directory down to
    C{directory} must be searchable by others. trial's C{mktemp} puts a
    C{mkdtemp} directory (mode 0700) in the path: below the working
    directory or the system's temporary directory such directories get
    C{o+x} (search, not listing); anywhere else that is an error.
    """
    directory.chmod(0o755)
    roots = [Path.cwd().resolve(), Path(tempfile.gettempdir()).resolve()]
    for parent in directory.parents:
        mode = parent.stat().st_mode
        if mode & 0o001:
            continue
        if any(root in parent.parents for root in roots):
            parent.chmod(stat.S_IMODE(mode) | 0o011)
        else:
            raise RuntimeError(
                f"{parent} is not searchable by others; Dovecot's unprivileged "
                f"processes could not reach {directory}")


def _ssha(password: str) -> str:
    """
    C{password} hashed by slappasswd as {SSHA}.
    """
    return subprocess.run(
        [_find(SLAPPASSWD), "-h", "{SSHA}", "-s", password], check=True,
        capture_output=True, text=True).stdout.strip()


class SlapdServer(_ChildServer):
    """
    OpenLDAP's slapd with an mdb database for C{dc=example,dc=test}, on
    C{ldap://127.0.0.1:port} (StartTLS offered) and
    C{ldaps://127.0.0.1:tls_port}, its certificate (for ldap.example.test,
    localhost, 127.0.0.1, ::1) in C{ca_file}.

    Entries under C{ou=people}: inetOrgPerson uid=alice (displayName
    "Alice Example"), uid=bob (no displayName), uid=nopw (no userPassword),
    and uid=twin1 and uid=twin2 that share mail twin@example.test. The
    service account C{reader_dn} may read everything but passwords; anyone
    may bind; anonymous users read nothing (a search gets result 50).

    The log (C{-d 256}, connections and operations) shows e.g.
    C{conn=1001 fd=12 ACCEPT from IP=127.0.0.1:...}, C{TLS established} and
    C{EXT oid=1.3.6.1.4.1.1466.20037} (StartTLS), C{BIND dn="uid=alice,..."}
    and C{RESULT tag=97 err=49} for a wrong password.
    """

    name = "slapd"
    host = "127.0.0.1"
    base = "dc=example,dc=test"
    people = f"ou=people,{base}"
    admin_dn = f"cn=admin,{base}"
    admin_password = "admin-password"
    reader_dn = f"cn=reader,ou=services,{base}"
    reader_password = "reader-password"
    # address -> (uid, password) of the users who can log in
    users = {
        "alice@example.test": ("alice", "alice-password"),
        "bob@example.test": ("bob", "bob-password"),
    }
    twin_address = "twin@example.test"
    twin_password = "twin-password"
    nopw_address = "nopw@example.test"

    def __init__(self, directory: Path) -> None:
        self.users = dict(self.users)
        self.directory = directory = Path(directory).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = directory / "slapd.crt"
        self.key_file = directory / "slapd.key"
        create_development_certificate(self.ca_file, self.key_file, ["ldap.example.test"])
        self.database = directory / "data"
        self.database.mkdir(exist_ok=True)
        self.config = directory / "slapd.conf"
        self.log_path = directory / "slapd.log"
        self.port = free_port()
        self.tls_port = free_port()
        while self.tls_port == self.port:
            self.tls_port = free_port()
        self.uri = f"ldap://{self.host}:{self.port}"
        self.tls_uri = f"ldaps://{self.host}:{self.tls_port}"
        self.config.write_text(self._config(), encoding="utf-8")
        self._seed()
        self._spawn([_find(SLAPD), "-d", "256", "-f", str(self.config),
                     "-h", f"{self.uri}/ {self.tls_uri}/"], directory)
        self._wait_listening([self.port, self.tls_port])

    def dn(self, uid: str) -> str:
        return f"uid={uid},{self.people}"

    def _config(self) -> str:
        d = self.directory
        schemas = "".join(f"include {LDAP_SCHEMA / name}.schema\n"
                          for name in ("core", "cosine", "inetorgperson"))
        return f"""\
{schemas}
pidfile {d / 'slapd.pid'}
argsfile {d / 'slapd.args'}
modulepath {LDAP_MODULES}
moduleload back_mdb

TLSCertificateFile {self.ca_file}
TLSCertificateKeyFile {self.key_file}
TLSCACertificateFile {self.ca_file}
TLSVerifyClient never

database mdb
maxsize 16777216
suffix "{self.base}"
rootdn "{self.admin_dn}"
rootpw {_ssha(self.admin_password)}
directory {self.database}
index objectClass eq
index uid,mail eq

access to attrs=userPassword
    by * auth
access to *
    by dn.exact="{self.reader_dn}" read
    by self read
    by * auth
"""

    def _seed(self) -> None:
        base = self.base
        entries = [
            f"dn: {base}\nobjectClass: dcObject\nobjectClass: organization\n"
            "dc: example\no: Example\n",
            f"dn: {self.people}\nobjectClass: organizationalUnit\nou: people\n",
            f"dn: ou=services,{base}\nobjectClass: organizationalUnit\nou: services\n",
            f"dn: {self.reader_dn}\nobjectClass: organizationalRole\n"
            "objectClass: simpleSecurityObject\ncn: reader\n"
            f"userPassword: {_ssha(self.reader_password)}\n",
            self._person("alice", "Alice Example", "Example", "alice@example.test",
                         "alice-password", display_name="Alice Example"),
            self._person("bob", "Bob", "Bob", "bob@example.test", "bob-password"),
            self._person("nopw", "No Password", "Password", self.nopw_address, None),
            self._person("twin1", "Twin One", "One", self.twin_address, self.twin_password),
            self._person("twin2", "Twin Two", "Two", self.twin_address, self.twin_password),
        ]
        ldif = self.directory / "seed.ldif"
        ldif.write_text("\n".join(entries), encoding="utf-8")
        result = subprocess.run(
            [_find(SLAPADD), "-q", "-f", str(self.config), "-l", str(ldif)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"slapadd failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}")

    def _person(self, uid: str, cn: str, sn: str, mail: str, password: str | None,
                display_name: str | None = None) -> str:
        lines = [f"dn: {self.dn(uid)}", "objectClass: inetOrgPerson", f"uid: {uid}",
                 f"cn: {cn}", f"sn: {sn}", f"mail: {mail}"]
        if display_name is not None:
            lines.append(f"displayName: {display_name}")
        if password is not None:
            lines.append(f"userPassword: {_ssha(password)}")
        return "\n".join(lines) + "\n"


class DovecotServer(_ChildServer):
    """
    Dovecot IMAP on C{host}: C{port} (plain IMAP with STARTTLS) and
    C{tls_port} (implicit TLS), its certificate (for imap.example.test,
    localhost, 127.0.0.1, ::1) in C{ca_file}. The users in C{users} (address
    -> password) log in with their full address; an unknown address or a
    wrong password fails with C{[AUTHENTICATIONFAILED]} after about half a
    second (Dovecot answers failures on a 0.5 s timer; the growing per-IP
    penalty is switched off).

    Every login and failure is logged with C{rip=} (the client's address)
    and ends in C{, TLS,} when it came over TLS (implicit or STARTTLS) and in
    C{, secured,} when it came in plain text on a connection Dovecot deems
    safe.

    By default (C{trusted=True}) the server listens on 127.0.0.1 and trusts
    127.0.0.0/8, so an IMAP C{ID ("x-originating-ip" "192.0.2.33")} sent
    before LOGIN makes the log show C{rip=192.0.2.33}. Dovecot 2.3 counts
    trusted and same-address (loopback to loopback) connections as secured,
    so there C{disable_plaintext_auth} does not bite: LOGIN before STARTTLS
    succeeds (logged C{secured}, not C{TLS}).

    With C{trusted=False} nothing is trusted (x-originating-ip is ignored)
    and the server listens on 127.0.0.2, so that a client on 127.0.0.1 is
    not "secured": the plain port then advertises LOGINDISABLED and refuses
    LOGIN until STARTTLS. The certificate has no 127.0.0.2 in it; verify it
    by the name imap.example.test (or localhost) there.
    """

    name = "dovecot"
    users = {
        "alice@example.test": "alice-password",
        "bob@example.test": "bob-password",
    }
    mail_user = "nobody"

    def __init__(self, directory: Path, trusted: bool = True) -> None:
        self.users = dict(self.users)
        self.trusted = trusted
        self.host = "127.0.0.1" if trusted else "127.0.0.2"
        self.directory = directory = Path(directory).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        _let_others_through(directory)
        self.ca_file = directory / "dovecot.crt"
        self.key_file = directory / "dovecot.key"
        create_development_certificate(self.ca_file, self.key_file, ["imap.example.test"])
        self.base_dir = directory / "run"
        self._outside_base_dir = None
        if len(str(self.base_dir)) > MAX_BASE_DIR:
            # Unix socket paths are limited to 107 bytes, and trial's are
            # long: then the sockets go to a short private directory of
            # their own, which "run" links to and stop() removes.
            self._outside_base_dir = Path(tempfile.mkdtemp(prefix="dovecot-test-"))
            self._outside_base_dir.chmod(0o755)
            if not self.base_dir.is_symlink():
                self.base_dir.symlink_to(self._outside_base_dir)
            self.base_dir = self._outside_base_dir
        self.state_dir = directory / "state"
        self.mail_dir = directory / "mail"
        self.passwd_file = directory / "users.passwd"
        self.config = directory / "dovecot.conf"
        self.log_path = directory / "dovecot.log"
        for path in (self.base_dir, self.state_dir):
            path.mkdir(exist_ok=True)
        try:
            self._start(directory)
        except BaseException:
            self._remove_outside_base_dir()
            raise

    def _start(self, directory: Path) -> None:
        account = pwd.getpwnam(self.mail_user)
        self.mail_dir.mkdir(exist_ok=True)
        os.chown(self.mail_dir, account.pw_uid, account.pw_gid)
        self.passwd_file.write_text(
            "".join(f"{address}:{{PLAIN}}{password}\n"
                    for address, password in self.users.items()), encoding="utf-8")
        self.passwd_file.chmod(0o644)
        self.port = free_port()
        self.tls_port = free_port()
        while self.tls_port == self.port:
            self.tls_port = free_port()
        self.config.write_text(self._config(account), encoding="utf-8")
        self._spawn([_find(DOVECOT), "-F", "-c", str(self.config)], directory)
        self._wait_listening([self.port, self.tls_port], self.host)

    def stop(self) -> int | None:
        code = super().stop()
        self._remove_outside_base_dir()
        return code

    def _remove_outside_base_dir(self) -> None:
        if self._outside_base_dir is not None:
            shutil.rmtree(self._outside_base_dir, ignore_errors=True)

    def _config(self, account: pwd.struct_passwd) -> str:
        trusted = "login_trusted_networks = 127.0.0.0/8" if self.trusted else ""
        return f"""\
instance_name = smartdiscover-test-{self.port}
base_dir = {self.base_dir}
state_dir = {self.state_dir}
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}
protocols = imap
listen = {self.host}
shutdown_clients = yes

ssl = yes
ssl_cert = <{self.ca_file}
ssl_key = <{self.key_file}
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_verbose = yes
auth_failure_delay = 0
{trusted}
login_log_format_elements = user=<%u> method=%m rip=%r lip=%l mpid=%e %c session=<%{{session}}>

default_login_user = dovenull
default_internal_user = dovecot

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_file}
}}
userdb {{
  driver = static
  args = uid={account.pw_uid} gid={account.pw_gid} home={self.mail_dir}/%u
}}
mail_location = maildir:~/Maildir
first_valid_uid = 1
first_valid_gid = 1

service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.tls_port}
    ssl = yes
  }}
}}

# Without this socket the auth process keeps no per-IP penalty, which would
# hold every login from 127.0.0.1 for 2, 4, 8... seconds after a failure.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
