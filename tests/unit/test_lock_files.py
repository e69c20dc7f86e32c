"""The lock files say what pyproject.toml asks for: every dependency (extras and build tools
included) pinned to a version its specifier allows, with hashes, and the runtime lock a subset
of the dev lock at the same versions. When this fails, run ``make lock``."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def read_lock(path: Path) -> dict[str, tuple[Version, int]]:
    """``{name: (version, number of hashes)}`` of a lock file."""
    pins: dict[str, tuple[Version, int]] = {}
    current: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (Version(match.group(2)), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def requirements(extras: bool) -> list[Requirement]:
    """What pyproject.toml (and requirements/build.in) ask for, markers applied."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    if extras:
        for group in project.get("optional-dependencies", {}).values():
            wanted += group
    for line in (REQUIREMENTS / "build.in").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            wanted.append(line)
    environment = default_environment()
    found = [Requirement(text) for text in wanted]
    return [r for r in found if r.marker is None or r.marker.evaluate({**environment, "extra": ""})]


@pytest.mark.parametrize(("lock", "extras"), [("requirements-dev.txt", True), ("requirements.txt", False)])
def test_every_dependency_is_pinned_within_its_range_with_hashes(lock: str, extras: bool) -> None:
    pins = read_lock(ROOT / lock)
    problems = []
    for requirement in requirements(extras):
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is not in {lock}")
            continue
        version, hashes = pins[name]
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{lock} pins {name}=={version}, outside {requirement}")
    problems += [f"{name} has no hash in {lock}" for name, (_, hashes) in pins.items() if hashes == 0]
    assert not problems, "pyproject.toml and the lock disagree (run `make lock`):\n" + "\n".join(problems)


def test_runtime_lock_is_the_dev_lock_subset_at_the_same_versions() -> None:
    dev = read_lock(ROOT / "requirements-dev.txt")
    runtime = read_lock(ROOT / "requirements.txt")
    differ = {
        name: (str(version), str(dev[name][0]) if name in dev else None)
        for name, (version, _) in runtime.items()
        if name not in dev or dev[name][0] != version
    }
    assert not differ, f"requirements.txt differs from requirements-dev.txt (run `make lock`): {differ}"


def test_torch_is_the_cpu_build() -> None:
    version, _ = read_lock(ROOT / "requirements-dev.txt")["torch"]
    assert version.local == "cpu", f"torch {version}: the lock must pin the CPU build"
