"""
The authoritative DNS responder: every served domain as a zone built from
the model, answered from a table of pre-encoded answers.
"""
