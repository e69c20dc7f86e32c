"""Templates on a budget: a hostile template ends as a clean error naming the template and the
line, through `gateway preview` and `gateway broadcast send`, with nothing written to the outbox."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.version import Version
from sqlalchemy import func, select

from gateway.errors import TemplateError
from gateway.rendering.renderer import RenderBudget, TemplateRenderer
from gateway.resources import SHIPPED_LOCALES
from gateway.storage.models import Broadcast, OutboxMessage
from gateway.testing.harness import open_gateway, upcoming_example, write_config
from gateway.translation.catalogs import CatalogSet

HEADER = (
    "family_id,guardian_name,language,phone,email,telegram_chat_id,preferred_channel,"
    "school,grade,student_name,timezone,tags\n"
)
FAMILIES = (
    "F1,Maria Lopez,es,(913) 555-0101,,,sms,Lincoln,6,Ana Lopez,,\n"
    "F2,John Smith,en,,john@example.net,,email,Lincoln,6,Sam Smith,,\n"
)

#: (template source, what the error says, the line it names). Each one would run until
#: killed, eat the machine's memory or escape as a traceback without the budget.
HOSTILE = [
    pytest.param(
        "{% block sms %}\n{% for i in range(1000000) %}x{% endfor %}{% endblock %}",
        "Range too big",
        2,
        id="range-1000000",
    ),
    pytest.param(
        "{% block sms %}\n\n{% for a in event.description %}{% for b in event.description %}"
        "{% for c in event.description %}{% endfor %}{% endfor %}{% endfor %}{% endblock %}",
        "rendering took longer than",
        3,
        id="nested-loops-over-a-long-string",
    ),
    pytest.param(
        "{% block sms %}\n{% for a in event.description %}{{ event.description }}{% endfor %}"
        "{% endblock %}",
        "over 200,000 characters",
        2,
        id="output-over-the-cap",
    ),
    pytest.param("{% block sms %}{{ 'a' * 10**9 }}{% endblock %}", "1,000,000,000", 1, id="string-times-1e9"),
    pytest.param("{% block sms %}\n{{ 2 ** 1000000 }}{% endblock %}", "integer over", 2, id="huge-power"),
    pytest.param(
        "{% block sms %}{{ '{:>999999999}'.format(event.title) }}{% endblock %}",
        "format field width",
        1,
        id="format-width",
    ),
    pytest.param(
        "{% block sms %}{{ '%999999999s' % event.title }}{% endblock %}", "printf field width", 1, id="printf"
    ),
    pytest.param(
        "{% block sms %}\n\n\n{{ event.title|center(999999999) }}{% endblock %}", "center", 4, id="center"
    ),
    pytest.param(
        "{% block sms %}{% set ns = namespace(s=event.title) %}\n"
        "{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}{% endblock %}",
        "concatenation",
        2,
        id="doubling-in-a-loop",
    ),
    pytest.param(
        "{% block sms %}{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
        "{% endmacro %}\n{{ f(60) }}{% endblock %}",
        "rendering took longer than",
        1,
        id="exponential-macro",
    ),
    pytest.param(
        "{% block sms %}{% macro f(n) %}{{ f(n) }}{% endmacro %}\n{{ f(1) }}{% endblock %}",
        "RecursionError",
        1,
        id="recursion",
    ),
    pytest.param(
        "{% block sms %}\n{% set l = [] %}{{ l.append(1) }}{% endblock %}",
        "refused by the template sandbox",
        2,
        id="mutating-a-list",
    ),
]


def _setup(tmp_path: Path, source: str, cli: Any) -> tuple[Path, Path]:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "hostile.j2").write_text(source, encoding="utf-8")
    config = write_config(
        tmp_path / "gw",
        paths={"data_dir": str(tmp_path / "gw" / "data"), "templates": str(templates)},
        rendering={"time_limit_seconds": 0.5, "max_output_characters": 200_000},
    )
    families = tmp_path / "families.csv"
    families.write_text(HEADER + FAMILIES, encoding="utf-8")
    assert cli(["families", "import", str(families)], config).exit_code == 0
    event = yaml.safe_load(upcoming_example(tmp_path / "example").read_text(encoding="utf-8"))
    # 1,920 characters: within the event's 2,000-character limit, long enough that a loop over
    # it cubed (7 billion steps) or its square printed (3.7 million characters) hits the budget.
    event["description"] = "Stories and songs for the whole family. " * 48
    event_file = tmp_path / "event.yaml"
    event_file.write_text(yaml.safe_dump(event, allow_unicode=True), encoding="utf-8")
    return config, event_file


def _written(config: Path) -> tuple[int, int]:
    async def go() -> tuple[int, int]:
        async with open_gateway(config, start=False) as gw, gw.db.session() as session:
            broadcasts = await session.scalar(select(func.count(Broadcast.id)))
            messages = await session.scalar(select(func.count(OutboxMessage.id)))
            return int(broadcasts or 0), int(messages or 0)

    return asyncio.run(go())


@pytest.mark.parametrize(("source", "reason", "line"), HOSTILE)
def test_hostile_template_is_a_clean_error_and_nothing_is_written(
    tmp_path: Path, cli: Any, source: str, reason: str, line: int
) -> None:
    config, event_file = _setup(tmp_path, source, cli)
    where = f"hostile:{line}:"
    preview = cli(["preview", "hostile", "--event", str(event_file), "--channel", "sms", "--json"], config)
    assert preview.exit_code == 2
    assert where in preview.output and reason in preview.output, preview.output
    assert "Traceback" not in preview.output
    send = cli(["broadcast", "send", "hostile", "--event", str(event_file), "--json"], config)
    assert send.exit_code == 2
    assert where in send.output and reason in send.output, send.output
    assert "Traceback" not in send.output
    assert _written(config) == (0, 0)


def test_a_template_within_the_budget_still_renders(tmp_path: Path, cli: Any) -> None:
    source = (
        "{% block sms %}{{ event.title }}: {% for i in range(3) %}{{ i }}{% endfor %} "
        "{{ '%03d' % 7 }} {{ '{:>3}'.format(1) }} {{ 'ab' * 2 }} {{ event.title|center(30)|trim }}"
        "{% endblock %}"
    )
    config, event_file = _setup(tmp_path, source, cli)
    result = cli(["preview", "hostile", "--event", str(event_file), "--channel", "sms", "--json"], config)
    assert result.exit_code == 0, result.output
    title = yaml.safe_load(event_file.read_text(encoding="utf-8"))["title"]
    assert json.loads(result.stdout)[0]["body"] == f"{title}: 012 007   1 abab {title}"


def test_installed_jinja2_has_the_sandbox_fixes() -> None:
    # 3.1.5 and 3.1.6 closed sandbox escapes through str.format and the |attr filter.
    assert Version(version("jinja2")) >= Version("3.1.6")


def _renderer(tmp_path: Path, source: str, **budget: Any) -> TemplateRenderer:
    (tmp_path / "t.j2").write_text(source, encoding="utf-8")
    return TemplateRenderer(tmp_path, CatalogSet(SHIPPED_LOCALES), budget=RenderBudget(**budget))


def test_everything_built_in_one_render_is_capped_in_total(tmp_path: Path) -> None:
    # Each value is under the cap, but a {% set %} block collecting them would not be.
    renderer = _renderer(
        tmp_path,
        "{% block sms %}{% set x %}{% for i in range(100000) %}{{ 'x' * 50000 }}{% endfor %}"
        "{% endset %}{{ x|length }}{% endblock %}",
        max_output=100_000,
    )
    with pytest.raises(TemplateError) as caught:
        renderer.render("t", "sms", "en", {})
    assert "built more than 2,000,000 characters" in str(caught.value)
    assert caught.value.template == "t" and caught.value.line == 1


def test_every_runtime_failure_names_template_and_line(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path, "{% block sms %}\n\n{{ 1 / 0 }}{% endblock %}")
    with pytest.raises(TemplateError) as caught:
        renderer.render("t", "sms", "en", {})
    assert str(caught.value) == "t:3: ZeroDivisionError: division by zero"
