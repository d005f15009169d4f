"""
The discovery client and diagnostics behind C{smartdiscover probe}: walks the
order in which clients look for an Autodiscover server, checks every
advertised endpoint and cross-checks the domain's SRV records.
"""
