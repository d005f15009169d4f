"""Health: proof that every endpoint SmartDiscover advertises really works."""
