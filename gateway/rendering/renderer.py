"""Templates: sandboxed Jinja, one file per template with a block per channel variant.

``templates/<name>.j2`` holds ``sms``, ``email_subject``, ``email_text``, ``email_html`` and
``telegram`` blocks. ``email_html`` and ``telegram`` render with HTML autoescape, the others
without. Static text comes from the family's gettext catalog through ``{% trans %}``. Every
problem (syntax, an undefined name, a sandbox refusal) is a :class:`TemplateError` naming the
template and the line, raised before anything is sent.
"""

from __future__ import annotations

import html
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
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from gateway.domain.languages import is_rtl
from gateway.errors import TemplateError
from gateway.rendering.formatting import locale_filters
from gateway.translation.catalogs import CatalogSet

__all__ = ["BLOCKS", "RenderedMessage", "TemplateRenderer"]

BLOCKS = ("sms", "email_subject", "email_text", "email_html", "telegram")
HTML_BLOCKS = frozenset({"email_html", "telegram"})
VARIANT_BLOCKS = {
    "sms": ("sms",),
    "email": ("email_subject", "email_text", "email_html"),
    "telegram": ("telegram",),
}
FALLBACK = {"telegram": "sms", "email_text": "sms"}
SUFFIX = ".j2"


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """One variant rendered for one family."""

    body: str
    subject: str | None = None
    html: str | None = None
    direction: str = "ltr"


class TemplateRenderer:
    """Renders templates per language with the catalogs and locale filters of that language."""

    def __init__(
        self,
        templates_dir: Path,
        catalogs: CatalogSet,
        extra_filters: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.templates_dir = templates_dir
        self.catalogs = catalogs
        self.extra_filters = dict(extra_filters or {})
        self._envs: dict[tuple[str, bool], SandboxedEnvironment] = {}
        self._names: dict[tuple[str, str], frozenset[str] | None] = {}
        self._lock = threading.Lock()

    # -- environments -----------------------------------------------------------------
    def environment(self, language: str, autoescape: bool) -> SandboxedEnvironment:
        """The sandboxed environment for one language and escaping mode (cached)."""
        key = (language, autoescape)
        env = self._envs.get(key)
        if env is not None:
            return env
        with self._lock:
            env = SandboxedEnvironment(
                loader=FileSystemLoader(str(self.templates_dir)),
                undefined=StrictUndefined,
                autoescape=autoescape,
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=False,
                auto_reload=False,
            )
            env.policies["ext.i18n.trimmed"] = True
            translations, _ = self.catalogs.translations(language)
            env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
            env.filters.update(locale_filters(language))
            env.filters.update(self.extra_filters)
            self._envs[key] = env
            return env

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

    def referenced_names(self, name: str, variant: str) -> frozenset[str] | None:
        """Top-level context names the blocks of ``variant`` read (fallbacks included).

        None when the template includes or imports others, so the answer cannot be known. The
        planner uses this to render a variant once for every family whose values it reads
        are the same (an SMS invitation that never names the guardian renders once per
        language and time zone, not once per family).
        """
        key = (name, variant)
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
            for block in VARIANT_BLOCKS.get(variant, (variant,)):
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
        try:
            ctx = template.new_context(dict(context))
            return "".join(template.blocks[source_block](ctx)).strip()
        except (UndefinedError, SecurityError, TypeError, ValueError, AttributeError) as exc:
            raise TemplateError(name, _template_line(exc, template), _reason(exc)) from None

    def render(self, name: str, variant: str, language: str, context: Mapping[str, Any]) -> RenderedMessage:
        """Render the ``sms``, ``email`` or ``telegram`` variant for one family."""
        direction = "rtl" if is_rtl(language) else "ltr"
        ctx = {"lang": language, "dir": direction, "channel_variant": variant, **context}
        if variant == "email":
            subject = self.render_block(name, "email_subject", language, ctx)
            text = self.render_block(name, "email_text", language, ctx) or ""
            fragment = self.render_block(name, "email_html", language, ctx)
            if fragment is None:
                fragment = "".join(
                    f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in text.split("\n\n")
                )
            page = _html_page(fragment, language, direction, subject)
            return RenderedMessage(
                body=text, subject=" ".join((subject or "").split()) or None, html=page, direction=direction
            )
        if variant == "telegram":
            body = self.render_block(name, "telegram", language, ctx)
        else:
            body = self.render_block(name, "sms", language, ctx)
        if body is None:
            raise TemplateError(name, None, f"no block for the {variant} variant")
        return RenderedMessage(body=body, direction=direction)

    def validate(self, name: str, languages: list[str], context: Mapping[str, Any]) -> None:
        """Render every variant in every language once; raise the first TemplateError."""
        self.check(name)
        for language in languages:
            for variant in ("sms", "email", "telegram"):
                self.render(name, variant, language, context)


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
    if isinstance(exc, SecurityError):
        return f"refused by the template sandbox: {exc}"
    if isinstance(exc, UndefinedError):
        return f"undefined value: {exc.message}"
    return f"{type(exc).__name__}: {exc}"
