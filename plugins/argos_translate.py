"""Argos Translate: the default, fully offline machine-translation engine.

Packages (``.argosmodel`` files) live in ``<engine data dir>/packages``; install one with
``gateway translate install FILE.argosmodel`` (:func:`install_package`). The engine translates
with a direct package when there is one, else through English (``xx→en`` then ``en→yy``).

argostranslate reads its settings from the environment when it is first imported, and importing
it pulls in torch and stanza: this module imports it lazily, only when a translation or an
install needs it, after pointing its folders into the engine's data folder. Listing languages
reads the packages' ``metadata.json`` directly and never imports it.

``gateway translate install LANG`` installs by language code from the Argos package index
(``index_url``; see :mod:`gateway_plugins.argos_index`): the packages from the source language
into ``LANG`` and from ``LANG`` into the staff language, directly or through English.

Engine settings (``translation.engine_settings.argos``, :class:`ArgosSettings`): ``pivot``
(default ``en``), ``workers`` (translation threads, default 1), ``index_url`` and, read once by
argostranslate at its first import, ``threads`` (CTranslate2 threads per translation; default:
all cores), ``device`` (``cpu``/``cuda``/``auto``) and ``beam_size``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal, NamedTuple

from pydantic import Field

from gateway import (
    EngineContext,
    EngineInfo,
    EngineSettings,
    TranslationEngine,
    TranslationError,
    hookimpl,
)

from .argos_index import (
    DEFAULT_INDEX_URL,
    download_package,
    fetch_index,
    new_session,
    plan_packages,
    version_key,
)

__all__ = [
    "ArgosEngine",
    "ArgosSettings",
    "InstallReport",
    "InstalledPackage",
    "argos_codes",
    "gateway_translation_engines",
    "install_package",
    "installed_packages",
    "to_argos_code",
    "to_bcp47",
]

log = logging.getLogger("gateway.translation.argos")

PIVOT_LANGUAGE = "en"

# BCP 47 tag (lower case) → Argos codes to try, in order. Anything else: the primary subtag.
_BCP47_TO_ARGOS: Mapping[str, tuple[str, ...]] = {
    "zh": ("zh",),
    "zh-hans": ("zh",),
    "zh-cn": ("zh",),
    "zh-sg": ("zh",),
    "zh-hans-cn": ("zh",),
    "zh-hant": ("zt",),
    "zh-tw": ("zt",),
    "zh-hk": ("zt",),
    "zh-mo": ("zt",),
    "zh-hant-tw": ("zt",),
    "cmn": ("zh",),
    "pt-br": ("pt", "pb"),
    "prs": ("fa",),
    "pes": ("fa",),
    "fa-af": ("fa",),
    "no": ("nb",),
    "nn": ("nb",),
    "fil": ("tl",),
    "iw": ("he",),
    "in": ("id",),
    "ji": ("yi",),
    "zsm": ("ms",),
    "swh": ("sw",),
    "arb": ("ar",),
}
# Argos code → the BCP 47 tag the gateway uses for it.
_ARGOS_TO_BCP47: Mapping[str, str] = {"zh": "zh-Hans", "zt": "zh-Hant", "pb": "pt-BR"}

_ENVIRONMENT_SETTINGS = {
    "threads": "ARGOS_INTRA_THREADS",
    "device": "ARGOS_DEVICE_TYPE",
    "beam_size": "ARGOS_BEAM_SIZE",
}


class ArgosSettings(EngineSettings):
    """``translation.engine_settings.argos``."""

    pivot: str = Field(default=PIVOT_LANGUAGE, description="Language to pivot through.")
    workers: int = Field(default=1, ge=1, le=64, description="Translation threads.")
    threads: int | None = Field(
        default=None, ge=1, le=256, description="CTranslate2 threads per translation (default: all cores)."
    )
    device: Literal["cpu", "cuda", "auto"] | None = Field(default=None, description="Where models run.")
    beam_size: int | None = Field(default=None, ge=1, le=16, description="Beam search width.")
    index_url: str = Field(
        default=DEFAULT_INDEX_URL,
        description="Argos package index (http(s), file:// or a path) for `translate install LANG`.",
    )


def argos_codes(tag: str) -> tuple[str, ...]:
    """The Argos codes that can stand for the BCP 47 ``tag``, preferred first.

    ``zh-Hans`` → ``zh``, ``zh-Hant`` → ``zt``, ``pt-BR`` → ``pt`` (or ``pb``), ``prs`` → ``fa``;
    region and script subtags are dropped otherwise (``es-419`` → ``es``).
    """
    lowered = tag.strip().replace("_", "-").lower()
    if lowered in _BCP47_TO_ARGOS:
        return _BCP47_TO_ARGOS[lowered]
    primary = lowered.split("-")[0]
    if primary == "zh":  # zh-Hant-XX and friends
        return ("zt",) if "-hant" in lowered else ("zh",)
    return _BCP47_TO_ARGOS.get(primary, (primary,))


def to_argos_code(tag: str) -> str:
    """The preferred Argos code for a BCP 47 tag."""
    return argos_codes(tag)[0]


def to_bcp47(code: str) -> str:
    """The BCP 47 tag for an Argos code (``zt`` → ``zh-Hant``)."""
    return _ARGOS_TO_BCP47.get(code, code)


@dataclass
class InstallReport:
    """What ``gateway translate install LANG`` did: packages installed (``"en→es 1.9"``),
    routes that were already possible, and what could not be installed (with the reason)."""

    language: str
    installed: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class InstalledPackage(NamedTuple):
    """An installed Argos package: source and target as BCP 47 tags, and its version."""

    from_code: str
    to_code: str
    version: str


class _PackageInfo(NamedTuple):
    from_code: str  # Argos codes
    to_code: str
    version: str
    path: Path


def packages_dir(data_dir: Path | str) -> Path:
    """Where the engine keeps its packages."""
    return Path(data_dir) / "packages"


def _scan(directory: Path) -> list[_PackageInfo]:
    """Installed translate packages, read the way argostranslate reads them."""
    found: list[_PackageInfo] = []
    if not directory.is_dir():
        return found
    for folder in sorted(directory.iterdir()):
        metadata_path = folder / "metadata.json"
        if not folder.is_dir() or not metadata_path.is_file():
            continue
        try:
            metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("skipping Argos package %s: unreadable metadata.json", folder.name)
            continue
        if metadata.get("type", "translate") != "translate":
            continue
        from_code, to_code = metadata.get("from_code"), metadata.get("to_code")
        if isinstance(from_code, str) and isinstance(to_code, str):
            version = str(metadata.get("package_version", ""))
            found.append(_PackageInfo(from_code, to_code, version, folder))
    return found


def installed_packages(data_dir: Path | str) -> list[InstalledPackage]:
    """Every installed translate package of the engine whose data folder is ``data_dir``."""
    return [
        InstalledPackage(to_bcp47(p.from_code), to_bcp47(p.to_code), p.version)
        for p in _scan(packages_dir(data_dir))
    ]


def _read_package_metadata(path: Path) -> tuple[str, dict[str, Any]]:
    """Validate an ``.argosmodel`` zip; return its top-level folder and its metadata."""
    if not zipfile.is_zipfile(path):
        raise TranslationError(f"{path.name}: not an Argos package (not a zip archive)")
    with zipfile.ZipFile(path) as archive:
        names = [name for name in archive.namelist() if name.strip("/")]
        tops: set[str] = set()
        for name in names:
            parts = PurePosixPath(name).parts
            if name.startswith("/") or ".." in parts or "\\" in name or ":" in parts[0]:
                raise TranslationError(f"{path.name}: unsafe path in archive: {name!r}")
            tops.add(parts[0])
        if len(tops) != 1:
            raise TranslationError(
                f"{path.name}: an Argos package holds exactly one top-level folder, found {len(tops)}"
            )
        top = tops.pop()
        if top in names:  # a single file, not a folder
            raise TranslationError(f"{path.name}: the top-level entry must be a folder")
        try:
            metadata = json.loads(archive.read(f"{top}/metadata.json").decode("utf-8"))
        except KeyError as exc:
            raise TranslationError(f"{path.name}: {top}/metadata.json is missing") from exc
        except ValueError as exc:
            raise TranslationError(f"{path.name}: metadata.json is not valid JSON") from exc
        members = set(names)
    if not isinstance(metadata, dict):
        raise TranslationError(f"{path.name}: metadata.json must hold an object")
    if metadata.get("type", "translate") != "translate":
        raise TranslationError(f"{path.name}: package type is {metadata.get('type')!r}, expected 'translate'")
    for key in ("from_code", "to_code"):
        value = metadata.get(key)
        if not isinstance(value, str) or not value.strip() or not value.isascii():
            raise TranslationError(f"{path.name}: metadata.json has no valid {key!r}")
    if not any(name.startswith(f"{top}/model/") for name in members):
        raise TranslationError(f"{path.name}: the package has no model/ folder")
    return top, metadata


def install_package(path: Path | str, data_dir: Path | str) -> tuple[str, str]:
    """Install an ``.argosmodel`` file into the engine data folder ``data_dir``.

    Validates the archive (one top-level folder, ``metadata.json`` of type ``translate`` with
    ``from_code`` and ``to_code``, a ``model/`` folder), replaces any package already installed
    for the same pair, installs with ``argostranslate.package.install_from_path`` and clears
    argostranslate's caches so the pair is usable at once. Returns ``(from, to)`` as BCP 47
    tags. Raises :class:`gateway.TranslationError` for a bad file.
    """
    source = Path(path)
    if not source.is_file():
        raise TranslationError(f"{source}: no such file")
    top, metadata = _read_package_metadata(source)
    from_code, to_code = metadata["from_code"], metadata["to_code"]
    directory = packages_dir(data_dir)
    with _runtime.activated(Path(data_dir)) as argos:
        for existing in _scan(directory):
            if (existing.from_code, existing.to_code) == (from_code, to_code) or (existing.path.name == top):
                shutil.rmtree(existing.path)
        if (directory / top).exists():
            shutil.rmtree(directory / top)
        argos.package.install_from_path(source)
        _runtime.clear_caches()
    log.info("installed Argos package %s→%s (%s)", from_code, to_code, top)
    return to_bcp47(from_code), to_bcp47(to_code)


class _ArgosRuntime:
    """The process-wide argostranslate module, imported lazily and pointed at one data folder.

    argostranslate keeps its package folder and its loaded models in module globals; every use
    goes through :meth:`activated`, which holds a lock, points it at the right folder and drops
    its caches when the folder or its contents changed.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._modules: Any = None
        self._active: Path | None = None
        self._fingerprint: tuple[Any, ...] | None = None

    def _import(self, data_dir: Path, settings: Mapping[str, Any]) -> Any:
        if self._modules is not None:
            return self._modules
        if "argostranslate" not in sys.modules:
            self._import_with_environment(data_dir, settings)
        import argostranslate.package
        import argostranslate.settings
        import argostranslate.translate

        self._modules = argostranslate
        return argostranslate

    @staticmethod
    def _import_with_environment(data_dir: Path, settings: Mapping[str, Any]) -> None:
        xdg = data_dir / "argos-home"
        wanted = {
            "ARGOS_PACKAGES_DIR": str(packages_dir(data_dir)),
            "XDG_DATA_HOME": str(xdg / "data"),
            "XDG_CONFIG_HOME": str(xdg / "config"),
            "XDG_CACHE_HOME": str(xdg / "cache"),
        }
        for key, variable in _ENVIRONMENT_SETTINGS.items():
            if settings.get(key) is not None:
                wanted[variable] = str(settings[key])
        saved = {key: os.environ.get(key) for key in wanted}
        os.environ.update(wanted)
        try:
            # Reads the environment now, once per process.
            import argostranslate.settings
            import argostranslate.translate  # noqa: F401
        finally:
            # The rest of the gateway keeps its own environment.
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def clear_caches(self) -> None:
        """Forget loaded languages and models (after packages were added or removed)."""
        argos = self._modules
        if argos is None:
            return
        argos.translate.get_installed_languages.cache_clear()
        argos.translate.installed_translates.clear()
        self._fingerprint = None

    @contextmanager
    def activated(self, data_dir: Path, settings: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Hold the lock with argostranslate pointed at ``data_dir``; yield the package."""
        with self._lock:
            argos = self._import(data_dir, settings or {})
            directory = packages_dir(data_dir)
            directory.mkdir(parents=True, exist_ok=True)
            directory = directory.resolve()
            if self._active != directory:
                argos.settings.package_data_dir = directory
                argos.settings.package_dirs = [directory]
                self._active = directory
                self.clear_caches()
            fingerprint = _fingerprint(directory)
            if fingerprint != self._fingerprint:
                self.clear_caches()
                self._fingerprint = fingerprint
            yield argos

    def translation(self, data_dir: Path, settings: Mapping[str, Any], pair: tuple[str, str]) -> Any:
        """The argostranslate translation object of one installed direct pair."""
        with self.activated(data_dir, settings) as argos:
            languages = {lang.code: lang for lang in argos.translate.get_installed_languages()}
            source, target = languages.get(pair[0]), languages.get(pair[1])
            found = source.get_translation(target) if source and target else None
            if found is None:
                raise TranslationError(f"no Argos package for {pair[0]}→{pair[1]}")
            return found


def _fingerprint(directory: Path) -> tuple[Any, ...]:
    """Changes whenever a package folder is added, removed or replaced."""
    entries = []
    for folder in sorted(directory.iterdir()):
        metadata = folder / "metadata.json"
        if metadata.is_file():
            entries.append((folder.name, metadata.stat().st_mtime_ns))
    return tuple(entries)


_runtime = _ArgosRuntime()


class ArgosEngine(TranslationEngine):
    """Offline translation with Argos Translate packages; pivots through English.

    Each :meth:`translate` call runs as one job in the engine's thread pool, whatever the
    number of texts; argostranslate itself batches the sentences of a text.
    """

    name = "argos"
    Settings: ClassVar[type[EngineSettings]] = ArgosSettings

    def __init__(self, context: EngineContext) -> None:
        super().__init__(context)
        settings = self.settings
        assert isinstance(settings, ArgosSettings)
        self.options = settings
        self.data_dir = Path(context.data_dir)
        self.pivot = to_argos_code(settings.pivot)
        self.workers = settings.workers
        self.executor: Executor | None = None
        self._listing: tuple[int, list[_PackageInfo]] | None = None

    # -- what is installed ----------------------------------------------------------------
    def available(self) -> bool:
        """Whether argostranslate and its runtime are importable (checked without importing)."""
        return all(
            importlib.util.find_spec(module) is not None
            for module in ("argostranslate", "ctranslate2", "sentencepiece")
        )

    def _installed(self) -> list[_PackageInfo]:
        directory = packages_dir(self.data_dir)
        try:
            stamp = directory.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        if self._listing is None or self._listing[0] != stamp:
            self._listing = (stamp, _scan(directory))
        return self._listing[1]

    def _direct_pairs(self) -> set[tuple[str, str]]:
        return {(p.from_code, p.to_code) for p in self._installed()}

    def language_pairs(self) -> list[tuple[str, str]]:
        """Installed pairs plus pivots through English, as BCP 47 tags."""
        direct = self._direct_pairs()
        pairs = set(direct)
        for source, middle in direct:
            if middle != self.pivot:
                continue
            for start, target in direct:
                if start == self.pivot and target != source:
                    pairs.add((source, target))
        return sorted((to_bcp47(s), to_bcp47(t)) for s, t in pairs)

    def route(self, source: str, target: str) -> list[tuple[str, str]] | None:
        """The Argos pairs to chain for ``source`` → ``target``: direct, else via the pivot.

        ``[]`` when both tags name the same Argos language; ``None`` when impossible.
        """
        direct = self._direct_pairs()
        sources, targets = argos_codes(source), argos_codes(target)
        for s in sources:
            for t in targets:
                if s == t:
                    return []
                if (s, t) in direct:
                    return [(s, t)]
        for s in sources:
            for t in targets:
                if (s, self.pivot) in direct and (self.pivot, t) in direct:
                    return [(s, self.pivot), (self.pivot, t)]
        return None

    def can_translate(self, source: str, target: str) -> bool:
        """Whether ``source`` → ``target`` is possible (codes mapped to Argos codes)."""
        return self.route(source, target) is not None

    def install(self, path: Path | str) -> str:
        """Install an ``.argosmodel`` into this engine's data folder; returns ``"en→es"``.

        Used by ``gateway translate install``; no network. Raises
        :class:`gateway.TranslationError` for a file that is not a valid package.
        """
        source, target = install_package(path, self.data_dir)
        self._listing = None
        return f"{source}→{target}"

    async def install_language(self, tag: str, *, source: str = "en", staff: str = "en") -> InstallReport:
        """Install from the package index what ``tag`` needs: ``source`` → ``tag`` (outgoing
        messages) and ``tag`` → ``staff`` (replies for the inbox), directly or through the pivot.

        Packages already installed at the index's version or newer are kept. Each download is
        checked (a valid package whose pair is the one the index announced) before it is
        installed, and every route is checked afterwards. Raises
        :class:`gateway.TranslationError` when the index cannot serve ``source`` → ``tag``
        (nothing is installed then), :class:`gateway.EngineUnavailableError` when the index
        or a package cannot be fetched.
        """
        report = InstallReport(tag)
        wanted: list[tuple[str, str]] = []
        for start, end in ((source, tag), (tag, staff)):
            if argos_codes(start)[0] == argos_codes(end)[0]:
                continue
            if self.route(start, end) is not None:
                report.present.append(f"{start}→{end}")
            else:
                wanted.append((start, end))
        if not wanted:
            return report
        url = self.options.index_url
        async with new_session() as session:
            entries = await fetch_index(url, session)
            routes = [(argos_codes(start), argos_codes(end)) for start, end in wanted]
            packages, impossible = plan_packages(entries, routes, self.pivot)
            offered = sorted({e.to_code for e in entries} | {e.from_code for e in entries})
            for (start, end), codes in zip(wanted, routes, strict=True):
                if (codes[0][0], codes[1][0]) not in impossible:
                    continue
                problem = (
                    f"the Argos package index {url} has no package for {start}→{end}, directly or "
                    f"through {self.pivot} (it offers: {', '.join(offered) or 'nothing'})"
                )
                if start == source and end == tag:
                    raise TranslationError(problem)
                report.warnings.append(problem + f"; replies in {tag} will not be translated")
            installed = {(p.from_code, p.to_code): p.version for p in self._installed()}
            with tempfile.TemporaryDirectory(prefix="argos-download-") as folder:
                for entry in packages:
                    have = installed.get(entry.pair)
                    if have is not None and version_key(have) >= version_key(entry.version):
                        report.present.append(f"{entry.from_code}→{entry.to_code} {have}")
                        continue
                    path = await download_package(entry, url, Path(folder), session)
                    _, metadata = await asyncio.to_thread(_read_package_metadata, path)
                    if (metadata["from_code"], metadata["to_code"]) != entry.pair:
                        raise TranslationError(
                            f"{path.name}: the package holds {metadata['from_code']}→"
                            f"{metadata['to_code']}, the index announced {entry.from_code}→{entry.to_code}"
                        )
                    await asyncio.to_thread(install_package, path, self.data_dir)
                    report.installed.append(f"{entry.from_code}→{entry.to_code} {entry.version}")
        self._listing = None
        for start, end in wanted:
            if self.route(start, end) is None and not any(f"{start}→{end}," in w for w in report.warnings):
                raise TranslationError(f"argos: {start}→{end} is still not possible after installing")
        return report

    async def describe(self, source: str = "en") -> EngineInfo:
        """Installed packages: the languages reachable from ``source``, directly or via the pivot."""
        languages = sorted({t for s, t in self.language_pairs() if s == source})
        codes = {tag: to_argos_code(tag) for tag in languages if to_argos_code(tag) != tag}
        packages = [f"{p.from_code}→{p.to_code} {p.version}" for p in self._installed()]
        return EngineInfo(
            languages=tuple(languages),
            codes=codes,
            licence="per package (see README.md in each package folder); argostranslate: MIT",
            source=str(packages_dir(self.data_dir)),
            notes=(f"packages: {', '.join(packages)}",) if packages else ("no packages installed",),
        )

    # -- translating ----------------------------------------------------------------------
    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """Translate a batch in one thread-pool job; raise TranslationError if impossible."""
        route = self.route(source, target)
        if route is None:
            raise TranslationError(
                f"argos: no package for {source}→{target} (nor via English)", reason="unsupported"
            )
        batch = list(texts)
        if not batch or not route:
            return batch
        if self.executor is None:
            self.executor = ThreadPoolExecutor(self.workers, thread_name_prefix="argos")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._translate_batch, batch, route)

    def _translate_batch(self, texts: list[str], route: list[tuple[str, str]]) -> list[str]:
        """Run in the pool: each leg of the route over the whole batch."""
        results = texts
        for pair in route:
            try:
                translation = _runtime.translation(self.data_dir, self.options.model_dump(), pair)
                results = [_translate_one(translation, text) for text in results]
            except TranslationError:
                raise
            except Exception as exc:  # argostranslate raises bare exceptions
                raise TranslationError(f"argos {pair[0]}→{pair[1]} failed: {exc}") from exc
        return results

    def close(self) -> None:
        """Stop the thread pool (the core may call this at shutdown)."""
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None


def _translate_one(translation: Any, text: str) -> str:
    """One text, its surrounding whitespace kept (engines strip it)."""
    core = text.strip()
    if not core:
        return text
    start = len(text) - len(text.lstrip())
    return text[:start] + translation.translate(core) + text[start + len(core) :]


@hookimpl
def gateway_translation_engines() -> list[type]:
    """The engines this plugin provides."""
    return [ArgosEngine]
