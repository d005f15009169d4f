"""
L{smartdiscover.client.report} and L{smartdiscover.client.explain}: what the
probe tells an administrator about each check, and the fix it offers for
each kind of failure.
"""

from __future__ import annotations

import json
from io import StringIO

from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.client.explain import explain
from smartdiscover.client.report import Check, Report, line


class ReportTests(SynchronousTestCase):
    """
    L{Report} keeps the checks in order and sums them up.
    """

    def test_checks_in_order_and_shown_as_added(self) -> None:
        """
        Each check is kept and handed to C{show} when added, in order.
        """
        shown: list[Check] = []
        report = Report(show=shown.append)
        first = report.passed("1 a DNS", "a has address 192.0.2.1")
        second = report.failed("1 a TCP", "refused", "start it")
        self.assertEqual(report.checks, [first, second])
        self.assertEqual(shown, [first, second])
        self.assertEqual(second, Check("1 a TCP", False, "refused", "start it"))

    def test_a_passed_check_has_no_fix(self) -> None:
        """
        A fix given with a passing check is dropped.
        """
        self.assertEqual(Report().add("x", True, "fine", "do something").fix, "")

    def test_ok_needs_checks_and_no_failure(self) -> None:
        """
        An empty report is not a success; one failure among passes fails
        it; exit status 0 only when ok.
        """
        report = Report()
        self.assertEqual((report.ok, report.exit_status()), (False, 1))
        report.passed("a", "fine")
        self.assertEqual((report.ok, report.exit_status()), (True, 0))
        report.failed("b", "broken")
        report.passed("c", "fine")
        self.assertEqual((report.ok, report.exit_status()), (False, 1))

    def test_summary_counts(self) -> None:
        """
        The summary counts the failed checks among all, or all passed.
        """
        report = Report()
        report.passed("a", "fine")
        report.passed("b", "fine")
        self.assertEqual(report.summary(), "all 2 checks passed")
        report.failed("c", "broken")
        self.assertEqual(report.summary(), "1 of 3 checks failed")

    def test_json_document(self) -> None:
        """
        The JSON document carries the extra fields, the verdict and every
        check with its four fields, and ends with a newline.
        """
        report = Report()
        report.passed("a", "fine")
        report.failed("b", "broken \u2013 \"quoted\"", "fix it")
        out = StringIO()
        report.write_json(out, address="user@example.test", url=None)
        self.assertTrue(out.getvalue().endswith("}\n"))
        self.assertEqual(json.loads(out.getvalue()), {
            "address": "user@example.test", "url": None, "ok": False,
            "checks": [{"name": "a", "ok": True, "detail": "fine", "fix": ""},
                       {"name": "b", "ok": False, "detail": "broken \u2013 \"quoted\"",
                        "fix": "fix it"}]})


class LineTests(SynchronousTestCase):
    """
    L{line}: one check as one line of text.
    """

    def test_pass_and_fail(self) -> None:
        """
        PASS or FAIL, the name and the detail; the fix only for failures
        that have one.
        """
        self.assertEqual(line(Check("1 a DNS", True, "found")), "PASS  1 a DNS: found")
        self.assertEqual(line(Check("1 a TCP", False, "refused", "start it")),
                         "FAIL  1 a TCP: refused -- fix: start it")
        self.assertEqual(line(Check("1 a TCP", False, "refused")), "FAIL  1 a TCP: refused")


class ExplainTests(SynchronousTestCase):
    """
    L{explain} turns a probe's short reason into a detail and a fix.
    """

    def test_certificate_name(self) -> None:
        """
        A certificate for another name names the host to add to it.
        """
        detail, fix = explain("certificate does not match mail.example.test (has www.test)",
                              "mail.example.test", 993)
        self.assertEqual(detail, "certificate does not cover mail.example.test")
        self.assertIn("add mail.example.test to the certificate's subjectAltName", fix)

    def test_refused_and_silent(self) -> None:
        """
        Refused and unanswered connections name host:port, in detail and
        fix.
        """
        for error, hint in (("connection refused", "start the service"),
                            ("timed out", "reachable"), ("no answer within 10 s", "reachable")):
            detail, fix = explain(error, "mail.example.test", 587)
            self.assertEqual(detail, f"mail.example.test:587: {error}")
            self.assertIn("mail.example.test:587", fix)
            self.assertIn(hint, fix)

    def test_kinds_of_failure(self) -> None:
        """
        Each kind of failure gets the fix for its cause.
        """
        cases = {"cannot resolve mail.example.test": "publish an A (and AAAA) record for mail",
                 "certificate expired on 2020-01-01": "renew the certificate of mail",
                 "certificate not valid before 2040-01-01": "renew the certificate of mail",
                 "certificate not trusted": "--ca",
                 "no STARTTLS in CAPABILITY": "enable STARTTLS",
                 "no STLS in CAPA": "enable STARTTLS",
                 "HTTP 503": "logs of the web server on mail.example.test:443"}
        for error, hint in cases.items():
            _, fix = explain(error, "mail.example.test", 443)
            self.assertIn(hint, fix, error)

    def test_unknown_reason(self) -> None:
        """
        Anything else is passed on with the service to check; an HTTP 4xx
        is not mistaken for a server error.
        """
        for error in ("greeting was 554 go away", "HTTP 404", ""):
            detail, fix = explain(error, "mail.example.test", 25)
            self.assertEqual(detail, f"mail.example.test:25: {error}")
            self.assertEqual(fix, "check the service on mail.example.test:25")

    def test_ipv6_hosts_are_bracketed(self) -> None:
        """
        An IPv6 host is written [host]:port: "2001:db8::1:25" would name
        another address.
        """
        for error in ("connection refused", "greeting was 554 go away"):
            detail, fix = explain(error, "2001:db8::1", 25)
            self.assertTrue(detail.startswith("[2001:db8::1]:25: "), detail)
            self.assertIn("[2001:db8::1]:25", fix)
