"""
Who a request is for: the account every checker returns (the avatar ID)
and every answer is rendered for.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartdiscover.config.address import AddressError, normalize_domain


@dataclass(frozen=True)
class Principal:
    """
    An authenticated user.

    @ivar address: the canonical address, as the user store spells it.
    @ivar display_name: a name to show, or C{""} when the store has none.
    """

    address: str
    display_name: str = ""

    @property
    def local_part(self) -> str:
        return self.address.rpartition("@")[0]

    @property
    def domain(self) -> str:
        """
        The normalised domain part (what catalogues are keyed by).
        """
        domain = self.address.rpartition("@")[2]
        try:
            return normalize_domain(domain)
        except AddressError:
            return domain.lower()
