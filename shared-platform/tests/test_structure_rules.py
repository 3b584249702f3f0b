"""The house rules catch what they are for: each rule run on a small package that breaks it, and
on one that keeps them all. (Each service runs the same rules on its own source.)"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from gatehouse_platform.structure import HouseRules

CLEAN = {
    "main.py": "from shop.plans.router import router\nfrom shop.dependencies import DbSession\n",
    "dependencies.py": "from shop.plans.service import create\n",
    "models.py": "from sqlalchemy import text\nDEFAULT = text('now()')\n",
    "plans/router.py": "from shop.dependencies import DbSession\nfrom shop.plans.service import create\n",
    "plans/service.py": "from shop.plans.repository import PlanRepository\n"
    "async def create(db):\n    PlanRepository(db).add(1)\n    await pipe.execute()\n",
    "plans/repository.py": "from sqlalchemy import select\n"
    "async def by_code(session):\n    return await session.execute(select(1))\n",
    "integrations/stripe/client.py": "import stripe\n",
}


def rules_for(tmp_path: Path, files: dict[str, str]) -> HouseRules:
    for name, body in files.items():
        path = tmp_path / "shop" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(body))

    class Rules(HouseRules):
        package = "shop"
        source = tmp_path / "shop"
        sdk_owners = {"stripe": ("integrations/stripe/",)}

    return Rules()


def test_a_package_that_keeps_the_rules_passes_them_all(tmp_path: Path) -> None:
    rules = rules_for(tmp_path, CLEAN)
    for name in dir(rules):
        if name.startswith("test_"):
            getattr(rules, name)()


@pytest.mark.parametrize(
    ("rule", "module", "body", "offender"),
    [
        (
            "test_no_module_commits_a_session_itself",
            "plans/service.py",
            "async def f(db):\n    await db.commit()\n",
            "plans/service.py",
        ),
        (
            "test_queries_live_in_repositories",
            "plans/service.py",
            "from sqlalchemy import select, update\n",
            "imports select, update",
        ),
        (
            "test_queries_live_in_repositories",
            "plans/service.py",
            "async def f(self):\n    await self.session.execute(1)\n",
            "calls .execute()",
        ),
        (
            "test_queries_live_in_repositories",
            "plans/service.py",
            "async def f(db):\n    await db.get(1, 2)\n",
            "calls .get()",
        ),
        (
            "test_each_third_party_sdk_has_one_owner",
            "plans/service.py",
            "import stripe\n",
            "plans/service.py imports stripe",
        ),
        (
            "test_each_third_party_sdk_has_one_owner",
            "plans/service.py",
            "from stripe.error import CardError\n",
            "imports stripe",
        ),
        (
            "test_no_import_from_another_service",
            "plans/service.py",
            "from auth_service.models import User\n",
            "imports auth_service.models",
        ),
        (
            "test_no_upward_imports",
            "plans/service.py",
            "from shop.dependencies import Services\n",
            "imports shop.dependencies",
        ),
        (
            "test_no_upward_imports",
            "plans/service.py",
            "from shop.main import bootstrap\n",
            "imports shop.main",
        ),
        (
            "test_no_upward_imports",
            "plans/service.py",
            "from shop.plans.router import router\n",
            "imports shop.plans.router",
        ),
        (
            "test_no_upward_imports",
            "plans/repository.py",
            "from shop.plans.service import create\n",
            "imports shop.plans.service",
        ),
    ],
)
def test_each_rule_names_the_module_that_breaks_it(
    tmp_path: Path, rule: str, module: str, body: str, offender: str
) -> None:
    rules = rules_for(tmp_path, {**CLEAN, module: body})
    with pytest.raises(
        AssertionError, match=offender.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")
    ):
        getattr(rules, rule)()


def test_an_owner_that_is_gone_fails(tmp_path: Path) -> None:
    files = {k: v for k, v in CLEAN.items() if not k.startswith("integrations/")}
    with pytest.raises(AssertionError, match="integrations/stripe/"):
        rules_for(tmp_path, files).test_sdk_owners_exist()


def test_the_platform_imports_no_service_and_no_emulator() -> None:
    """shared-platform is what services build on: it depends on none of them (its pytest plugin
    included), so a service's image never needs another service's code."""

    class Platform(HouseRules):
        package = "gatehouse_platform"
        source = Path(__file__).resolve().parents[1] / "src" / "gatehouse_platform"

    Platform().test_no_import_from_another_service()
