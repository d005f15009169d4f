"""
The web console for administrators (docs/console.md): its own listener,
accounts, sessions and pages, rendered with twisted.web.template.
"""
