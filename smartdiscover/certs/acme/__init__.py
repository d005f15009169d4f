"""
ACME (RFC 8555): certificates obtained and renewed by the service itself,
through the C{acme} package maintained with certbot.

 - L{store}: the state directory (account, certificates), atomic writes;
 - L{client}: the account and the orders, off the reactor thread;
 - L{responders}: the HTTP-01, DNS-01 and TLS-ALPN-01 answers the
   listeners serve;
 - L{renewal}: when to renew, retries, and the status /health shows.

Who orders (docs/certificates.md, "ACME"):

 - With C{[server] workers = N}, only the first process orders and renews
   (it alone runs the L{renewal.Renewer}); it also alone serves plain HTTP
   and DNS, so HTTP-01 and DNS-01 answers live in its memory.  A new
   certificate is written to the state directory and the workers re-read
   it on the reload signal the first process already sends them.
   TLS-ALPN-01 is the exception: the kernel hands the CA's TLS connection
   to any worker, so its challenge certificate must reach every worker
   (the wiring relays C{publish}/C{withdraw} over the worker link and
   fires C{publish}'s L{Deferred} once each worker has it).
 - With several instances (docs/scaling.md), exactly one instance orders
   (configured so); the others serve the certificates from a copy of its
   state directory (read-only), as they share the configuration files
   today.  Each instance ordering for itself would be simpler to set up
   but is not correct: the CA's validation requests go to whichever
   instance the load balancer or the resolver picks, which does not know
   another instance's token, and every instance would spend the CA's rate
   limits on the same names.  The CA's HTTP-01 and TLS-ALPN-01 requests
   must therefore reach the ordering instance (HAProxy rules), and DNS-01
   needs the TXT record on every name server of the zone.
"""
