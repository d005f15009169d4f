"""
twisted.web: the hardened site, routing, Basic authentication and the
resources that serve discovery documents.
"""
