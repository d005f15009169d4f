"""
L{smartdiscover.client.urls}: the ports URLs are reached on, the names of
checks, the loop guard's idea of "the same URL", and the domain limit for
credentials.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.client.urls import (
    PATH,
    Ports,
    host_port,
    is_hostname,
    netloc,
    resolve,
    unusable,
    visit_key,
    where,
    within,
)


class PortsTests(SynchronousTestCase):
    """
    L{Ports} puts the configured ports into URLs that name none.
    """

    def test_standard_ports_leave_urls_alone(self) -> None:
        """
        With 443 and 80, a URL without a port is returned unchanged.
        """
        for url in ("https://mail.example.test/x", "http://mail.example.test/x"):
            self.assertEqual(Ports().effective(url), url)

    def test_other_ports_are_written_out(self) -> None:
        """
        With other ports, each scheme gets its own, and path, query and
        fragment survive.
        """
        ports = Ports(https=8443, http=8080)
        self.assertEqual(ports.effective("https://Mail.example.test/a/b?c=d#e"),
                         "https://mail.example.test:8443/a/b?c=d#e")
        self.assertEqual(ports.effective("http://mail.example.test/"),
                         "http://mail.example.test:8080/")

    def test_explicit_port_and_other_schemes_win(self) -> None:
        """
        A URL that names its port, or is neither https nor http, is kept.
        """
        ports = Ports(https=8443, http=8080)
        for url in ("https://mail.example.test:443/x", "ftp://mail.example.test/x"):
            self.assertEqual(ports.effective(url), url)

    def test_ipv6_hosts_keep_their_brackets(self) -> None:
        """
        An IPv6 literal stays bracketed when a port is added.
        """
        self.assertEqual(Ports(https=8443).effective("https://[2001:db8::1]/x"),
                         "https://[2001:db8::1]:8443/x")

    def test_autodiscover_urls(self) -> None:
        """
        The Autodiscover URL of a host names the port only when it is not
        the scheme's standard one; an explicit port wins over the scheme's,
        except the standard one itself (an SRV record's 443), which is
        reached where port-less URLs are (issue 16 section 1).
        """
        self.assertEqual(Ports().autodiscover("https", "autodiscover.example.test"),
                         f"https://autodiscover.example.test{PATH}")
        self.assertEqual(Ports(https=8443).autodiscover("https", "example.test"),
                         f"https://example.test:8443{PATH}")
        self.assertEqual(Ports(http=8080).autodiscover("http", "example.test"),
                         f"http://example.test:8080{PATH}")
        self.assertEqual(Ports(https=8443).autodiscover("https", "srv.example.test", 443),
                         f"https://srv.example.test:8443{PATH}")
        self.assertEqual(Ports().autodiscover("https", "srv.example.test", 443),
                         f"https://srv.example.test{PATH}")
        self.assertEqual(Ports().autodiscover("https", "2001:db8::5", 4443),
                         f"https://[2001:db8::5]:4443{PATH}")


class NameTests(SynchronousTestCase):
    """
    Host, port and check names taken from URLs.
    """

    def test_netloc(self) -> None:
        """
        Only IPv6 addresses are bracketed.
        """
        self.assertEqual(netloc("2001:db8::1"), "[2001:db8::1]")
        self.assertEqual(netloc("mail.example.test"), "mail.example.test")

    def test_host_port(self) -> None:
        """
        The host is lower case without its trailing dot; the port defaults
        by scheme.
        """
        self.assertEqual(host_port("https://MAIL.Example.Test./x"), ("mail.example.test", 443))
        self.assertEqual(host_port("http://mail.example.test/x"), ("mail.example.test", 80))
        self.assertEqual(host_port("https://[2001:DB8::1]:8443/"), ("2001:db8::1", 8443))

    def test_where(self) -> None:
        """
        A check names the host alone on the scheme's standard port, else
        host:port.
        """
        self.assertEqual(where("https://mail.example.test/x"), "mail.example.test")
        self.assertEqual(where("http://mail.example.test/x"), "mail.example.test")
        self.assertEqual(where("https://mail.example.test:80/x"), "mail.example.test:80")
        self.assertEqual(where("http://[2001:db8::1]:8080/"), "[2001:db8::1]:8080")

    def test_resolve(self) -> None:
        """
        A Location is taken relative to the URL that sent it, surrounding
        white space ignored.
        """
        base = "https://autodiscover.example.test/autodiscover/autodiscover.xml"
        self.assertEqual(resolve(base, " /other.xml\r\n"),
                         "https://autodiscover.example.test/other.xml")
        self.assertEqual(resolve(base, "//mail.example.test/a"), "https://mail.example.test/a")
        self.assertEqual(resolve(base, "http://x.test/"), "http://x.test/")


class VisitKeyTests(SynchronousTestCase):
    """
    L{visit_key} says when two URLs are the same stop of a redirect chain.
    """

    def test_spellings_of_one_url(self) -> None:
        """
        Case of scheme, host and path, a trailing dot and the default port
        written out do not make a URL new.
        """
        key = visit_key("https://autodiscover.example.test/Autodiscover/Autodiscover.xml")
        for same in ("HTTPS://AUTODISCOVER.example.test./autodiscover/autodiscover.xml",
                     "https://autodiscover.example.test:443/autodiscover/autodiscover.xml"):
            self.assertEqual(visit_key(same), key)

    def test_different_stops(self) -> None:
        """
        Another scheme, port, path or query is another stop.
        """
        base = "https://autodiscover.example.test/a"
        others = ("http://autodiscover.example.test/a", "https://autodiscover.example.test:8443/a",
                  "https://autodiscover.example.test/b", "https://autodiscover.example.test/a?x")
        self.assertEqual(len({visit_key(base), *map(visit_key, others)}), 5)


class WithinTests(SynchronousTestCase):
    """
    L{within} is the limit for the user's credentials.
    """

    def test_domain_and_its_subdomains(self) -> None:
        """
        The domain itself and names under it qualify, in any case and with
        trailing dots.
        """
        for host in ("example.test", "autodiscover.example.test", "A.B.EXAMPLE.TEST."):
            self.assertTrue(within(host, "example.test."), host)

    def test_lookalikes_do_not(self) -> None:
        """
        A name that merely ends in the same letters, or a parent domain,
        does not qualify.
        """
        for host in ("badexample.test", "example.test.evil.test", "test", "xexample.test"):
            self.assertFalse(within(host, "example.test"), host)


class UnusableTests(SynchronousTestCase):
    """
    L{unusable} says why a URL from an answer or a Location cannot be used.
    """

    def test_usable(self) -> None:
        """
        Ordinary URLs, with or without port, IPv6 literals included, are
        usable.
        """
        for url in ("https://mail.example.test/x", "https://mail.example.test:8443/",
                    "http://[2001:db8::1]:80/x", "https://192.0.2.1"):
            self.assertIsNone(unusable(url), url)

    def test_unusable(self) -> None:
        """
        A port out of range or not a number, an unclosed IPv6 literal and
        a missing host each have a reason.
        """
        for url in ("https://mail.example.test:99999/", "https://mail.example.test:x/",
                    "https://mail.example.test:-1/", "https://[2001:db8::1/",
                    "https:///autodiscover", "https://:443/", "/relative"):
            self.assertTrue(unusable(url), url)


class HostnameTests(SynchronousTestCase):
    """
    L{is_hostname}: the names DNS may hand out as a candidate's host.
    """

    def test_host_names(self) -> None:
        """
        Letters, digits, hyphens and underscores in labels of up to 63,
        a trailing dot allowed.
        """
        for host in ("mail.example.test", "MAIL-1.example.test.", "_x.example.test",
                     "a" * 63 + ".test", "192.0.2.1"):
            self.assertTrue(is_hostname(host), host)

    def test_not_host_names(self) -> None:
        """
        Empty names and labels, labels over 63, names over 253, and any
        character a URL would read as something else.
        """
        for host in ("", ".", "a..b", "a" * 64 + ".test", ("a" * 60 + ".") * 5,
                     "x:y", "[x]", "a/b", "a@b", "a?b", "a#b", "a b", "m\\xe4il", "\u00e4.test",
                     "2001:db8::1"):
            self.assertFalse(is_hostname(host), host)
