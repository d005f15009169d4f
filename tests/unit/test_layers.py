"""
The house's layers (DESIGN.md, "Rules of the house"): a part imports only
parts below it, and discovery/ stays pure.
"""

from __future__ import annotations

import ast

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "smartdiscover"

# Bottom first.  A part may import the parts of lower layers, never one of
# its own layer or above.
LAYERS: list[set[str]] = [
    {"config", "netblocks", "logs", "systemd"},
    {"discovery", "auth", "health", "connections", "certs"},
    {"metrics", "dns", "client"},
    {"web"},
    {"answering", "admin"},
    {"workers"},
    {"tap", "cli"},
]


def _part(path: str) -> str:
    """
    The part a module belongs to: its subpackage, or the module itself.
    """
    first = path.split("/", 1)[0]
    return first.removesuffix(".py")


def imports() -> dict[str, set[str]]:
    """
    Every part of smartdiscover/ with the other parts it imports.
    """
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "__init__.py":
            continue
        part = _part(relative)
        targets = found.setdefault(part, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module
                     else [alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [])
            for name in names:
                pieces = name.split(".")
                if pieces[0] == "smartdiscover" and len(pieces) > 1 and pieces[1] != part:
                    targets.add(pieces[1])
    return found


class LayerTests(SynchronousTestCase):
    def test_every_part_has_a_layer(self) -> None:
        """
        A new part is placed deliberately: one missing from L{LAYERS} fails.
        """
        placed = set().union(*LAYERS)
        self.assertEqual(sorted(imports().keys() - placed), [])

    def test_no_part_imports_one_above_it(self) -> None:
        """
        The arrows run one way: tap.py knows every part, config/ none.
        """
        level = {part: n for n, layer in enumerate(LAYERS) for part in layer}
        upward = sorted(f"{part} -> {target}"
                        for part, targets in imports().items()
                        for target in targets
                        if level.get(target, len(LAYERS)) >= level.get(part, -1))
        self.assertEqual(upward, [])

    def test_config_and_discovery(self) -> None:
        """
        config/ imports nothing of the project; discovery/ only config/.
        """
        found = imports()
        self.assertEqual(found["config"], set())
        self.assertEqual(found["discovery"], {"config"})

    def test_certs_below_web(self) -> None:
        """
        certs/ (certificate sources and SNI selection) imports only
        config/; web/ may import it (DESIGN.md, "The next floors").
        """
        found = imports()
        self.assertEqual(found["certs"], {"config"})
        self.assertIn("certs", found["web"])

    def test_discovery_is_pure(self) -> None:
        """
        discovery/ renders documents from the model: no Twisted, no I/O.
        """
        impure = []
        for path in (PACKAGE / "discovery").rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                         else [alias.name for alias in node.names]
                         if isinstance(node, ast.Import) else [])
                impure += [f"{path.name}: {name}" for name in names
                           if name.split(".")[0] in {"twisted", "socket", "subprocess"}]
        self.assertEqual(impure, [])
