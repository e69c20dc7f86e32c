"""Templates: sandboxed Jinja, one file per template with a block per channel variant.

``templates/<name>.j2`` holds ``sms``, ``email_subject``, ``email_text``, ``email_html`` and
``telegram`` blocks. ``email_html`` and ``telegram`` render with HTML autoescape, the others
without. Every problem (syntax, an undefined name, a sandbox refusal, a render over its time or
size budget, an ``OverflowError``, ``MemoryError`` or ``RecursionError``) is a
:class:`TemplateError` naming the template and the line, raised before anything is sent. Each
block renders under a :class:`~gateway.rendering.sandbox.RenderBudget`
(``rendering.time_limit_seconds`` and ``rendering.max_output_characters``): see
:mod:`gateway.rendering.sandbox`.

Static text (``{% trans %}``) is looked up in the :class:`LanguageStrings` the caller hands in
(reviewed catalog, translation memory, machine translation or the English source), and the
origin of every string and free text printed is recorded in :attr:`RenderedMessage.pieces`.
``None`` prints as nothing, never as "None". In a right-to-left message every printed value and
every English fallback sentence is isolated (see :mod:`gateway.rendering.bidi`): values are
marked while rendering and the marks become FSI/LRI…PDI in text, ``<bdi>`` / ``<span dir>`` in
e-mail HTML, and are dropped inside tags (an ``href`` stays a clean link).
"""

from __future__ import annotations

import html
import re
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
    pass_context,
)
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from markupsafe import Markup, escape

from gateway.domain.languages import is_rtl
from gateway.errors import TemplateError
from gateway.rendering.bidi import FSI, LRI, PDI, strip_bidi_controls
from gateway.rendering.formatting import CONTEXT_FILTERS
from gateway.rendering.sandbox import BudgetedSandbox, BudgetExceeded, RenderBudget, render_budget
from gateway.translation.catalogs import CatalogSet
from gateway.translation.strings import LanguageStrings, Origin, Resolved, TranslatedText

__all__ = ["BLOCKS", "Piece", "RenderBudget", "RenderedMessage", "TemplateRenderer"]

BLOCKS = ("sms", "email_subject", "email_text", "email_html", "telegram")
HTML_BLOCKS = frozenset({"email_html", "telegram"})
VARIANT_BLOCKS = {
    "sms": ("sms",),
    "email": ("email_subject", "email_text", "email_html"),
    "telegram": ("telegram",),
}
FALLBACK = {"telegram": "sms", "email_text": "sms"}
#: Block names of the built-in forms: never taken as a channel's or kind's own block.
RESERVED_BLOCKS = frozenset({"email_subject", "email_text", "email_html"})
SUFFIX = ".j2"


#: Marks put around values while rendering; :func:`_apply_isolation` turns them into isolates.
_OPEN_VALUE, _OPEN_LTR, _CLOSE = "\ue000", "\ue002", "\ue001"
_MARKS = re.compile("[\ue000-\ue002]")


@dataclass(frozen=True, slots=True)
class Piece:
    """One string of a rendered message and where it came from."""

    kind: str
    """``template`` (a catalog string) or ``text`` (free text: a title, a question...)."""
    source: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """One variant rendered for one family."""

    body: str
    subject: str | None = None
    html: str | None = None
    direction: str = "ltr"
    pieces: tuple[Piece, ...] = ()
    """Every string printed, once each, with its origin."""


class TemplateRenderer:
    """Renders templates per language with the catalogs and locale filters of that language."""

    def __init__(
        self,
        templates_dir: Path,
        catalogs: CatalogSet,
        extra_filters: Mapping[str, Callable[..., Any]] | None = None,
        budget: RenderBudget | None = None,
    ) -> None:
        self.templates_dir = templates_dir
        self.catalogs = catalogs
        self.extra_filters = dict(extra_filters or {})
        self.budget = budget or RenderBudget()
        self._envs: dict[bool, BudgetedSandbox] = {}
        self._names: dict[tuple[str, str], frozenset[str] | None] = {}
        self._msgids: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()

    # -- environments -----------------------------------------------------------------
    def environment(self, language: str, autoescape: bool) -> BudgetedSandbox:
        """The sandboxed environment of one escaping mode (cached). Every language shares it:
        strings come from the render context's :class:`LanguageStrings` and the locale filters
        read the context's ``lang``, so a template is compiled once, not once per language."""
        key = autoescape
        env = self._envs.get(key)
        if env is not None:
            return env
        with self._lock:
            env = self._envs.get(key)
            if env is not None:
                return env
            env = BudgetedSandbox(
                loader=FileSystemLoader(str(self.templates_dir)),
                undefined=StrictUndefined,
                autoescape=autoescape,
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=False,
                auto_reload=False,
                finalize=_finalize,
            )
            env.policies["ext.i18n.trimmed"] = True
            # Newstyle gettext of our own: strings from the LanguageStrings in the context, each
            # origin recorded, values isolated in right-to-left messages.
            env.newstyle_gettext = True  # type: ignore[attr-defined]
            env.globals.update(gettext=_gettext, ngettext=_ngettext, _=_gettext)
            env.filters.update(CONTEXT_FILTERS)
            env.filters.update(self.extra_filters)
            env.guard_filters()
            self._envs[key] = env
            return env

    def strings(self, language: str, source_language: str = "en") -> LanguageStrings:
        """Catalog-only strings of ``language`` (reviewed entries, else the English source)."""
        return LanguageStrings(language, self.catalogs, source_language=source_language)

    def message_ids(self, name: str) -> frozenset[str]:
        """Every gettext msgid of template ``name`` (singular and plural forms), as trimmed and
        extracted by Babel, so a language without a reviewed catalog can be machine-translated
        string by string."""
        cached = self._msgids.get(name)
        if cached is not None:
            return cached
        env = self.environment("en", False)
        self._template(name, "en", False)  # a clean TemplateError for a missing or broken file
        source, _, _ = env.loader.get_source(env, f"{name}{SUFFIX}")  # type: ignore[union-attr]
        found: set[str] = set()
        for _lineno, _function, message in env.extract_translations(source):
            for item in message if isinstance(message, tuple) else (message,):
                if isinstance(item, str) and item:
                    found.add(item)
        result = frozenset(found)
        self._msgids[name] = result
        return result

    def names(self) -> list[str]:
        """Every template name in the templates folder."""
        return sorted(p.name[: -len(SUFFIX)] for p in self.templates_dir.glob(f"*{SUFFIX}"))

    def exists(self, name: str) -> bool:
        """Whether ``name`` is a template."""
        return (self.templates_dir / f"{name}{SUFFIX}").is_file()

    def check(self, name: str) -> None:
        """Compile the template (both escaping modes); raise TemplateError on a syntax error."""
        for autoescape in (False, True):
            self._template(name, "en", autoescape)

    def _template(self, name: str, language: str, autoescape: bool) -> Any:
        env = self.environment(language, autoescape)
        try:
            return env.get_template(f"{name}{SUFFIX}")
        except TemplateNotFound:
            raise TemplateError(
                name, None, f"no such template in {self.templates_dir} (have: {', '.join(self.names())})"
            ) from None
        except TemplateSyntaxError as exc:
            raise TemplateError(name, exc.lineno, exc.message or str(exc)) from None

    def referenced_names(
        self, name: str, variant: str, blocks: tuple[str, ...] = ()
    ) -> frozenset[str] | None:
        """Top-level context names the blocks of ``variant`` read (fallbacks included).

        None when the template includes or imports others, so the answer cannot be known. The
        planner uses this to render a variant once for every family whose values it reads
        are the same (an SMS invitation that never names the guardian renders once per
        language and time zone, not once per family).
        """
        key = (name, variant, *blocks)
        if key in self._names:
            return self._names[key]
        env = self.environment("en", False)
        source, _, _ = env.loader.get_source(env, f"{name}{SUFFIX}")  # type: ignore[union-attr]
        tree = env.parse(source)
        result: frozenset[str] | None
        if any(tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends))):
            result = None
        else:
            blocks = {b.name: b for b in tree.find_all(nodes.Block)}
            wanted: set[str] = set()
            own = self._own_block(name, variant, blocks)
            for block in (own,) if own else VARIANT_BLOCKS.get(variant, (variant,)):
                while block and block not in blocks:
                    block = FALLBACK.get(block, "")
                if block:
                    wanted.add(block)
            names: set[str] = set()
            for block_name in wanted:
                names |= {n.name for n in blocks[block_name].find_all(nodes.Name) if n.ctx == "load"}
            uses_self = any(
                isinstance(n.node, nodes.Name) and n.node.name == "self"
                for b in wanted
                for n in blocks[b].find_all(nodes.Getattr)
            )
            result = None if uses_self else frozenset(names)
        self._names[key] = result
        return result

    # -- rendering --------------------------------------------------------------------
    def render_block(self, name: str, block: str, language: str, context: Mapping[str, Any]) -> str | None:
        """One block, stripped; None when the template has no such block (after fallbacks)."""
        autoescape = block in HTML_BLOCKS
        template = self._template(name, language, autoescape)
        source_block = block
        while source_block not in template.blocks:
            source_block = FALLBACK.get(source_block, "")
            if not source_block:
                return None
            template = self._template(name, language, autoescape)
        cap = self.budget.max_output
        try:
            with render_budget(self.budget):
                ctx = template.new_context(dict(context))
                parts: list[str] = []
                size = 0
                # Consumed chunk by chunk: a block is stopped at the cap, not after it is whole.
                stream = template.blocks[source_block](ctx)
                for chunk in stream:
                    size += len(chunk)
                    if size > cap:
                        frame = stream.gi_frame
                        line = template.get_corresponding_lineno(frame.f_lineno) if frame else None
                        stream.close()
                        raise TemplateError(
                            name,
                            line,
                            f"stopped: the {source_block} block is over {cap:,} characters "
                            "(rendering.max_output_characters)",
                        )
                    parts.append(chunk)
            return "".join(parts).strip()
        except TemplateError:
            raise
        except Exception as exc:  # every failure of template code, MemoryError included
            raise TemplateError(name, _template_line(exc, template), _reason(exc)) from None

    def _own_block(self, name: str, variant: str, blocks: tuple[str, ...]) -> str | None:
        """The first of ``blocks`` (a channel's name, then its address kind's) the template has,
        for the text forms (``sms``, ``telegram``); None when it has none, or for e-mail."""
        if variant == "email":
            return None
        return next((b for b in blocks if b not in RESERVED_BLOCKS and self._has_block(name, b)), None)

    def render_title(
        self,
        name: str,
        blocks: tuple[str, ...],
        language: str,
        context: Mapping[str, Any],
        strings: LanguageStrings | None = None,
    ) -> str | None:
        """A title line for a channel that shows one (push notification, WhatsApp header): the
        template's ``<channel>_title`` or ``<kind>_title`` block, else its ``email_subject``."""
        ctx = {"lang": language, **context, "_strings": strings or self.strings(language), "_record": {}}
        for block in (*(f"{b}_title" for b in blocks), "email_subject"):
            if self._has_block(name, block):
                title = self.render_block(name, block, language, ctx)
                return " ".join(_apply_isolation(title, "text").split()) or None if title else None
        return None

    def render(
        self,
        name: str,
        variant: str,
        language: str,
        context: Mapping[str, Any],
        strings: LanguageStrings | None = None,
        blocks: tuple[str, ...] = (),
    ) -> RenderedMessage:
        """Render the ``sms``, ``email`` or ``telegram`` variant for one family.

        ``blocks`` are blocks tried first for the text forms: a channel's own name and its
        address kind's (a ``whatsapp`` block), falling back to the variant's. ``strings``
        resolves template strings and records their origins; without it, the reviewed catalog
        of ``language`` (or the English source) is used.
        """
        direction = "rtl" if is_rtl(language) else "ltr"
        record: dict[tuple[str, str], Piece] = {}
        ctx = {
            "lang": language,
            "dir": direction,
            "channel_variant": variant,
            **context,
            "_strings": strings or self.strings(language),
            "_record": record,
        }
        if variant == "email":
            subject = self.render_block(name, "email_subject", language, ctx)
            text = self.render_block(name, "email_text", language, ctx) or ""
            fragment = self.render_block(name, "email_html", language, ctx)
            subject = _apply_isolation(subject, "text") if subject is not None else None
            text = _apply_isolation(text, "text")
            if fragment is None:
                fragment = "".join(
                    f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in text.split("\n\n")
                )
            else:
                fragment = _apply_isolation(fragment, "html")
            page = _html_page(fragment, language, direction, subject)
            return RenderedMessage(
                body=text,
                subject=" ".join((subject or "").split()) or None,
                html=page,
                direction=direction,
                pieces=tuple(record.values()),
            )
        own = self._own_block(name, variant, blocks)
        if own is not None:
            body = self.render_block(name, own, language, ctx)
            mode = "telegram" if variant == "telegram" else "text"
        elif variant == "telegram":
            body = self.render_block(name, "telegram", language, ctx)
            mode = "telegram"
        else:
            body = self.render_block(name, "sms", language, ctx)
            mode = "text"
        if body is None:
            raise TemplateError(name, None, f"no block for the {variant} variant")
        if own is None and variant == "telegram" and not self._has_block(name, "telegram"):
            mode = "text"  # the SMS block stood in: plain text, no tags
        return RenderedMessage(
            body=_apply_isolation(body, mode), direction=direction, pieces=tuple(record.values())
        )

    @staticmethod
    def with_notes(
        rendered: RenderedMessage,
        variant: str,
        *,
        lead: str | None = None,
        footer: str | None = None,
        pieces: tuple[Piece, ...] = (),
    ) -> RenderedMessage:
        """``rendered`` with a note at the top (``lead``) and one at the end (``footer``), as
        plain text, Telegram HTML or an e-mail paragraph."""
        notes = [html.escape(n) if (n and variant == "telegram") else n for n in (lead, footer)]
        body = "\n\n".join(x for x in (notes[0], rendered.body, notes[1]) if x)
        page = rendered.html
        if page:
            if lead:
                start = page.index(">", page.index("<body")) + 1
                page = f"{page[:start]}\n<p>{html.escape(lead)}</p>{page[start:]}"
            if footer:
                end = page.rindex("</body>")
                page = f"{page[:end]}<p><small>{html.escape(footer)}</small></p>\n{page[end:]}"
        known = {(p.kind, p.source) for p in rendered.pieces}
        extra = tuple(p for p in pieces if (p.kind, p.source) not in known)
        return RenderedMessage(
            body=body,
            subject=rendered.subject,
            html=page,
            direction=rendered.direction,
            pieces=rendered.pieces + extra,
        )

    def _has_block(self, name: str, block: str) -> bool:
        return block in self._template(name, "en", block in HTML_BLOCKS).blocks

    def validate(self, name: str, languages: list[str], context: Mapping[str, Any]) -> None:
        """Render every variant in every language once; raise the first TemplateError."""
        self.check(name)
        for language in languages:
            for variant in ("sms", "email", "telegram"):
                self.render(name, variant, language, context)


# -- strings, values and direction ------------------------------------------------------------
class _Sentence(str):
    """A template string as ``gettext`` returned it (values already isolated): printed as is."""


class _SentenceMarkup(Markup):
    """The same, in an HTML block."""


def _clean(value: str) -> str:
    """Bidi controls and our own marks never come from outside into a message."""
    cleaned = _MARKS.sub("", strip_bidi_controls(value))
    return Markup(cleaned) if isinstance(value, Markup) else cleaned


def _note(ctx: Context, kind: str, source: str, origin: Origin) -> None:
    record = ctx.get("_record")
    if record is not None:
        record.setdefault((kind, source), Piece(kind, source, origin))


def _value(ctx: Context, value: Any) -> Any:
    """A value about to be printed: None as nothing, controls removed, marked for isolation in a
    right-to-left message, its origin recorded when it is a translated free text."""
    if value is None:
        return ""
    if isinstance(value, _Sentence | _SentenceMarkup):
        return value
    if isinstance(value, TranslatedText):
        _note(ctx, "text", value.source, value.origin)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return value
    text = _clean(value) if isinstance(value, str) else str(value)
    if ctx.get("dir") != "rtl" or text == "":
        return text
    # Source-language text left untranslated reads left to right; any other value takes the
    # direction of its first strong letter.
    opener = _OPEN_LTR if isinstance(value, TranslatedText) and value.origin.untranslated else _OPEN_VALUE
    if ctx.eval_ctx.autoescape:
        return Markup(opener) + escape(text) + Markup(_CLOSE)
    return f"{opener}{text}{_CLOSE}"


@pass_context
def _finalize(ctx: Context, value: Any) -> Any:
    return _value(ctx, value)


def _format(ctx: Context, resolved: Resolved, msgid: str, variables: dict[str, Any]) -> str:
    _note(ctx, "template", msgid, resolved.origin)
    values = {key: _value(ctx, value) for key, value in variables.items()}
    if ctx.eval_ctx.autoescape:
        out: str = Markup(resolved.text) % values
    else:
        out = resolved.text % values
    if resolved.origin.untranslated and ctx.get("dir") == "rtl":
        # An English sentence inside a right-to-left message: laid out left to right.
        out = (Markup(_OPEN_LTR) + out + Markup(_CLOSE)) if ctx.eval_ctx.autoescape else (
            f"{_OPEN_LTR}{out}{_CLOSE}"
        )
    return _SentenceMarkup(out) if ctx.eval_ctx.autoescape else _Sentence(out)


@pass_context
def _gettext(ctx: Context, msgid: str, **variables: Any) -> str:
    strings: LanguageStrings = ctx["_strings"]
    return _format(ctx, strings.gettext(msgid), msgid, variables)


@pass_context
def _ngettext(ctx: Context, singular: str, plural: str, num: int, **variables: Any) -> str:
    variables.setdefault("num", num)
    strings: LanguageStrings = ctx["_strings"]
    return _format(ctx, strings.ngettext(singular, plural, num), singular, variables)


def _apply_isolation(text: str, mode: str) -> str:
    """Turn the marks put while rendering into isolates: Unicode isolates in ``text`` and
    ``telegram`` mode, ``<bdi>`` / ``<span dir="ltr">`` in ``html`` mode; inside a tag (an
    attribute value) the marks are dropped."""
    if not _MARKS.search(text):
        return text
    out: list[str] = []
    closers: list[str] = []
    in_tag = False
    for ch in text:
        if ch == "<" and mode != "text":
            in_tag = True
        elif ch == ">" and mode != "text":
            in_tag = False
        if ch not in (_OPEN_VALUE, _OPEN_LTR, _CLOSE):
            out.append(ch)
            continue
        if ch == _CLOSE:
            closer = closers.pop() if closers else ""
            if not in_tag:
                out.append(closer)
            continue
        if mode == "html":
            opener, closer = ("<bdi>", "</bdi>") if ch == _OPEN_VALUE else ('<span dir="ltr">', "</span>")
        else:
            opener, closer = (FSI if ch == _OPEN_VALUE else LRI), PDI
        closers.append(closer)
        if not in_tag:
            out.append(opener)
    return "".join(out)


def _html_page(fragment: str, language: str, direction: str, subject: str | None) -> str:
    title = html.escape(subject or "")
    return (
        f'<!DOCTYPE html>\n<html lang="{html.escape(language)}" dir="{direction}">\n'
        f'<head><meta charset="utf-8"><title>{title}</title></head>\n'
        f'<body dir="{direction}">\n{fragment}\n</body>\n</html>\n'
    )


def _template_line(exc: BaseException, template: Any) -> int | None:
    """The template line an exception was raised at (compiled-code line mapped back)."""
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if template.filename and frame.f_code.co_filename == template.filename:
            line = template.get_corresponding_lineno(lineno)
    return line


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BudgetExceeded):
        return f"stopped: {exc}"
    if isinstance(exc, SecurityError):
        return f"refused by the template sandbox: {exc}"
    if isinstance(exc, UndefinedError):
        return f"undefined value: {exc.message}"
    if isinstance(exc, RecursionError):
        return "RecursionError: macros or loops nest too deeply"
    if isinstance(exc, MemoryError):
        return "MemoryError: the template needs more memory than the gateway has"
    return f"{type(exc).__name__}: {str(exc)[:300]}"
