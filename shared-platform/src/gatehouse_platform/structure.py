"""The house rules (docs/conventions.md) as one test every service runs.

A service's `tests/test_structure.py` subclasses `HouseRules`, names its package and which of its
modules alone may import each third-party SDK, and pytest runs the inherited tests:

    class TestHouseRules(HouseRules):
        package = "billing_service"
        source = SERVICE_ROOT / "src" / "billing_service"
        sdk_owners = {"stripe": ("integrations/stripe/",)}

The rules read the source as text (Python's `ast`), so they cost milliseconds and need nothing
running. Each test lists the offending modules, so a failure says where to look.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar

# Every deployable's top-level package: none may import another's (they talk over HTTP and events).
SERVICE_PACKAGES = frozenset(
    {
        "auth_service",
        "billing_service",
        "notification_service",
        "gateway",
        "gatehouse_web",
        "gatehouse_emulators",
    }
)

# What makes a query. Only repositories (and the models' column defaults) speak SQL.
QUERY_CONSTRUCTS = frozenset(
    {"select", "update", "delete", "insert", "text", "exists", "union", "union_all", "bindparam"}
)
QUERY_METHODS = frozenset({"execute", "scalar", "scalars", "stream", "stream_scalars", "get"})
# How a database session or connection is named here (`db`, `session`, `self.session`, `conn`):
# a Redis pipeline's `execute()` or a dict's `get()` is no query.
SESSION_NAMES = ("db", "session", "conn", "connection")

# Composition modules wire the process; routers are the HTTP edge. Nothing below imports them.
COMPOSITION = frozenset({"main", "cli", "tasks", "dependencies"})
EDGES = frozenset({"router", "routes"})


@dataclass(frozen=True)
class Module:
    path: Path  # relative to the package's folder
    tree: ast.Module

    @property
    def name(self) -> str:
        """The last part of its dotted name: `router` for `plans/router.py`."""
        return self.path.parent.name if self.path.stem == "__init__" else self.path.stem

    @property
    def is_repository(self) -> bool:
        return self.name == "repository" or "repositories" in self.path.parts[:-1]

    def imports(self) -> Iterator[tuple[str, frozenset[str]]]:
        """(module, names imported from it) for each import statement."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield alias.name, frozenset()
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield node.module, frozenset(alias.name for alias in node.names)


class HouseRules:
    """Subclass as `TestHouseRules` in a service's tests; set the three class attributes."""

    package: ClassVar[str]
    source: ClassVar[Path]
    sdk_owners: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    @cached_property
    def modules(self) -> list[Module]:
        return [
            Module(path.relative_to(self.source), ast.parse(path.read_text(), filename=str(path)))
            for path in sorted(self.source.rglob("*.py"))
        ]

    def test_no_module_commits_a_session_itself(self) -> None:
        """Units of work are committed at their edge (request, message, task) by
        `gatehouse_platform.db.session_scope`: never inside the rules."""
        offenders = [
            str(m.path)
            for m in self.modules
            if any(isinstance(n, ast.Attribute) and n.attr == "commit" for n in ast.walk(m.tree))
        ]
        assert offenders == [], offenders

    def test_queries_live_in_repositories(self) -> None:
        offenders = set()
        for module in self.modules:
            if module.is_repository:
                continue
            for source, names in module.imports():
                if module.name == "models":  # `text()` in server defaults and constraints
                    names = names - {"text"}
                if source.startswith("sqlalchemy") and names & QUERY_CONSTRUCTS:
                    offenders.add(f"{module.path}: imports {', '.join(sorted(names & QUERY_CONSTRUCTS))}")
            for node in ast.walk(module.tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in QUERY_METHODS
                    and ast.unparse(node.func.value).split(".")[-1].endswith(SESSION_NAMES)
                ):
                    offenders.add(f"{module.path}: calls .{node.func.attr}()")
        assert not offenders, sorted(offenders)

    def test_each_third_party_sdk_has_one_owner(self) -> None:
        offenders = []
        for module in self.modules:
            for source, _ in module.imports():
                sdk = source.split(".")[0]
                owners = self.sdk_owners.get(sdk)
                if owners is not None and not str(module.path).startswith(owners):
                    offenders.append(f"{module.path} imports {sdk} (owned by {', '.join(owners)})")
        assert offenders == [], offenders

    def test_no_import_from_another_service(self) -> None:
        offenders = [
            f"{module.path} imports {source}"
            for module in self.modules
            for source, _ in module.imports()
            if source.split(".")[0] in SERVICE_PACKAGES - {self.package}
        ]
        assert offenders == [], offenders

    def test_no_upward_imports(self) -> None:
        """Routers depend on rules, rules on repositories and models; never the other way. Only the
        composition modules import the wiring (`dependencies`, `main`, `cli`, `tasks`), only they
        import routers, and repositories and models import no rules."""
        offenders = [
            f"{module.path} imports {source}"
            for module in self.modules
            for source, _ in module.imports()
            if source.startswith(f"{self.package}.") and _imports_upward(module, source.split(".")[-1])
        ]
        assert offenders == [], offenders

    def test_sdk_owners_exist(self) -> None:
        """A rule about a module that is gone would pass for ever: each owner must be there."""
        paths = [str(m.path) for m in self.modules]
        missing = [
            o
            for owners in self.sdk_owners.values()
            for o in owners
            if not any(p.startswith(o) for p in paths)
        ]
        assert missing == [], missing


def _imports_upward(module: Module, target: str) -> bool:
    if target in COMPOSITION:
        return module.name not in COMPOSITION | EDGES
    if target in EDGES:
        return module.name not in COMPOSITION
    return (module.is_repository or module.name == "models") and target in {"service", "rules"}
