"""
twisted.cred pieces: credentials from HTTP Basic, checkers against user
stores, and the pool that runs password hashing off the reactor thread.
"""
