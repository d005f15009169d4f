"""
The configuration model: one INI file becomes one immutable L{Model}.

Nothing here imports any other part of SmartDiscover; every other part reads
the model through the L{ConfigStore}.
"""

from smartdiscover.config.loader import ConfigError, ConfigProblem, load
from smartdiscover.config.model import Model, Security, SocketService, User
from smartdiscover.config.store import ConfigStore

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "ConfigStore",
    "Model",
    "Security",
    "SocketService",
    "User",
    "load",
]
