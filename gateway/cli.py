"""The ``gateway`` command (Typer + Rich). Every command takes ``--config`` (default
``./config.yaml``, or ``$GATEWAY_CONFIG``); every listing takes ``--json``."""

from __future__ import annotations

import asyncio
import json
import os
import select
import sys
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from gateway import event_loop
from gateway.errors import GatewayError
from gateway.storage.db import database_unavailable

__all__ = ["CliState", "app", "main"]

T = TypeVar("T")
console = Console()
# Errors and warnings are not wrapped: a path or a key in them stays whole, whatever the width.
err_console = Console(stderr=True, soft_wrap=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="GATEWAY_CONFIG", help="Config file (default ./config.yaml)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class CliState:
    """What commands (and plugins adding commands) share: the config path and a gateway opener.

    A plugin's command gets it as ``typer.Context.obj`` and opens the gateway with
    ``async with ctx.obj.gateway() as gw: ...``.
    """

    def __init__(self, config: Path | None = None) -> None:
        self.config = config

    def load(self, config: Path | None = None) -> Any:
        """The validated config."""
        from gateway.config import load_config

        return load_config(config or self.config)

    @asynccontextmanager
    async def gateway(self, config: Path | None = None, *, migrate: bool = True) -> Any:
        """Open a Gateway (schema migrated), closed on exit."""
        from gateway.app import Gateway

        gw = Gateway(self.load(config))
        try:
            if migrate:
                await gw.migrate()
            yield gw
        finally:
            await gw.close()


state = CliState()
app = typer.Typer(
    name="gateway",
    help="Multilingual family-engagement messaging gateway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
families_app = typer.Typer(help="Import and list families.", no_args_is_help=True)
broadcast_app = typer.Typer(help="Send broadcasts and follow them.", no_args_is_help=True)
survey_app = typer.Typer(help="Surveys and RSVPs.", no_args_is_help=True)
translate_app = typer.Typer(help="Machine translation and the translation memory.", no_args_is_help=True)
plugins_app = typer.Typer(help="Installed plugins.", no_args_is_help=True)
sandbox_app = typer.Typer(
    help="The sandbox channel: inject replies, read what it sent.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
event_app = typer.Typer(help="Events: who is coming.", no_args_is_help=True)
inbox_app = typer.Typer(
    help="Free-text replies and unmatched answers, urgent first, with translations.",
    invoke_without_command=True,
)
staff_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
app.add_typer(families_app, name="families")
app.add_typer(broadcast_app, name="broadcast")
app.add_typer(survey_app, name="survey")
app.add_typer(translate_app, name="translate")
app.add_typer(plugins_app, name="plugins")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(db_app, name="db")
app.add_typer(staff_app, name="staff")
app.add_typer(inbox_app, name="inbox")
app.add_typer(event_app, name="event")


@app.callback()
def _root(ctx: typer.Context, config: ConfigOpt = None) -> None:
    state.config = config
    ctx.obj = state


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; turn gateway errors into a clear message and exit status 2."""
    try:
        return event_loop.run(coro)
    except GatewayError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        raise typer.Exit(2) from None
    except (LookupError, FileNotFoundError) as exc:
        err_console.print(f"[bold red]error:[/] {exc.args[0] if exc.args else exc}", highlight=False)
        raise typer.Exit(2) from None
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        err_console.print(
            f"[bold red]error:[/] the database is busy or unreachable ({type(exc).__name__}); "
            "try again (a broadcast or survey is saved whole or not at all)",
            highlight=False,
        )
        raise typer.Exit(3) from None


def write_stdout(text: str) -> None:
    """Write ``text`` to standard output whole, however slowly a pipe's reader takes it.

    Written to the file descriptor until every byte is taken: through the text stream, a large
    write into a pipe whose reader lags was cut at the pipe's 64 KiB after the event loop had
    run (exit code 0, the rest lost) — a district script piping ``--json`` would read a
    truncated list."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test runner's capture)
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    view = memoryview(text.encode("utf-8"))
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:  # the descriptor was left non-blocking: wait until it drains
            select.select([], [fd], [])


def emit_json(data: Any) -> None:
    """Print JSON (UTF-8, not ASCII-escaped)."""
    write_stdout(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def with_gateway(config: Path | None, fn: Callable[[Any], Awaitable[T]]) -> T:
    """Open the gateway, call ``fn(gw)``, close it."""

    async def go() -> T:
        async with state.gateway(config) as gw:
            return await fn(gw)

    return run(go())


# -- init / db -------------------------------------------------------------------------------
@app.command()
def init(
    config: ConfigOpt = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing config file.")] = False,
) -> None:
    """Write config.yaml from the example, the example files next to it, and create the database."""
    from gateway.resources import EXAMPLE_CONFIG

    target = config or Path("config.yaml")
    if target.exists() and not force:
        console.print(f"{target} exists; keeping it (use --force to overwrite)")
    else:
        target.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
        console.print(f"wrote {target}")
    _write_examples(target.parent / "examples")

    async def go(gw: Any) -> None:
        console.print(f"database ready: {_safe_url(gw.config.database_url)}")

    with_gateway(target, go)


def _write_examples(folder: Path) -> None:
    """Copy the shipped example families, event and survey to ``folder`` (never overwriting);
    the example event is moved two weeks ahead, so it can be sent as it is."""
    from gateway.domain.events import upcoming_event_file
    from gateway.resources import SHIPPED_EXAMPLES

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("families.csv", "reading-workshop.yaml", "transport-survey.yaml"):
        path = folder / name
        if path.exists():
            continue
        if name == "reading-workshop.yaml":
            upcoming_event_file(SHIPPED_EXAMPLES / name, path)
        else:
            path.write_bytes((SHIPPED_EXAMPLES / name).read_bytes())
        written.append(name)
    if written:
        console.print(f"wrote {folder}/: {', '.join(written)}", highlight=False)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Apply database migrations."""

    async def go() -> None:
        from gateway.storage.migrate import current, upgrade_async

        cfg = state.load(config)
        await upgrade_async(cfg.database_url)
        revision = await asyncio.to_thread(current, cfg.database_url)
        console.print(f"database at revision {revision}: {_safe_url(cfg.database_url)}")

    run(go())


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- families --------------------------------------------------------------------------------
@families_app.command("import")
def families_import(
    file: Annotated[Path, typer.Argument(help="CSV with the families columns.", exists=True, dir_okay=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; write nothing.")] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Import families from CSV: per-row errors, valid rows imported, re-import idempotent."""
    from gateway.families import import_families

    async def go(gw: Any) -> dict[str, Any]:
        return await import_families(gw, file, dry_run=dry_run, progress=not as_json)

    report = with_gateway(config, go)
    if as_json:
        emit_json(report)
    else:
        verb = "would import" if dry_run else "imported"
        console.print(
            f"{file}: {verb} {report['families_imported']} new and {report['families_updated']} "
            f"updated families ({report['students']} students); {len(report['errors'])} errors, "
            f"{len(report['warnings'])} warnings"
        )
        for problem in report["errors"]:
            console.print(
                f"  [red]{file}:{problem['line']}[/] {problem['column'] or ''}: {problem['reason']}",
                highlight=False,
            )
        for problem in report["warnings"][:20]:
            console.print(f"  [yellow]{file}:{problem['line']}[/] {problem['reason']}", highlight=False)
    if report["errors"] and not report["families_imported"] and not report["families_updated"]:
        raise typer.Exit(1)


@families_app.command("list")
def families_list(
    school: Annotated[str | None, typer.Option(help="Only families with a student at this school.")] = None,
    language: Annotated[str | None, typer.Option(help="Only families with a guardian reading this.")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """List families with guardians, endpoints and students."""
    from gateway.families import endpoint_details
    from gateway.storage.families import FamilyRepository, family_as_dict

    async def go(gw: Any) -> list[dict[str, Any]]:
        async with gw.db.session() as session:
            families = await FamilyRepository(session).list(school=school, language=language)
            extra = await endpoint_details(gw, session, [g for f in families for g in f.guardians])
            return [family_as_dict(f, gw.channel_name_for_kind, extra) for f in families]

    rows = with_gateway(config, go)
    if as_json:
        emit_json(rows)
        return
    table = Table("family", "guardians", "students", "tags")
    for row in rows:
        guardians = "\n".join(
            f"{g['name']} ({g['language']}) "
            + ", ".join(
                f"{e['label']} {e['masked']}: "
                + ", ".join(
                    c["channel"] + ("" if c["state"] == "subscribed" else f" [{c['state']}]")
                    for c in e["channels"]
                )
                for e in g["endpoints"]
            )
            for g in row["guardians"]
        )
        students = "\n".join(f"{s['name']} — {s['school']} {s['grade'] or ''}" for s in row["students"])
        table.add_row(row["family_id"], guardians, students, ", ".join(row["tags"]))
    console.print(table)
    console.print(f"{len(rows)} families")


@families_app.command("link")
def families_link(
    family_id: Annotated[str, typer.Argument(help="The family's id.")],
    channel: Annotated[str, typer.Option(help="Channel to onboard (Telegram).")] = "telegram",
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Print a one-time Telegram deep link per guardian of a family."""
    from gateway.families import onboarding_links

    links = with_gateway(config, lambda gw: onboarding_links(gw, family_id, channel))
    if as_json:
        emit_json(links)
        return
    for link in links:
        console.print(f"{link['guardian']} ({link['language']}): {link['url']}", highlight=False)


# -- preview / broadcast -------------------------------------------------------------------------
@app.command()
def preview(
    template: Annotated[str, typer.Argument(help="Template name, e.g. workshop_invitation.")],
    event: Annotated[Path | None, typer.Option(help="Event YAML file.")] = None,
    language: Annotated[
        list[str] | None, typer.Option(help="Language(s) to show (default: all catalogs).")
    ] = None,
    channel: Annotated[list[str] | None, typer.Option(help="Channel(s) to show (default: all).")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Render a template per language and channel, with SMS segments, before anything is sent."""
    from gateway.broadcasts import preview_template
    from gateway.rendering.composer import RECEIVED_LABELS, describe_sources

    previews = with_gateway(config, lambda gw: preview_template(gw, template, event, language, channel))
    if as_json:
        emit_json(previews)
        return
    for item in previews:
        head = f"[bold]{item['language']}[/] · {item['channel']}"
        details = item.get("details") or {}
        if details:
            head += " · " + ", ".join(f"{k}: {v}" for k, v in details.items())
        head += f" · {RECEIVED_LABELS[item['received']]} ({describe_sources(item['sources'])})"
        if item.get("family_id"):
            head += f" · as sent to family {item['family_id']}"
        console.rule(head)
        if item.get("subject"):
            console.print(f"Subject: {item['subject']}", highlight=False, markup=False)
        console.print(item["body"], highlight=False, markup=False)


AudienceOpt = Annotated[str | None, typer.Option("--audience", help='e.g. "school:Lincoln grade:6"')]
ChannelsOpt = Annotated[str | None, typer.Option("--channels", help="Comma-separated channel names.")]
AtOpt = Annotated[str | None, typer.Option("--at", help="Send time, ISO 8601 with offset.")]


@broadcast_app.command("send")
def broadcast_send(
    template: Annotated[str, typer.Argument(help="Template name.")],
    event: Annotated[Path | None, typer.Option(help="Event YAML file.")] = None,
    audience: AudienceOpt = None,
    channels: ChannelsOpt = None,
    at: AtOpt = None,
    urgent: Annotated[bool, typer.Option("--urgent", help="Ignore quiet hours.")] = False,
    policy: Annotated[str, typer.Option(help="preferred (with fallback) or all.")] = "preferred",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Summary only; nothing is written.")] = False,
    title: Annotated[str | None, typer.Option(help="Announcement: its title.")] = None,
    body: Annotated[str | None, typer.Option(help="Announcement: the message.")] = None,
    link: Annotated[str | None, typer.Option(help="Announcement: a web address to add.")] = None,
    attach: Annotated[
        Path | None, typer.Option(help="Announcement: a PDF or image to attach.", exists=True, dir_okay=False)
    ] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Plan a broadcast into the outbox (dispatched by `gateway serve` / `gateway worker`)."""
    from gateway.broadcasts import send_broadcast

    send_at = _parse_at(at)
    context = {k: v for k, v in (("title", title), ("body", body), ("link", link)) if v is not None}

    async def send(gw: Any) -> dict[str, Any]:
        if attach is not None:
            from gateway.attachments import store_attachment

            async def chunks() -> Any:
                yield attach.read_bytes()

            stored = await store_attachment(gw, attach.name, chunks(), created_by="command line")
            context["attachment"] = stored.as_context()
        return await send_broadcast(
            gw,
            template,
            event_file=event,
            audience=audience,
            channels=_split(channels),
            send_at=send_at,
            urgent=urgent,
            policy=policy,
            dry_run=dry_run,
            context=context or None,
        )

    summary = with_gateway(config, send)
    _print_summary(summary, as_json)


@broadcast_app.command("cancel")
def broadcast_cancel(
    broadcast_id: Annotated[int, typer.Argument(help="Broadcast id.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Cancel a broadcast that has not started: queued messages and its reminders never go."""
    from gateway.broadcasts import cancel_broadcast

    result = with_gateway(config, lambda gw: cancel_broadcast(gw, broadcast_id))
    if as_json:
        emit_json(result)
        return
    console.print(
        f"broadcast {broadcast_id} cancelled: {result['cancelled_messages']} queued messages will not go"
        + (
            f"; reminders removed: {', '.join(result['reminders_removed'])}"
            if result.get("reminders_removed")
            else ""
        )
    )


@broadcast_app.command("status")
def broadcast_status(
    broadcast_id: Annotated[int, typer.Argument(help="Broadcast id.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Delivery counts of a broadcast, by language, channel and status."""

    async def go(gw: Any) -> dict[str, Any]:
        summary = await gw.planner.status(broadcast_id)
        data = summary.as_dict()
        data["funnel"] = getattr(summary, "funnel", {})
        return data

    _print_summary(with_gateway(config, go), as_json)


@broadcast_app.command("release")
def broadcast_release(
    broadcast_id: Annotated[int, typer.Argument(help="Broadcast id.")],
    language: Annotated[str | None, typer.Option(help="Only messages in this language.")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Send messages held for review (translation.fallback: hold) once their text is reviewed."""
    result = with_gateway(config, lambda gw: gw.planner.release_held(broadcast_id, language))
    if as_json:
        emit_json(result)
    else:
        console.print(
            f"released {result['released']} message(s); {result['still_held']} still held "
            "(import reviewed translations with `gateway translate import`)"
        )


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(summary)
        return
    console.print(
        f"broadcast {summary['broadcast_id'] or '(dry run)'}: {summary['status']} — "
        f"{summary['families']} families, {summary['messages']} messages",
        highlight=False,
    )
    table = Table("language", "messages", "text from", "sms")
    for language, count in summary["by_language"].items():
        translation = summary.get("translation", {}).get(language, {})
        source = "catalog " + translation["catalog"] if translation.get("catalog") else "English (no catalog)"
        texts = translation.get("texts") or {}
        if texts:
            source += "; free text: " + ", ".join(f"{k} {v}" for k, v in texts.items())
        sms = "; ".join(
            f"{ch}: {d.get('segments')} seg {d.get('encoding')}"
            for ch, d in summary.get("preview", {}).get(language, {}).items()
            if "segments" in d
        )
        table.add_row(language, str(count), source, sms)
    console.print(table)
    console.print("by channel: " + ", ".join(f"{k} {v}" for k, v in summary["by_channel"].items()))
    console.print("by status: " + ", ".join(f"{k} {v}" for k, v in summary["by_status"].items()))
    if summary.get("deferred_quiet_hours"):
        first = summary.get("deferred_until")
        console.print(
            f"{summary['deferred_quiet_hours']} messages wait for the end of quiet hours"
            + (f" (the first at {first})" if first else "")
        )
    if summary["skipped"]:
        reasons: dict[str, int] = {}
        for item in summary["skipped"]:
            reasons[item["reason"]] = reasons.get(item["reason"], 0) + 1
        console.print("skipped: " + ", ".join(f"{v} {k}" for k, v in reasons.items()))
    for note in summary.get("notes", []):
        console.print(note, highlight=False)


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _parse_at(value: str | None) -> datetime | None:
    from gateway.broadcasts import parse_send_time

    try:
        return parse_send_time(value, "--at")
    except GatewayError as exc:
        raise typer.BadParameter(str(exc)) from None


# -- surveys -----------------------------------------------------------------------------------
@survey_app.command("send")
def survey_send(
    file: Annotated[Path, typer.Argument(help="Survey YAML file.", exists=True, dir_okay=False)],
    audience: AudienceOpt = None,
    channels: ChannelsOpt = None,
    at: AtOpt = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Send the first question of a survey to its audience."""
    from gateway.broadcasts import send_survey

    summary = with_gateway(
        config,
        lambda gw: send_survey(gw, file, audience=audience, channels=_split(channels), send_at=_parse_at(at)),
    )
    if as_json:
        emit_json(
            {
                k: summary[k]
                for k in (
                    "survey_id",
                    "broadcast_id",
                    "families",
                    "messages",
                    "by_language",
                    "by_channel",
                    "skipped",
                    "translation",
                    "notes",
                )
                if k in summary
            }
        )
    else:
        _print_summary(summary, False)


@survey_app.command("responses")
def survey_responses_command(
    survey_id: Annotated[str, typer.Argument(help="Survey id (from the file) or number.")],
    format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """One row per guardian with each question's answer."""
    from gateway.responses import responses_csv, survey_responses

    data = with_gateway(config, lambda gw: survey_responses(gw, survey_id))
    if data is None:
        console.print(f"no survey {survey_id!r}", style="red")
        raise typer.Exit(2)
    if as_json or format == "json":
        emit_json(data)
        return
    if format == "csv":
        write_stdout(responses_csv(data))
        return
    if format != "table":
        raise typer.BadParameter("--format must be table, csv or json")
    questions = [q["id"] for q in data["questions"]]
    table = Table("family", "guardian", "language", "channel", "status", *questions, title=data["title"])
    for row in data["responses"]:
        table.add_row(
            row["family_id"],
            row["guardian"],
            row["language"],
            row["channel"],
            row["status"],
            *(row["answers"].get(q, "") for q in questions),
        )
    console.print(table)


@event_app.command("rsvps")
def event_rsvps_command(
    event_id: Annotated[str, typer.Argument(help="Event id (from the event file).")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Who is coming, who is not, who might, who has not answered — by name."""
    from gateway.responses import event_rsvps

    data = with_gateway(config, lambda gw: event_rsvps(gw, event_id))
    if data is None:
        console.print(f"no event {event_id!r}", style="red")
        raise typer.Exit(2)
    if as_json:
        emit_json(data)
        return
    for bucket in ("yes", "no", "maybe", "no_answer"):
        people = data[bucket]
        console.rule(f"{bucket.replace('_', ' ')}: {len(people)}")
        for item in people:
            console.print(
                f"{item['family_id']}  {item['guardian']}  ({item['language']}, {item['channel']})"
                + (f"  {item['answered_at'][:16]}" if item["answered_at"] else ""),
                highlight=False,
                markup=False,
            )


@survey_app.command("results")
def survey_results(
    survey_id: Annotated[str, typer.Argument(help="Survey id (from the file) or number.")],
    format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    config: ConfigOpt = None,
) -> None:
    """Answers by question, language and school, with the response rate."""
    from gateway.exports import results_csv

    results = with_gateway(config, lambda gw: gw.inbound.surveys.results(survey_id))
    if format == "json":
        emit_json(results)
    elif format == "csv":
        write_stdout(results_csv(results))
    elif format == "table":
        console.print(
            f"{results['title'] or results['survey_id']}: {results['respondents']} of "
            f"{results['sessions']} answered ({results['response_rate']:.0%})",
            highlight=False,
        )
        for q in results["questions"]:
            table = Table(f"{q['id']}: {q['text']}", "answers", *sorted(q["by_language"]))
            for value, count in sorted(q["answers"].items(), key=lambda kv: -kv[1]):
                table.add_row(
                    value,
                    str(count),
                    *(str(q["by_language"][lang].get(value, 0)) for lang in sorted(q["by_language"])),
                )
            console.print(table)
            for school, counts in q.get("by_school", {}).items():
                shown = ", ".join(f"{v} = {n}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1]))
                console.print(f"  {school}: {shown}", highlight=False, markup=False)
    else:
        raise typer.BadParameter("--format must be table, csv or json")


# -- inbox ---------------------------------------------------------------------------------------
@inbox_app.command("answer")
def inbox_answer(
    inbound_id: Annotated[int, typer.Argument(help="Inbox item id.")],
    value: Annotated[str, typer.Argument(help="The answer to record (e.g. yes, no, maybe, a choice value).")],
    config: ConfigOpt = None,
) -> None:
    """Confirm or correct the answer an inbox item gives, in one action."""

    async def record(gw: Any) -> str:
        try:
            return await gw.inbound.surveys.record_for_staff(inbound_id, value, staff="command line")
        except (LookupError, ValueError) as exc:
            raise GatewayError(str(exc)) from None

    classification = with_gateway(config, record)
    console.print(f"inbox item {inbound_id}: answer {value!r} recorded ({classification})")


@inbox_app.command("flag")
def inbox_flag(
    inbound_id: Annotated[int, typer.Argument(help="Inbox item id.")],
    clear: Annotated[bool, typer.Option("--clear", help="No interpreter needed any more.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Flag an inbox item for a human interpreter (no engine reads its language)."""
    from gateway.inbox import flag_interpreter

    if not with_gateway(config, lambda gw: flag_interpreter(gw, inbound_id, not clear)):
        console.print(f"no inbox item {inbound_id}", style="red")
        raise typer.Exit(2)
    state_text = "no interpreter needed" if clear else "needs an interpreter"
    console.print(f"inbox item {inbound_id}: {state_text}")


@inbox_app.callback()
def inbox(
    ctx: typer.Context,
    unread: Annotated[bool, typer.Option("--unread", help="Only items not yet answered or read.")] = False,
    needs_interpreter: Annotated[
        bool, typer.Option("--needs-interpreter", help="Only items flagged for an interpreter.")
    ] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Free-text replies and unmatched answers, urgent first, with translations."""
    if ctx.invoked_subcommand is not None:
        return
    from gateway.inbox import list_inbox

    items = with_gateway(
        config,
        lambda gw: list_inbox(gw, unread=unread, needs_interpreter=True if needs_interpreter else None),
    )
    if as_json:
        emit_json(items)
        return
    table = Table("id", "family", "channel", "received", "text", "translation", "")
    for item in items:
        translation = item["translation"] or item.get("translation_note") or ""
        table.add_row(
            str(item["id"]),
            item["family_id"] or "(unknown)",
            item["channel"],
            item["received_at"][:16],
            item["text"],
            translation,
            "URGENT" if item["urgent"] else "",
        )
    console.print(table)


@app.command()
def reply(
    inbound_id: Annotated[int, typer.Argument(help="Inbox item id.")],
    text: Annotated[str, typer.Argument(help="Your answer, in the staff language.")],
    config: ConfigOpt = None,
) -> None:
    """Answer an inbox item: translated into the family's language, sent on their channel."""

    from gateway.domain.languages import display_name
    from gateway.rendering.composer import RECEIVED_LABELS
    from gateway.storage.models import OutboxMessage

    async def go(gw: Any) -> Any:
        row = await gw.inbound.staff_reply(inbound_id, text)
        await gw.start_channels([row.channel])
        await gw.dispatcher.run_until_idle([row.channel])
        async with gw.db.session() as session:
            return await session.get(OutboxMessage, row.id)

    row = with_gateway(config, go)
    received = (row.payload or {}).get("received")
    what = f": {RECEIVED_LABELS[received]}" if received in RECEIVED_LABELS else ""
    console.print(
        f"reply {row.status} as message {row.id} on {row.channel} to a family reading "
        f"{display_name(row.language)} ({row.language}){what}",
        highlight=False,
    )


# -- translate -----------------------------------------------------------------------------------
@translate_app.command("languages")
def translate_languages(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """The district's languages (from the families) and what covers each; each engine's reach and licence."""
    from gateway.translation.coverage import language_coverage

    data = with_gateway(config, language_coverage)
    if as_json:
        emit_json(data)
        return
    console.print("reviewed catalogs: " + (", ".join(data["catalogs"]) or "none"), highlight=False)
    if data["district"]:
        table = Table()
        for header in ("language", "guardians", "families", "catalog", "engines (code)", "replies", "status"):
            table.add_column(header, overflow="fold")
        for row in data["district"]:
            engines = ", ".join(
                f"{e['engine']} ({e['code']})" if e["code"] else e["engine"] for e in row["engines"]
            )
            table.add_row(
                f"{row['language']} {row['name']}",
                str(row["guardians"]),
                str(row["families"]),
                row["catalog"] or "-",
                engines or "-",
                ", ".join(row["replies"]) or "-",
                row["status"],
            )
        console.print(table)
        if data["uncovered"]:
            console.print(
                "no engine translates into: "
                + ", ".join(data["uncovered"])
                + " (their free text goes out in the source language, with a note)",
                highlight=False,
            )
    else:
        console.print("no families imported yet", highlight=False)
    for engine in data["engines"]:
        state = "" if engine["available"] else " (not available)"
        console.print(
            f"engine {engine['engine']}{state}: {len(engine['languages'])} languages from "
            f"{data['source_language']}: {', '.join(engine['languages']) or 'none'}",
            highlight=False,
        )
        if engine["licence"]:
            console.print(f"  licence: {engine['licence']}", highlight=False)
        if engine["source"]:
            console.print(f"  source: {engine['source']}", highlight=False, markup=False)
        for note in engine["notes"]:
            console.print(f"  note: {note}", highlight=False, markup=False)


@translate_app.command("status")
def translate_status(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Translation memory size, engine calls, hits and misses, per language."""
    data = with_gateway(config, lambda gw: gw.translation.status())
    if as_json:
        emit_json(data)
        return
    console.print(
        f"memory entries: {data['memory_entries']}; engine calls: {data['engine_calls']}; "
        f"hits: {data['hits']}; misses: {data['misses']}"
    )
    table = Table("language", "reviewed", "memory", "machine", "fallback")
    for language, counts in data["by_language"].items():
        table.add_row(language, *(str(counts[k]) for k in ("reviewed", "memory", "machine", "fallback")))
    console.print(table)


@translate_app.command("install")
def translate_install(
    target: Annotated[
        str | None,
        typer.Argument(help="A language code (Argos packages from its index) or an .argosmodel file."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="A CTranslate2 model folder (NLLB-200, MADLAD-400 or OPUS-MT)."),
    ] = None,
    family: Annotated[
        str | None, typer.Option(help="Family of --model: nllb, madlad or marian (detected if omitted).")
    ] = None,
    pair: Annotated[str | None, typer.Option(help="Language pair of a Marian --model, e.g. en-es.")] = None,
    engine: Annotated[
        str | None,
        typer.Option(help="Engine to install into (default: argos, or ctranslate2 with --model)."),
    ] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Install translation models: `LANG`, `FILE.argosmodel` or `--model DIR`."""
    if (target is None) == (model is None):
        err_console.print(
            "[bold red]error:[/] give a language code, an .argosmodel file or --model DIR (one of them)"
        )
        raise typer.Exit(2)
    if model is not None:
        result = with_gateway(
            config, lambda gw: _install_model(gw, engine or "ctranslate2", model, family, pair)
        )
    elif target is not None and (target.endswith(".argosmodel") or Path(target).is_file()):
        path = Path(target)
        if not path.is_file():
            err_console.print(f"[bold red]error:[/] {path}: no such file", highlight=False)
            raise typer.Exit(2)
        result = with_gateway(config, lambda gw: _install_file(gw, engine or "argos", path))
    else:
        assert target is not None
        result = with_gateway(config, lambda gw: _install_language(gw, engine or "argos", target))
    if as_json:
        emit_json(result)
        return
    for line in result["lines"]:
        console.print(line, highlight=False, markup=False)
    for warning in result.get("warnings", []):
        err_console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)


def _installer(gw: Any, name: str, method: str) -> Any:
    candidate = gw.engine(name)
    if not hasattr(candidate, method):
        raise GatewayError(f"engine {name!r} cannot install this kind of model")
    return candidate


def _not_enabled(gw: Any, name: str) -> list[str]:
    if name in gw.config.translation.engines:
        return []
    return [f"{name} is not listed in translation.engines: add it there to use what was installed"]


async def _install_file(gw: Any, name: str, path: Path) -> dict[str, Any]:
    installed = await asyncio.to_thread(_installer(gw, name, "install").install, path)
    return {
        "engine": name,
        "installed": [installed],
        "lines": [f"installed {path.name}: {installed}"],
        "warnings": _not_enabled(gw, name),
    }


async def _install_language(gw: Any, name: str, tag: str) -> dict[str, Any]:
    from gateway.domain.languages import LanguageError, normalize_language

    try:
        language = normalize_language(tag)
    except LanguageError as exc:
        raise GatewayError(f"{tag}: {exc} (or give an .argosmodel file, or --model DIR)") from None
    translation = gw.config.translation
    report = await _installer(gw, name, "install_language").install_language(
        language, source=translation.source_language, staff=translation.staff_language
    )
    lines = [f"installed {item}" for item in report.installed]
    lines += [f"already installed: {item}" for item in report.present]
    if not report.installed:
        lines.append(f"nothing to install for {language}")
    return {
        "engine": name,
        "language": language,
        "installed": report.installed,
        "present": report.present,
        "lines": lines,
        "warnings": [*report.warnings, *_not_enabled(gw, name)],
    }


async def _install_model(
    gw: Any, name: str, folder: Path, family: str | None, pair: str | None
) -> dict[str, Any]:
    codes = pair.replace("→", "-").split("-", 1) if pair else None
    installer = _installer(gw, name, "install_model")
    result = await asyncio.to_thread(installer.install_model, folder, family, codes)
    model = result.model
    what = f"{model.family} {model.pair[0]}→{model.pair[1]}" if model.pair else model.family
    lines = [f"registered the {what} model at {model.path} ({result.languages} languages)"]
    lines += [f"replaced the {old.family} model at {old.path}" for old in result.replaced]
    lines.append(f"licence: {result.licence}")
    warnings = list(_not_enabled(gw, name))
    if model.family == "nllb":
        warnings.insert(
            0,
            "NLLB-200 weights are licensed CC-BY-NC-4.0: non-commercial use only. Check that the "
            "district's use fits before sending families its translations.",
        )
    return {
        "engine": name,
        "model": str(model.path),
        "family": model.family,
        "pair": list(model.pair) if model.pair else None,
        "languages": result.languages,
        "licence": result.licence,
        "replaced": [str(old.path) for old in result.replaced],
        "notes": list(result.notes),
        "lines": lines,
        "warnings": warnings,
    }


@translate_app.command("export")
def translate_export(
    language: Annotated[str, typer.Option("--language", "-l", help="Target language.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write the .po file.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Machine translations into LANGUAGE as fuzzy .po entries for human review."""
    from gateway.exports import export_machine_translations

    target = output or Path(f"machine-{language}.po")
    count = with_gateway(config, lambda gw: export_machine_translations(gw, language, target))
    console.print(f"wrote {count} entries to {target}")


@translate_app.command("import")
def translate_import(
    file: Annotated[Path, typer.Argument(help="A reviewed .po file.", exists=True, dir_okay=False)],
    language: Annotated[str, typer.Option("--language", "-l", help="Target language.")],
    config: ConfigOpt = None,
) -> None:
    """Import reviewed translations (non-fuzzy entries); they win over machine ones."""
    from gateway.exports import import_reviewed_translations

    count = with_gateway(config, lambda gw: import_reviewed_translations(gw, language, file))
    console.print(f"imported {count} reviewed entries for {language}")


# -- plugins / sandbox ---------------------------------------------------------------------------
@plugins_app.command("list")
def plugins_list(as_json: JsonOpt = False) -> None:
    """Registered plugins and what they provide."""
    from gateway.plugins import describe_plugins, make_plugin_manager

    infos = describe_plugins(make_plugin_manager())
    data = [
        {
            "name": i.name,
            "module": i.module,
            "distribution": i.distribution,
            "channels": list(i.channels),
            "address_kinds": list(i.address_kinds),
            "engines": list(i.engines),
            "hooks": list(i.hooks),
            "contract": i.contract,
        }
        for i in infos
    ]
    if as_json:
        emit_json(data)
        return
    table = Table("plugin", "module", "channels", "address kinds", "engines", "hooks")
    for item in data:
        table.add_row(
            item["name"],
            item["module"],
            ", ".join(item["channels"]),
            ", ".join(item["address_kinds"]),
            ", ".join(item["engines"]),
            ", ".join(item["hooks"]),
        )
    console.print(table)


@sandbox_app.command("reply")
def sandbox_reply(
    text: Annotated[str, typer.Argument(help="The reply text.")],
    sender: Annotated[str, typer.Option("--from", help="Sender address (phone, e-mail or chat id).")],
    channel: Annotated[str | None, typer.Option(help="Channel name (default: by address).")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Inject a reply into the inbound pipeline, as if a family had sent it."""
    from gateway.sandbox_tools import inject_reply

    outcome = with_gateway(config, lambda gw: inject_reply(gw, sender, text, channel))
    if as_json:
        emit_json(outcome)
    else:
        console.print(
            f"inbound {outcome['inbound_id']}: {outcome['classification']}"
            + (" (duplicate)" if outcome["duplicate"] else ""),
            highlight=False,
        )
        for sent in outcome.get("replies", []):
            console.print(f"  ↳ replied on {sent['channel']}: {sent['body']}", highlight=False, markup=False)


@sandbox_app.command("outbox")
def sandbox_outbox(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """What the sandbox channels have sent."""
    from gateway.sandbox_tools import sandbox_messages

    rows = with_gateway(config, sandbox_messages)
    if as_json:
        emit_json(rows)
        return
    table = Table("id", "channel", "address", "language", "text")
    for row in rows:
        table.add_row(
            str(row["message_id"]),
            row["channel"],
            row["address"],
            row["language"],
            (row["subject"] + " — " if row.get("subject") else "") + row["body"][:120],
        )
    console.print(table)


# -- staff -----------------------------------------------------------------------------------------
@staff_app.command("add")
def staff_add(
    email: Annotated[str, typer.Argument(help="The staff member's e-mail (their login).")],
    role: Annotated[str, typer.Option("--role", help="admin or liaison.")],
    school: Annotated[
        list[str] | None, typer.Option("--school", help="A school a liaison serves (repeat for more).")
    ] = None,
    password: Annotated[str | None, typer.Option("--password", help="Password for the web app.")] = None,
    token: Annotated[bool, typer.Option("--token", help="Make an API token (shown once).")] = False,
    language: Annotated[str, typer.Option("--language", help="Interface language.")] = "en",
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Create or update a staff account (a liaison sees only families of their schools)."""
    from gateway.staff import add_staff

    result = with_gateway(
        config,
        lambda gw: add_staff(
            gw, email, role, school, password=password, token=token, language=language, actor="cli"
        ),
    )
    if as_json:
        emit_json(result)
        return
    scope = ", ".join(result["schools"]) or "all schools"
    console.print(f"{result['email']}: {result['role']} ({scope})", highlight=False)
    if "token" in result:
        console.print(f"API token (shown once, stored hashed): {result['token']}", highlight=False)
    if password is None and not token:
        console.print("no password or token given: this account cannot sign in yet", highlight=False)


@staff_app.command("list")
def staff_list(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Staff accounts with role, schools and state."""
    from gateway.staff import list_staff

    rows = with_gateway(config, list_staff)
    if as_json:
        emit_json(rows)
        return
    table = Table("email", "role", "schools", "language", "password", "token", "state")
    for row in rows:
        table.add_row(
            row["email"],
            row["role"],
            ", ".join(row["schools"]) or "all",
            row["language"],
            "yes" if row["password"] else "no",
            "yes" if row["token"] else "no",
            "disabled" if row["disabled"] else "active",
        )
    console.print(table)


@staff_app.command("disable")
def staff_disable(
    email: Annotated[str, typer.Argument(help="The account to disable.")],
    config: ConfigOpt = None,
) -> None:
    """Disable an account: its sessions and token stop working at once."""
    from gateway.staff import disable_staff

    with_gateway(config, lambda gw: disable_staff(gw, email, actor="cli"))
    console.print(f"{email}: disabled", highlight=False)


# -- demo / serve / worker -----------------------------------------------------------------------
@app.command()
def demo(
    dir: Annotated[
        Path | None, typer.Option("--dir", help="Folder for the demo's database and outbox.")
    ] = None,
) -> None:
    """The embedded default end to end: families, an invitation, replies, a summary."""
    from gateway.demo import run_demo

    run(run_demo(dir, console))


@app.command()
def serve(config: ConfigOpt = None) -> None:
    """HTTP (webhooks, API, web app) + scheduler + dispatcher + pollers."""
    from gateway.server import serve_forever

    run(serve_forever(state.load(config), role="serve"))


@app.command()
def worker(config: ConfigOpt = None) -> None:
    """Dispatcher only, for scale-out."""
    from gateway.server import serve_forever

    run(serve_forever(state.load(config), role="worker"))


def _load_plugin_commands() -> None:
    from gateway.plugins import make_plugin_manager

    try:
        make_plugin_manager().hook.gateway_cli_commands(cli=app)
    except Exception as exc:  # a broken plugin must not break the whole command
        err_console.print(f"warning: a plugin failed to add commands: {exc}")


def _builtin_command(argv: list[str]) -> bool:
    """Whether ``argv`` names one of the core's own commands (or groups). Plugins cannot
    replace those, so loading every plugin to ask for its commands would only slow the
    command down — ``gateway worker`` by a third of its start-up."""
    names = {
        command.name or (command.callback.__name__ if command.callback else "")
        for command in app.registered_commands
    }
    names |= {group.name for group in app.registered_groups if group.name}
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first is not None and first.replace("_", "-") in {name.replace("_", "-") for name in names}


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    if not _builtin_command(sys.argv[1:]):
        _load_plugin_commands()
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
