"""The Dockerfiles, checked without a Docker engine.

Static checks read each Dockerfile: multi-stage, pinned bases, `uv sync --frozen` of its own
workspace member only, a non-root numeric USER, a HEALTHCHECK, an exec-form ENTRYPOINT that is one
of the member's console scripts, and COPY sources that exist and survive the root .dockerignore.

`test_simulated_build` then does what the build stage does: it copies exactly the files the COPY
instructions name (filtered by .dockerignore) into a temporary /app, runs the Dockerfile's own RUN
commands there in order (`uv sync`, offline from uv's cache, and compileall), and runs the result:
the ENTRYPOINT console script with --help, the service CLI's commands and options, and `migrate`'s
Alembic configuration in offline (--sql) mode. The environment must hold exactly the member's locked
dependencies: nothing of another service's (no `stripe` in auth-service) and no dev tools.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
from deployment import ROOT, SERVICES, readme_emulator_port

DOCKERIGNORE = ROOT / ".dockerignore"
SIMULATION_TIMEOUT = 120


# ----------------------------------------------------------------------------- what each image is


@dataclass(frozen=True)
class Image:
    name: str  # image and compose service name
    dockerfile: str  # relative to the repository root, which is the build context
    member_dir: str  # the workspace member it installs
    script: str  # its ENTRYPOINT console script
    port: int
    cmd: tuple[str, ...]  # the default command after the entrypoint
    database: bool = False
    commands: tuple[str, ...] = ()  # CLI commands compose and the docs rely on


def _service_image(name: str, *commands: str) -> Image:
    service = SERVICES[name]
    standard = ["serve"]
    if service.database:
        standard.append("migrate")
    if service.celery:
        standard += ["worker", "beat"]
    return Image(
        name=name,
        dockerfile=f"{name}/Dockerfile",
        member_dir=name,
        script=service.entrypoint,
        port=service.port,
        cmd=("serve", "--host", "0.0.0.0", "--port", str(service.port)),
        database=service.database is not None,
        commands=(*standard, *commands),
    )


def _emulator_image(kind: str, label: str) -> Image:
    port = readme_emulator_port(label)
    return Image(
        name=f"{kind}-emulator",
        dockerfile=f"emulators/{kind}.Dockerfile",
        member_dir="emulators",
        script=f"gatehouse-{kind}-emulator",
        port=port,
        cmd=("--host", "0.0.0.0", "--port", str(port)),
    )


IMAGES: dict[str, Image] = {
    image.name: image
    for image in (
        _service_image("gateway"),
        _service_image("auth-service", "create-admin", "rotate-keys"),
        _service_image("billing-service", "seed-plans", "replay-dead-letters"),
        _service_image("notification-service", "replay-dead-letters"),
        _service_image("web"),
        _emulator_image("stripe", "Stripe"),
        _emulator_image("oauth", "OAuth"),
    )
}


# ----------------------------------------------------------------------------- reading a Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str

    def flags_and_rest(self) -> tuple[dict[str, str], str]:
        """Leading `--flag[=value]` options (COPY --from, RUN --mount) and the rest."""
        flags: dict[str, str] = {}
        rest = self.args.strip()
        while rest.startswith("--"):
            token, _, rest = rest.partition(" ")
            key, _, value = token[2:].partition("=")
            flags[key] = value
            rest = rest.strip()
        return flags, rest

    def exec_form(self) -> list[str]:
        """The JSON (exec) form of ENTRYPOINT / CMD; fails for the shell form."""
        value = json.loads(self.args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self.args
        return value


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for token in shlex.split(instruction.args):
                key, sep, value = token.partition("=")
                assert sep, f"use ENV key=value: {instruction.args}"
                values[key] = value
        return values


def parse_dockerfile(path: Path) -> list[Stage]:
    """Stages and their instructions: comment lines dropped (also inside continuations), lines
    ending in a backslash joined, as Docker does."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path}: the last instruction ends with a line continuation"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
            continue
        assert stages, f"{path}: {keyword} before the first FROM"
        stages[-1].instructions.append(Instruction(keyword, " ".join(args.split())))
    return stages


def stages_of(image: Image) -> list[Stage]:
    path = ROOT / image.dockerfile
    assert path.is_file(), f"{image.name}: {image.dockerfile} is missing"
    return parse_dockerfile(path)


def build_stage(stages: list[Stage]) -> Stage:
    """The stage whose /app the final stage copies (the virtual environment and the sources)."""
    final = stages[-1]
    for instruction in final.all("COPY"):
        flags, rest = instruction.flags_and_rest()
        if "from" in flags and rest.split() == ["/app", "/app"]:
            return next(s for s in stages if s.name == flags["from"])
    raise AssertionError("the final stage does not COPY --from=<build stage> /app /app")


def copies_from_context(stage: Stage) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY that reads the build context."""
    result = []
    for instruction in stage.all("COPY"):
        flags, rest = instruction.flags_and_rest()
        if "from" in flags:
            continue
        parts = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        result.append((parts[:-1], parts[-1]))
    return result


def compile_steps(stage: Stage) -> list[list[str]]:
    return [
        shlex.split(i.args)
        for i in stage.all("RUN")
        if shlex.split(i.args)[:3] == ["python", "-m", "compileall"]
    ]


def uv_syncs(stage: Stage) -> list[list[str]]:
    commands = []
    for instruction in stage.all("RUN"):
        _, rest = instruction.flags_and_rest()
        argv = shlex.split(rest)
        if argv[:2] == ["uv", "sync"]:
            commands.append(argv)
    return commands


def option_value(argv: list[str], option: str) -> str | None:
    for index, token in enumerate(argv):
        if token == option and index + 1 < len(argv):
            return argv[index + 1]
        if token.startswith(option + "="):
            return token.partition("=")[2]
    return None


# ----------------------------------------------------------------------------- .dockerignore


@dataclass(frozen=True)
class IgnorePattern:
    regex: re.Pattern[str]
    exclusion: bool  # a `!pattern`: brings matching paths back


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """moby/patternmatcher's translation: `**` spans directories, `*` and `?` stay in one."""
    regex, index = "^", 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*" and pattern[index + 1 : index + 2] == "*":
            index += 1
            if pattern[index + 1 : index + 2] == "/":
                index += 1
            regex += ".*" if index + 1 >= len(pattern) else "(.*/)?"
        elif char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "[":
            end = pattern.index("]", index)
            body = pattern[index + 1 : end]
            regex += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
            index = end
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            regex += re.escape(pattern[index])
        else:
            regex += re.escape(char)
        index += 1
    return re.compile(regex + "$")


def read_dockerignore(path: Path = DOCKERIGNORE) -> list[IgnorePattern]:
    assert path.is_file(), "the root .dockerignore is missing"
    patterns = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        line = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        patterns.append(IgnorePattern(_pattern_regex(line), exclusion))
    return patterns


def is_ignored(relative: str, patterns: list[IgnorePattern]) -> bool:
    """Whether a context path is left out: the last pattern matching it or one of its parent
    folders decides (moby/patternmatcher MatchesOrParentMatches)."""
    parts = PurePosixPath(relative).parts
    parents = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
    ignored = False
    for pattern in patterns:
        if pattern.regex.match(relative) or any(pattern.regex.match(p) for p in parents):
            ignored = not pattern.exclusion
    return ignored


def context_files(source: str, patterns: list[IgnorePattern]) -> list[str]:
    """The files under one COPY source that reach the build (relative to the context root)."""
    path = ROOT / source
    if path.is_file():
        return [] if is_ignored(source, patterns) else [source]
    found = []
    for folder, _dirs, files in os.walk(path):
        for name in files:
            relative = (Path(folder) / name).relative_to(ROOT).as_posix()
            if not is_ignored(relative, patterns):
                found.append(relative)
    return sorted(found)


# ----------------------------------------------------------------------------- uv.lock


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def member_project(member_dir: str) -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((ROOT / member_dir / "pyproject.toml").read_text())["project"]
    return project


def locked_closure(member: str) -> set[str]:
    """Every package the lockfile installs for `member` (extras followed, markers ignored: a
    superset of what any one platform installs)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    entries: dict[str, list[dict[str, object]]] = {}
    for package in lock["package"]:
        entries.setdefault(_norm(package["name"]), []).append(package)
    seen: set[tuple[str, tuple[str, ...]]] = set()
    stack: list[tuple[str, tuple[str, ...]]] = [(_norm(member), ())]
    while stack:
        name, extras = stack.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for package in entries[name]:
            deps = list(package.get("dependencies", []))  # type: ignore[call-overload]
            optional: dict[str, list[dict[str, object]]] = package.get("optional-dependencies", {})  # type: ignore[assignment]
            for extra in extras:
                deps += optional.get(extra, [])
            for dep in deps:
                stack.append((_norm(str(dep["name"])), tuple(sorted(dep.get("extra", [])))))
    return {name for name, _ in seen}


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return _norm(match.group(0))


# ----------------------------------------------------------------------------- static checks


@pytest.mark.parametrize("name", IMAGES)
def test_dockerfile_is_multi_stage_with_pinned_bases(name: str) -> None:
    stages = stages_of(IMAGES[name])
    assert len(stages) >= 2, f"{name}: build and runtime must be separate stages"
    for stage in stages:
        _image, _, tag = stage.base.partition(":")
        assert tag and tag != "latest" and re.search(r"\d", tag), (
            f"{name}: pin the base image {stage.base} by version tag"
        )
    runtime = stages[-1].base
    assert runtime.startswith("python:") and "slim" in runtime, f"{name}: run on a slim Python image"
    assert build_stage(stages).base == runtime, (
        f"{name}: the venv is built and run on the same Python image (its interpreter symlinks)"
    )


def test_python_and_uv_versions_match_the_workspace() -> None:
    uv = shutil.which("uv")
    assert uv, "uv must be on PATH (the simulated build runs it)"
    local_uv = subprocess.run([uv, "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    for name, image in IMAGES.items():
        stages = stages_of(image)
        uv_images = [s.base for s in stages if s.base.startswith("ghcr.io/astral-sh/uv:")]
        assert uv_images == [f"ghcr.io/astral-sh/uv:{local_uv}"], (
            f"{name}: copy uv {local_uv} (the version that checks these builds) from its pinned image, "
            f"found {uv_images}"
        )
        version = re.match(r"python:(\d+)\.(\d+)\.\d+", stages[-1].base)
        assert version, f"{name}: pin the Python image to a patch version, found {stages[-1].base}"
        assert (int(version.group(1)), int(version.group(2))) == sys.version_info[:2], (
            f"{name}: the image's Python {version.group(1)}.{version.group(2)} differs from the "
            f"workspace's {sys.version_info[0]}.{sys.version_info[1]}"
        )
        requires = str(member_project(image.member_dir)["requires-python"])
        assert requires == f">={sys.version_info[0]}.{sys.version_info[1]}", f"{name}: {requires}"


@pytest.mark.parametrize("name", IMAGES)
def test_uv_sync_is_frozen_without_dev_tools_for_its_own_member(name: str) -> None:
    image = IMAGES[name]
    build = build_stage(stages_of(image))
    syncs = uv_syncs(build)
    member = str(member_project(image.member_dir)["name"])
    assert len(syncs) == 2, f"{name}: a dependencies layer, then the workspace members ({syncs})"
    for argv in syncs:
        assert "--frozen" in argv or "--locked" in argv, f"{name}: install exactly uv.lock: {argv}"
        assert "--no-dev" in argv, f"{name}: no dev tools in the image: {argv}"
        assert option_value(argv, "--package") == member, f"{name}: sync only {member}: {argv}"
    assert "--no-install-workspace" in syncs[0], f"{name}: the first sync is the dependency layer"
    assert "--no-install-workspace" not in syncs[1]
    assert "--no-editable" not in syncs[1], (
        f"{name}: members stay editable: the CLI finds alembic.ini next to src/ "
        "(Path(cli.__file__).parents[2])"
    )
    first_copy_of_lock = next(
        i for i, (sources, _) in enumerate(copies_from_context(build)) if "uv.lock" in sources
    )
    assert first_copy_of_lock == 0, f"{name}: copy uv.lock and pyproject.toml first (layer cache)"
    env = build.env()
    assert env.get("UV_COMPILE_BYTECODE") == "1", f"{name}: compile bytecode at build time"
    assert env.get("UV_LINK_MODE") == "copy", f"{name}: copy from the cache mount (another filesystem)"
    assert env.get("UV_PYTHON_DOWNLOADS") == "never", f"{name}: use the image's own Python"


@pytest.mark.parametrize("name", IMAGES)
def test_members_code_is_compiled_at_build_time(name: str) -> None:
    """uv compiles the dependencies only; the runtime user cannot write __pycache__ under /app."""
    build = build_stage(stages_of(IMAGES[name]))
    steps = compile_steps(build)
    assert len(steps) == 1, f"{name}: compile the members' code once, after the last uv sync"
    assert build.instructions[-1].args == " ".join(steps[0]), f"{name}: compile as the build's last step"
    compiled = set(steps[0])
    for sources, _ in copies_from_context(build):
        for source in sources:
            if (ROOT / source).is_dir():
                assert source in compiled, f"{name}: {source} is copied but not compiled"


@pytest.mark.parametrize("name", IMAGES)
def test_runtime_stage_runs_as_a_numeric_non_root_user(name: str) -> None:
    final = stages_of(IMAGES[name])[-1]
    user = final.last("USER")
    assert user, f"{name}: the runtime stage must set USER"
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) != 0, f"{name}: USER must be a numeric non-root uid, not {user.args}"
    assert not gid or (gid.isdigit() and int(gid) != 0), f"{name}: group {gid}"
    assert "uv" not in " ".join(i.args for i in final.all("COPY")), f"{name}: uv stays in the build stage"


@pytest.mark.parametrize("name", IMAGES)
def test_healthcheck_probes_the_service_port(name: str) -> None:
    image = IMAGES[name]
    final = stages_of(image)[-1]
    health = final.last("HEALTHCHECK")
    assert health, f"{name}: the image needs a HEALTHCHECK"
    _, rest = health.flags_and_rest()
    keyword, _, command = rest.partition(" ")
    assert keyword == "CMD", f"{name}: HEALTHCHECK CMD [...], found {rest}"
    argv = json.loads(command)
    assert argv[0] == "python", f"{name}: the slim image has no curl; probe with Python ({argv})"
    assert f"http://127.0.0.1:{image.port}/healthz" in argv[-1], f"{name}: probe /healthz on {image.port}"
    exposed = [token for i in final.all("EXPOSE") for token in i.args.split()]
    assert exposed == [str(image.port)], f"{name}: EXPOSE {image.port}, found {exposed}"


@pytest.mark.parametrize("name", IMAGES)
def test_entrypoint_is_an_exec_form_console_script_of_the_member(name: str) -> None:
    image = IMAGES[name]
    final = stages_of(image)[-1]
    entrypoint, cmd = final.last("ENTRYPOINT"), final.last("CMD")
    assert entrypoint and entrypoint.args.startswith("["), f"{name}: ENTRYPOINT must be the exec (JSON) form"
    assert entrypoint.exec_form() == [f"/app/.venv/bin/{image.script}"], f"{name}: {entrypoint.args}"
    scripts = member_project(image.member_dir).get("scripts", {})
    assert isinstance(scripts, dict) and image.script in scripts, (
        f"{name}: {image.script} is not a console script of {image.member_dir}/pyproject.toml"
    )
    assert cmd and cmd.args.startswith("["), f"{name}: CMD must be the exec (JSON) form"
    assert tuple(cmd.exec_form()) == image.cmd, f"{name}: CMD should be {list(image.cmd)}"
    path = final.env().get("PATH", "")
    assert path.startswith("/app/.venv/bin:"), f"{name}: put the venv first on PATH, found {path!r}"


@pytest.mark.parametrize("name", IMAGES)
def test_copy_sources_exist_and_reach_the_build_context(name: str) -> None:
    patterns = read_dockerignore()
    build = build_stage(stages_of(IMAGES[name]))
    for sources, _destination in copies_from_context(build):
        for source in sources:
            assert (ROOT / source).exists(), f"{name}: COPY {source}: no such file in the repository"
            assert context_files(source, patterns), f"{name}: COPY {source} is excluded by .dockerignore"


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "var/mail/new/1.eml",
        ".env",
        "local.env",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/x",
        ".pytest_cache/v/x",
        "auth-service/tests/conftest.py",
        "auth-service/src/auth_service/__pycache__/cli.cpython-311.pyc",
        "billing-service/.venv/bin/python",
        "tests-e2e/test_journeys.py",
        "deploy/tests/deployment.py",
        "bench/gateway.py",
        "shared-platform/src/gatehouse_platform.egg-info/PKG-INFO",
    ],
)
def test_dockerignore_keeps_local_state_and_tests_out(path: str) -> None:
    assert is_ignored(path, read_dockerignore()), f".dockerignore lets {path} into the build context"


def test_dockerignore_matcher_follows_docker_semantics() -> None:
    """The matcher the build simulation relies on, against Docker's documented examples."""
    patterns = [
        IgnorePattern(_pattern_regex("*/temp*"), False),
        IgnorePattern(_pattern_regex("**/*.md"), False),
        IgnorePattern(_pattern_regex("README*.md"), True),
    ]
    assert is_ignored("somedir/temporary.txt", patterns)
    assert not is_ignored("temp.txt", patterns)  # */temp* is one level down only
    assert is_ignored("a/b/c/notes.md", patterns)
    assert not is_ignored("README-secret.md", patterns)  # brought back by the exception
    assert is_ignored("somedir/temp/inner/file.py", patterns)  # a parent folder matches


# ----------------------------------------------------------------------------- simulated build


@dataclass(frozen=True)
class Built:
    app: Path  # the simulated /app
    venv: Path
    installed: set[str]


def _image_path(app: Path, path: str) -> Path:
    assert path.startswith("/app"), f"unexpected path outside /app: {path}"
    return app / PurePosixPath(path).relative_to("/app")


def _base_env() -> dict[str, str]:
    """A clean environment: nothing of the developer's shell (VIRTUAL_ENV, AUTH_*…) leaks in."""
    keep = ("HOME", "LANG", "TMPDIR", "UV_CACHE_DIR", "XDG_CACHE_HOME")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    return env


def simulate_build(image: Image, root: Path) -> Built:
    stages = stages_of(image)
    build = build_stage(stages)
    patterns = read_dockerignore()
    uv = shutil.which("uv")
    assert uv, "uv must be on PATH"
    env = _base_env() | build.env()
    env |= {
        "PATH": f"{Path(uv).parent}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "UV_PYTHON": getattr(sys, "_base_executable", sys.executable),
        "UV_OFFLINE": "1",  # the wheels come from uv's cache, as the cache mount serves them
        "UV_COMPILE_BYTECODE": "0",  # the image compiles; the simulation need not (speed)
        "UV_LINK_MODE": "hardlink",  # the image copies from its cache mount; here, same disk
        "UV_NO_PROGRESS": "1",
    }
    workdir: Path | None = None
    for instruction in build.instructions:
        flags, rest = instruction.flags_and_rest()
        if instruction.keyword == "WORKDIR":
            workdir = _image_path(root / "app", rest)
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY" and "from" not in flags:
            assert workdir is not None, f"{image.name}: COPY before WORKDIR"
            parts = shlex.split(rest)
            destination = workdir / parts[-1]
            for source in parts[:-1]:
                files = context_files(source, patterns)
                assert files, f"{image.name}: COPY {source} copies nothing"
                for relative in files:
                    if (ROOT / source).is_file():
                        target = destination / Path(source).name if parts[-1].endswith("/") else destination
                    else:
                        target = destination / Path(relative).relative_to(source)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / relative, target)
        elif instruction.keyword == "RUN":
            argv = shlex.split(rest)
            if argv[:3] == ["python", "-m", "compileall"]:  # the image's own interpreter
                argv = [env["UV_PYTHON"], *argv[1:]]
            elif argv[:2] == ["uv", "sync"]:
                argv = [uv, *argv[1:]]
            else:
                raise AssertionError(
                    f"{image.name}: the simulation knows `uv sync` and compileall, not {rest}"
                )
            result = subprocess.run(
                argv,
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=SIMULATION_TIMEOUT,
                check=False,
            )
            assert result.returncode == 0, f"{image.name}: `{rest}` failed:\n{result.stdout}{result.stderr}"
    assert workdir is not None
    app = root / "app"
    venv = app / ".venv"
    site_packages = list(venv.glob("lib/python*/site-packages"))
    assert len(site_packages) == 1, f"{image.name}: no virtual environment at /app/.venv"
    installed = {
        _norm(p.name.removesuffix(".dist-info").rsplit("-", 1)[0])
        for p in site_packages[0].glob("*.dist-info")
    }
    return Built(app=app, venv=venv, installed=installed)


class Builds:
    """Each image is built once per test module, on first use."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self._factory = factory
        self._built: dict[str, Built] = {}

    def __getitem__(self, name: str) -> Built:
        if name not in self._built:
            self._built[name] = simulate_build(IMAGES[name], self._factory.mktemp(name))
        return self._built[name]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return Builds(tmp_path_factory)


def runtime_env(image: Image, built: Built) -> dict[str, str]:
    """The runtime stage's ENV (PATH with the venv first), with /app mapped to the simulation."""
    env = _base_env() | {"COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"}
    for key, value in stages_of(image)[-1].env().items():
        value = value.replace("$PATH", f"/usr/bin{os.pathsep}/bin")
        env[key] = value.replace("/app/", f"{built.app}/")
    return env


INTROSPECT = """
import contextlib, importlib, inspect, io, json, sys
from pathlib import Path
import typer.main
from alembic.config import main as alembic

module_name, attribute = sys.argv[1].split(":")
module = importlib.import_module(module_name)
app = getattr(module, attribute)
group = typer.main.get_command(app)
commands = getattr(group, "commands", {group.name: group})
report = {
    "cli_file": str(Path(module.__file__).resolve()),
    "commands": {name: sorted(o for p in c.params for o in p.opts) for name, c in commands.items()},
}
for info in app.registered_commands:
    name = info.name or info.callback.__name__.replace("_", "-")
    if name == "migrate":
        root = Path(inspect.getclosurevars(info.callback).nonlocals["service_root"])
        report["service_root"] = str(root.resolve())
        report["migration_sql"] = ""
        if (root / "alembic.ini").is_file():
            sql = io.StringIO()
            try:
                with contextlib.redirect_stdout(sql):  # what `migrate` runs, offline (--sql)
                    alembic(argv=["-c", str(root / "alembic.ini"), "upgrade", "head", "--sql"])
            except SystemExit as exit:
                sql.write(f"alembic exited with {exit.code}")
            report["migration_sql"] = sql.getvalue()
print(json.dumps(report))
"""


@pytest.mark.parametrize("name", IMAGES)
def test_simulated_build(name: str, builds: Builds) -> None:
    image = IMAGES[name]
    built = builds[name]
    project = member_project(image.member_dir)
    member = str(project["name"])

    # Exactly the member's locked dependencies: nothing of another image's, no dev tools.
    closure = locked_closure(member)
    strays = built.installed - closure
    assert not strays, f"{name}: installed but not a dependency of {member} in uv.lock: {sorted(strays)}"
    direct = {requirement_name(r) for r in project.get("dependencies", [])}  # type: ignore[attr-defined]
    assert direct <= built.installed, f"{name}: missing {sorted(direct - built.installed)}"
    foreign = set()
    for other in IMAGES.values():
        if other.member_dir != image.member_dir:
            other_deps = member_project(other.member_dir).get("dependencies", [])
            foreign |= {requirement_name(r) for r in other_deps} - closure  # type: ignore[attr-defined]
    assert foreign, f"{name}: nothing to compare with (every other image's dependencies are {member}'s too?)"
    assert not built.installed & foreign, (
        f"{name}: another service's dependencies are installed: {sorted(built.installed & foreign)}"
    )
    root_dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    dev_tools = {requirement_name(r) for r in root_dev} - closure
    assert {"pytest", "ruff", "mypy"} <= dev_tools and not built.installed & dev_tools, (
        f"{name}: dev tools installed: {sorted(built.installed & dev_tools)}"
    )

    # The ENTRYPOINT runs: the console script, from the image's PATH and working directory.
    final = stages_of(image)[-1]
    entrypoint = _image_path(built.app, final.last("ENTRYPOINT").exec_form()[0])  # type: ignore[union-attr]
    assert entrypoint.is_file() and os.access(entrypoint, os.X_OK), f"{name}: {entrypoint} is not installed"
    env = runtime_env(image, built)
    runs = {"help": [str(entrypoint), "--help"]}
    if image.member_dir != "emulators":  # a service CLI: introspect it too, at the same time
        script = str(dict(project["scripts"])[image.script])  # type: ignore[call-overload]
        runs["introspect"] = [str(built.venv / "bin" / "python"), "-c", INTROSPECT, script]
    started = {
        key: subprocess.Popen(
            argv, cwd=built.app, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for key, argv in runs.items()
    }
    outputs = {key: process.communicate(timeout=60) for key, process in started.items()}
    codes = {key: process.returncode for key, process in started.items()}
    help_out, help_err = outputs["help"]
    assert codes["help"] == 0, f"{name}: {image.script} --help failed:\n{help_err}"
    if image.member_dir == "emulators":
        for option in (token for token in image.cmd if token.startswith("--")):
            assert option in help_out, f"{name}: {image.script} has no {option}:\n{help_out}"
        return

    # The service CLI: its commands and options, where it finds its code, and `migrate`.
    introspect_out, introspect_err = outputs["introspect"]
    assert codes["introspect"] == 0, f"{name}: introspecting {image.script}'s CLI failed:\n{introspect_err}"
    report = json.loads(introspect_out.strip().splitlines()[-1])
    member_src = built.app / image.member_dir / "src"
    assert Path(report["cli_file"]).is_relative_to(member_src), (
        f"{name}: the CLI was imported from {report['cli_file']}, not from the image's {member_src}"
    )
    commands = report["commands"]
    for command in image.commands:
        assert command in commands, f"{name}: no `{command}` command (has {sorted(commands)})"
        assert command in help_out, f"{name}: --help does not list `{command}`"
    serve = image.cmd[0]
    for option in (token for token in image.cmd[1:] if token.startswith("--")):
        assert option in commands[serve], f"{name}: `{serve}` has no {option} option"
    if image.database:
        assert Path(report["service_root"]) == built.app / image.member_dir, (
            f"{name}: migrate looks for alembic.ini in {report['service_root']}, "
            f"not the image's {built.app / image.member_dir}"
        )
        sql = report["migration_sql"]
        assert "CREATE TABLE" in sql and "alembic_version" in sql, (
            f"{name}: `migrate` (offline) produced no schema:\n{sql[:2000]}"
        )
