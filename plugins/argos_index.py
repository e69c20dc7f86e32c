"""The Argos Translate package index: read it, plan which packages a language needs, fetch them.

The index (``argosopentech/argospm-index``, ``index.json``) is a JSON list of packages::

    [{"code": "translate-en_es", "type": "translate", "from_code": "en", "to_code": "es",
      "from_name": "English", "to_name": "Spanish", "package_version": "1.9",
      "argos_version": "1.9.0", "links": ["https://argos-net.com/v1/translate-en_es-1_9.argosmodel"]}]

Its URL is the ``index_url`` setting, so an air-gapped district can mirror the index and the
packages on its own server (or a folder: ``file:///srv/argos/index.json`` or a plain path).
Links may be absolute (``https://``, ``file://``) or relative to the index; ``ipfs://`` links are
skipped. Nothing here imports argostranslate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import aiohttp

from gateway import EngineUnavailableError, TranslationError

__all__ = [
    "DEFAULT_INDEX_URL",
    "IndexEntry",
    "download_package",
    "fetch_index",
    "new_session",
    "parse_index",
    "plan_packages",
    "version_key",
]

log = logging.getLogger("gateway.translation.argos")

DEFAULT_INDEX_URL = "https://raw.githubusercontent.com/argosopentech/argospm-index/main/index.json"
"""The public Argos package index."""

_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=120)
_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One translate package of the index (Argos codes)."""

    from_code: str
    to_code: str
    version: str
    links: tuple[str, ...]
    from_name: str = ""
    to_name: str = ""

    @property
    def pair(self) -> tuple[str, str]:
        """``(from_code, to_code)``."""
        return (self.from_code, self.to_code)


def version_key(version: str) -> tuple[int, ...]:
    """``"1.9.0"`` → ``(1, 9, 0)``; unparseable parts count as 0."""
    parts = []
    for part in str(version).split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _is_local(url: str) -> bool:
    return url.startswith("file://") or "://" not in url


def _local_path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path)) if url.startswith("file://") else Path(url)


async def _read(url: str, session: aiohttp.ClientSession) -> bytes:
    if _is_local(url):
        path = _local_path(url)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise EngineUnavailableError(
                f"Argos package index {path}: cannot read it ({exc.strerror})"
            ) from None
    try:
        async with session.get(url) as response:
            if response.status != 200:
                raise EngineUnavailableError(
                    f"Argos package index {url}: the server answered HTTP {response.status}"
                )
            return await response.read()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise EngineUnavailableError(
            f"Argos package index {url}: unreachable ({type(exc).__name__}: {exc}); set "
            "translation.engine_settings.argos.index_url to a mirror the gateway can reach"
        ) from None


def parse_index(data: Any, url: str) -> list[IndexEntry]:
    """The translate packages of a parsed index; raise for a document that is not one."""
    if not isinstance(data, list):
        raise TranslationError(f"{url}: not an Argos package index (expected a JSON list of packages)")
    entries = []
    for position, item in enumerate(data):
        if not isinstance(item, dict):
            raise TranslationError(f"{url}: package #{position + 1} is not an object")
        if item.get("type", "translate") != "translate":
            continue  # sentence boundary packages and other kinds
        from_code, to_code = item.get("from_code"), item.get("to_code")
        links = item.get("links", [])
        if not isinstance(from_code, str) or not isinstance(to_code, str) or not isinstance(links, list):
            raise TranslationError(
                f"{url}: package #{position + 1} lacks from_code, to_code or a links list"
            )
        entries.append(
            IndexEntry(
                from_code=from_code,
                to_code=to_code,
                version=str(item.get("package_version", "0")),
                links=tuple(str(link) for link in links),
                from_name=str(item.get("from_name", "")),
                to_name=str(item.get("to_name", "")),
            )
        )
    return entries


async def fetch_index(url: str, session: aiohttp.ClientSession) -> list[IndexEntry]:
    """Read and parse the index at ``url`` (http(s), ``file://`` or a path)."""
    raw = await _read(url, session)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise TranslationError(f"{url}: not an Argos package index (not valid JSON)") from None
    return parse_index(data, url)


def _newest(entries: Iterable[IndexEntry]) -> dict[tuple[str, str], IndexEntry]:
    best: dict[tuple[str, str], IndexEntry] = {}
    for entry in entries:
        current = best.get(entry.pair)
        if current is None or version_key(entry.version) > version_key(current.version):
            best[entry.pair] = entry
    return best


def plan_packages(
    entries: Sequence[IndexEntry],
    routes: Sequence[tuple[Sequence[str], Sequence[str]]],
    pivot: str,
) -> tuple[list[IndexEntry], list[tuple[str, str]]]:
    """The packages that make each route possible: a direct package, else two through ``pivot``.

    ``routes`` holds ``(source codes, target codes)``: the Argos codes that can stand for each
    side, preferred first. Returns the packages (each once, newest version) and the routes the
    index cannot serve, as ``(source, target)`` of their preferred codes.
    """
    newest = _newest(entries)
    chosen: dict[tuple[str, str], IndexEntry] = {}
    impossible: list[tuple[str, str]] = []
    for sources, targets in routes:
        found: list[IndexEntry] | None = None
        for s in sources:
            for t in targets:
                if s == t:
                    found = []
                elif (s, t) in newest:
                    found = [newest[(s, t)]]
                if found is not None:
                    break
            if found is not None:
                break
        if found is None:
            for s in sources:
                for t in targets:
                    if (s, pivot) in newest and (pivot, t) in newest:
                        found = [newest[(s, pivot)], newest[(pivot, t)]]
                        break
                if found is not None:
                    break
        if found is None:
            impossible.append((sources[0], targets[0]))
            continue
        for entry in found:
            chosen[entry.pair] = entry
    return list(chosen.values()), impossible


async def download_package(
    entry: IndexEntry, index_url: str, destination: Path, session: aiohttp.ClientSession
) -> Path:
    """Fetch ``entry`` into ``destination`` (a folder); try its links in order.

    Relative links are resolved against the index URL; ``ipfs://`` and other schemes are
    skipped. Raise :class:`gateway.EngineUnavailableError` when no link works.
    """
    await asyncio.to_thread(destination.mkdir, parents=True, exist_ok=True)
    target = destination / f"translate-{entry.from_code}_{entry.to_code}.argosmodel"
    problems: list[str] = []
    for link in entry.links:
        url = _resolve(link, index_url)
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https", "file", ""):
            continue
        try:
            if _is_local(url):
                await asyncio.to_thread(shutil.copyfile, _local_path(url), target)
            else:
                await _stream(url, target, session)
        except (OSError, aiohttp.ClientError, TimeoutError, EngineUnavailableError) as exc:
            problems.append(f"{url}: {exc}")
            await asyncio.to_thread(target.unlink, missing_ok=True)
            continue
        log.info("downloaded Argos package %s→%s %s", entry.from_code, entry.to_code, entry.version)
        return target
    detail = "; ".join(problems) if problems else "no http(s) or file link"
    raise EngineUnavailableError(
        f"Argos package {entry.from_code}→{entry.to_code} {entry.version}: could not download it ({detail})"
    )


def _resolve(link: str, index_url: str) -> str:
    """An absolute URL or path for ``link`` (relative links are relative to the index)."""
    if "://" in link:
        return link
    if _is_local(index_url):
        return str(_local_path(index_url).parent / link)
    return urljoin(index_url, link)


async def _stream(url: str, target: Path, session: aiohttp.ClientSession) -> None:
    """Download ``url`` into ``target`` through a temporary file (no half file is ever left)."""
    async with session.get(url) as response:
        if response.status != 200:
            raise EngineUnavailableError(f"HTTP {response.status}")
        partial = target.with_name(target.name + ".part")
        out = await asyncio.to_thread(partial.open, "wb")
        try:
            async for chunk in response.content.iter_chunked(_CHUNK):
                await asyncio.to_thread(out.write, chunk)
        finally:
            await asyncio.to_thread(out.close)
        try:
            await asyncio.to_thread(partial.replace, target)
        finally:
            await asyncio.to_thread(partial.unlink, missing_ok=True)


def new_session() -> aiohttp.ClientSession:
    """An HTTP session for index and package downloads (long reads allowed)."""
    return aiohttp.ClientSession(timeout=_TIMEOUT)
