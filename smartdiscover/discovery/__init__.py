"""
Pure functions from (model, principal, request) to document bytes.

Nothing here imports Twisted; only L{smartdiscover.config} is used.
"""
