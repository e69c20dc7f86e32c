"""`gateway translate install LANG`: Argos packages fetched from a package index (here a local
mirror served over HTTP, or a folder), the pairs a language needs installed (through English
when there is no direct package), checked, and usable at once. No other network is reached."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from gateway_plugins.argos_index import IndexEntry, parse_index, plan_packages
from gateway_plugins.argos_translate import ArgosEngine, installed_packages

from gateway import EngineContext, EngineUnavailableError, TranslationError
from gateway.testing.argos_package import build_test_package, write_argos_index
from gateway.testing.folder_server import FolderServer
from gateway.testing.harness import write_config


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection to a host other than this machine fails the test."""
    connect = socket.socket.connect

    def local_only(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if sock.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1"):
            raise AssertionError(f"network access attempted: {host}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)


@pytest.fixture(scope="session")
def index_packages(
    argos_packages: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The shared test packages plus es→en."""
    folder = tmp_path_factory.mktemp("argos-index-packages")
    return {**argos_packages, "es-en": build_test_package(folder, "es", "en", {"▁hola": "▁hello"})}


@pytest.fixture
def mirror(tmp_path: Path, index_packages: dict[str, Path]) -> FolderServer:
    """An index mirror served over HTTP: en→es, es→en, fr→en, en→ar, en→zt."""
    folder = tmp_path / "mirror"
    write_argos_index(folder, [index_packages[k] for k in ("en-es", "es-en", "fr-en", "en-ar", "en-zt")])
    server = FolderServer(folder).start()
    yield server
    server.stop()


def _config(tmp_path: Path, index_url: str, **translation: Any) -> Path:
    settings = {"engines": ["argos"], "engine_settings": {"argos": {"index_url": index_url}}, **translation}
    return write_config(tmp_path / "gw", translation=settings)


def _packages(tmp_path: Path) -> list[tuple[str, str]]:
    data_dir = tmp_path / "gw" / "data" / "translation" / "argos"
    return sorted((p.from_code, p.to_code) for p in installed_packages(data_dir))


def test_install_by_code_fetches_both_directions_and_translates(tmp_path, cli, mirror):
    config = _config(tmp_path, f"{mirror.url}/index.json")
    result = cli(["translate", "install", "es"], config)
    assert result.exit_code == 0, result.output
    assert "installed en→es 1.0" in result.stdout and "installed es→en 1.0" in result.stdout
    assert _packages(tmp_path) == [("en", "es"), ("es", "en")]
    assert mirror.requested == ["/index.json", "/translate-en_es.argosmodel", "/translate-es_en.argosmodel"]

    languages = json.loads(cli(["translate", "languages", "--json"], config).stdout)
    (argos,) = languages["engines"]
    assert {(p["source"], p["target"]) for p in argos["pairs"]} == {("en", "es"), ("es", "en")}
    assert argos["languages"] == ["es"]

    again = cli(["translate", "install", "es"], config)
    assert again.exit_code == 0
    assert "already installed: en→es" in again.stdout and "nothing to install" in again.stdout
    assert len(mirror.requested) == 3  # nothing fetched, not even the index


async def test_installed_packages_translate_at_once(tmp_path, mirror):
    settings = {"index_url": f"{mirror.url}/index.json", "threads": 1}
    engine = ArgosEngine(EngineContext(tmp_path / "argos", settings))
    try:
        report = await engine.install_language("es")
        assert report.installed == ["en→es 1.0", "es→en 1.0"] and report.warnings == []
        assert await engine.translate(["Hello world"], "en", "es") == ["Hello order"]
        assert await engine.translate(["hola amigo"], "es", "en") == ["hello amigo"]
    finally:
        engine.close()


def test_a_language_without_a_direct_package_goes_through_english(tmp_path, cli, mirror):
    config = _config(tmp_path, f"{mirror.url}/index.json", source_language="fr")
    result = cli(["translate", "install", "es"], config)
    assert result.exit_code == 0, result.output
    # fr→es: fr→en then en→es; es→en for replies (staff language en).
    assert _packages(tmp_path) == [("en", "es"), ("es", "en"), ("fr", "en")]


def test_tags_map_to_argos_codes(tmp_path, cli, mirror):
    config = _config(tmp_path, f"{mirror.url}/index.json")
    result = cli(["translate", "install", "zh-Hant"], config)
    assert result.exit_code == 0, result.output
    assert "installed en→zt 1.0" in result.stdout
    assert "no package for zh-Hant→en" in " ".join(result.stderr.split())  # replies: said so
    assert _packages(tmp_path) == [("en", "zh-Hant")]  # as BCP 47 tags


def test_a_language_the_index_lacks_is_refused_and_nothing_installed(tmp_path, cli, mirror):
    config = _config(tmp_path, f"{mirror.url}/index.json")
    result = cli(["translate", "install", "so"], config)
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert f"the Argos package index {mirror.url}/index.json has no package for en→so" in message
    assert "it offers: ar, en, es, fr, zt" in message
    assert _packages(tmp_path) == []
    assert mirror.requested == ["/index.json"]


def test_an_air_gapped_mirror_in_a_folder_works_without_http(tmp_path, cli, index_packages):
    index = write_argos_index(tmp_path / "usb", [index_packages["en-es"], index_packages["es-en"]])
    for url in (str(index), index.as_uri()):
        config = _config(tmp_path, url)
        result = cli(["translate", "install", "es-MX"], config)
        assert result.exit_code == 0, result.output
        assert _packages(tmp_path) == [("en", "es"), ("es", "en")]


def test_an_unreachable_index_names_its_url_and_the_setting(tmp_path, cli):
    from gateway.testing.fakes import free_port

    url = f"http://127.0.0.1:{free_port()}/index.json"
    result = cli(["translate", "install", "es"], _config(tmp_path, url))
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert f"Argos package index {url}: unreachable" in message
    assert "translation.engine_settings.argos.index_url" in message


def test_a_download_that_is_not_what_the_index_announced_is_refused(tmp_path, cli, index_packages):
    folder = tmp_path / "mirror"
    write_argos_index(folder, [index_packages["en-ar"], index_packages["es-en"]])
    entries = json.loads((folder / "index.json").read_text())
    entries[0]["to_code"] = "es"  # announces en→es, serves the en→ar package
    (folder / "index.json").write_text(json.dumps(entries))
    with FolderServer(folder) as server:
        result = cli(["translate", "install", "es"], _config(tmp_path, f"{server.url}/index.json"))
    assert result.exit_code == 2
    assert "the package holds en→ar, the index announced en→es" in " ".join(result.output.split())
    assert _packages(tmp_path) == []


def test_a_bad_language_code_or_a_missing_file_is_a_clear_error(tmp_path, cli, mirror):
    config = _config(tmp_path, f"{mirror.url}/index.json")
    bad = cli(["translate", "install", "somali"], config)
    assert bad.exit_code == 2 and "somali" in bad.output
    missing = cli(["translate", "install", str(tmp_path / "nope.argosmodel")], config)
    assert missing.exit_code == 2 and "no such file" in missing.output
    both = cli(["translate", "install", "es", "--model", str(tmp_path)], config)
    assert both.exit_code == 2
    assert mirror.requested == []


def test_the_index_format_and_the_plan():
    entries = parse_index(
        [
            {"from_code": "en", "to_code": "es", "package_version": "1.0", "links": ["a"]},
            {"from_code": "en", "to_code": "es", "package_version": "1.9", "links": ["b"]},
            {"type": "sbd", "from_code": "en", "to_code": "en", "links": []},
            {"from_code": "fr", "to_code": "en", "package_version": "1.2", "links": ["c"]},
        ],
        "index.json",
    )
    assert len(entries) == 3
    packages, impossible = plan_packages(entries, [(("fr",), ("es",)), (("es",), ("en",))], "en")
    assert [(p.pair, p.version) for p in packages] == [(("fr", "en"), "1.2"), (("en", "es"), "1.9")]
    assert impossible == [("es", "en")]
    with pytest.raises(TranslationError, match="not an Argos package index"):
        parse_index({"packages": []}, "index.json")
    assert IndexEntry("en", "es", "1.0", ()).pair == ("en", "es")


async def test_download_errors_are_unavailable_not_crashes(tmp_path):
    from gateway_plugins.argos_index import download_package, new_session

    entry = IndexEntry("en", "es", "1.0", ("ipfs://only",))
    async with new_session() as session:
        with pytest.raises(EngineUnavailableError, match="no http"):
            await download_package(entry, "http://127.0.0.1:9/index.json", tmp_path, session)
