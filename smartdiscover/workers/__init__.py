"""
C{[server] workers = N}: N processes, one reactor each, answering on one
HTTPS port.
"""
