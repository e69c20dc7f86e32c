"""The new part of a reply: quoted history, attribution lines and signatures removed.

Quote headers are recognised with ``mail-parser-reply``'s patterns (Gmail, Outlook, Apple Mail
styles in many languages). A few patterns it misses (Spanish ``El ... escribió:`` with one
space, attribution lines wrapped by the client, trailing ``>`` quotes) are cut here afterwards.

Bounded work on anything a family sends. The library's own ``read()`` runs its patterns over the
whole body at once and some of them backtrack: ``"On " + "a " * 4000`` took 1.8 s, 50,000 words
did not finish, and one regular-expression call holds the GIL (and so the event loop, even
from a worker thread) for all that time. So the patterns are only tried line by line, on lines
that can be a quote header (short, and ending in ``:`` or starting with ``Key:`` or
``-----``), within the first :data:`QUOTE_SCAN_CHARS` of the body; the signature pass runs on
at most :data:`SIGNATURE_SCAN_CHARS` with runs of blank space squeezed (its pattern is
catastrophic on long runs of whitespace). Each call is short, the whole is linear in the size
of the body, and a time budget (:data:`PARSE_BUDGET_SECONDS`) ends it early: the fallback is
the text as it came. HTML is fed to :class:`html.parser.HTMLParser` in pieces, after every
``<`` that does not open a tag closed before the next ``<`` was escaped (the parser is
quadratic on ``"<a" * 50000``), also under the budget, with a linear tag strip as fallback.
"""

from __future__ import annotations

import functools
import html as html_module
import re
import time
from html.parser import HTMLParser

from mailparser_reply import EmailMessage as ReplyParserMessage

__all__ = [
    "MAX_HTML_CHARS",
    "PARSE_BUDGET_SECONDS",
    "QUOTE_SCAN_CHARS",
    "REPLY_LANGUAGES",
    "SIGNATURE_SCAN_CHARS",
    "html_to_text",
    "latest_reply_text",
]

#: Languages whose quote headers are recognised. (Polish is left out: its single-line
#: ``Data:``/``Do:`` header pattern cuts ordinary replies.)
REPLY_LANGUAGES: tuple[str, ...] = (
    "en", "es", "fr", "de", "it", "nl", "sv", "da", "cs", "zh", "ja", "ko",
)
#: Only this much of a body is searched for the start of the quoted history.
QUOTE_SCAN_CHARS = 64_000
#: Longer lines are never taken for a quote header (real ones are well under 200 characters).
MAX_HEADER_LINE = 200
#: Lines of a header block tried together (Outlook's ``From:``/``Sent:``... span several).
HEADER_WINDOW = 4
#: The signature and disclaimer pass runs on the newest part only up to this size.
SIGNATURE_SCAN_CHARS = 4_000
#: HTML bodies longer than this are cut before they are parsed.
MAX_HTML_CHARS = 200_000
#: Time allowed for quote stripping, and separately for HTML to text, of one mail.
PARSE_BUDGET_SECONDS = 1.0

# "<attribution> wrote:" in the languages families write in, for what the library misses.
_ATTRIBUTION_END = re.compile(
    r"(?:wrote|escribió|escreveu|a écrit|schrieb.*|ha scritto|schreef|skrev|napisał|"
    r"написал|كتب|đã viết|ecrit|wrote\s+on.*)\s*:\s*$",
    re.IGNORECASE,
)
_ATTRIBUTION_START = re.compile(
    r"^(?:On|El|Em|Le|Am|Il|Op|Den|Dnia|Vào|في)\b", re.IGNORECASE
)
_QUOTED = re.compile(r"^\s*>")
# Cheap tests of whether a line may start a quote header at all.
_KEY_COLON = re.compile(r"[>* ]*[^\W\d_][^:\n]{0,40}:")
_SEPARATOR = re.compile(r"[> ]*[-_]{5}")
_BLANKS = re.compile(r"[ \t\u00a0\u200b]+")


class _OverBudget(Exception):
    """The parse took longer than its budget."""


@functools.lru_cache(maxsize=8)
def _patterns(languages: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """The library's header, signature and disclaimer patterns for ``languages`` (compiled once)."""
    probe = ReplyParserMessage(text="", languages=list(languages), keep_hyphen_lists=True)
    return probe.HEADER_REGEX, probe.SIGNATURE_REGEX, probe.DISCLAIMERS_REGEX


def _cut_attribution(text: str) -> str:
    """Cut at an attribution line (possibly wrapped over two lines) followed by a quote."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        stripped = line.strip()
        if len(stripped) > MAX_HEADER_LINE or not _ATTRIBUTION_START.match(stripped):
            continue
        for span in (1, 2, 3):  # clients wrap long attribution lines
            joined = " ".join(part.strip()[:MAX_HEADER_LINE] for part in lines[index : index + span])
            if _ATTRIBUTION_END.search(joined):
                rest = [x for x in lines[index + span :] if x.strip()]
                if not rest or _QUOTED.match(rest[0]):
                    return "\n".join(lines[:index])
                break
    return text


def _drop_trailing_quote(text: str) -> str:
    """Remove a block of ``>``-quoted lines (and blank lines) at the end."""
    lines = text.rstrip().split("\n")
    while lines and (_QUOTED.match(lines[-1]) or not lines[-1].strip()):
        lines.pop()
    return "\n".join(lines)


def latest_reply_text(
    text: str,
    languages: tuple[str, ...] = REPLY_LANGUAGES,
    *,
    budget: float = PARSE_BUDGET_SECONDS,
) -> str:
    """The newest part of a reply body, without quoted history or the sender's signature.

    Linear in the size of ``text``; when it needs more than ``budget`` seconds all the same,
    the whole text (line ends unified, trimmed) is returned instead.
    """
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        return _latest_reply(normalized, languages, time.monotonic() + budget)
    except _OverBudget:
        return normalized.strip()


def _check(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise _OverBudget


def _may_be_header(line: str) -> bool:
    if not line or len(line) > MAX_HEADER_LINE:
        return False
    return line.endswith(":") or bool(_KEY_COLON.match(line)) or bool(_SEPARATOR.match(line))


def _find_headers(header: re.Pattern[str], lines: list[str], deadline: float) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    offset = 0
    index = 0
    while index < len(lines) and offset < QUOTE_SCAN_CHARS:
        line = lines[index]
        offset += len(line) + 1
        if _may_be_header(line):
            _check(deadline)
            window = [part[:MAX_HEADER_LINE] for part in lines[index : index + HEADER_WINDOW]]
            match = header.match("\n".join(window))
            if match and match.group(0).strip():
                span = match.group(0).rstrip("\n").count("\n") + 1
                found.append((index, span))
                index += span
                continue
        index += 1
    return found


def _latest_reply(normalized: str, languages: tuple[str, ...], deadline: float) -> str:
    header, _, _ = _patterns(languages)
    # The library compares stripped lines; so do we.
    lines = [line.strip() for line in normalized.split("\n")]
    blocks = _find_headers(header, lines, deadline)
    # As mail-parser-reply splits: the newest reply is the first non-empty stretch between
    # headers (a reply that starts with a header, bottom-posted, is the stretch after it).
    start, newest = 0, None
    for first, span in blocks:
        if any(lines[start:first]):
            newest = lines[start:first]
            break
        start = first + span
    if newest is None:
        newest = lines[start:]
    body = _without_signature("\n".join(newest), languages, deadline)
    body = _drop_trailing_quote(_cut_attribution(body)).strip()
    if not body:
        # Bottom-posted: the attribution and quote come first, the answer below them.
        body = "\n".join(
            line for line in lines if not _QUOTED.match(line) and not _is_attribution(line)
        ).strip()
    # Interleaved answers: keep the family's own lines, not the quoted ones between them.
    return "\n".join(line for line in body.split("\n") if not _QUOTED.match(line)).strip()


def _without_signature(text: str, languages: tuple[str, ...], deadline: float) -> str:
    """``text`` without its signature and disclaimers (the library's patterns), when short
    enough to look at; blank runs are squeezed first (the signature pattern backtracks on them)."""
    squeezed_lines: list[str] = []
    for line in text.split("\n"):
        line = _BLANKS.sub(" ", line).strip()
        if line or (squeezed_lines and squeezed_lines[-1]):
            squeezed_lines.append(line)
    squeezed = "\n".join(squeezed_lines).strip()
    if len(squeezed) > SIGNATURE_SCAN_CHARS or any(len(x) > MAX_HEADER_LINE for x in squeezed_lines):
        return text
    _check(deadline)
    _, signature, disclaimers = _patterns(languages)
    body = squeezed
    for disclaimer in disclaimers.findall(squeezed):
        if isinstance(disclaimer, str) and disclaimer.strip():
            body = body.replace(disclaimer.strip(), "")
    found = signature.search(body)
    if found and found.group().strip():
        body = body.replace(found.group().strip(), "")
    return body.strip()


def _is_attribution(line: str) -> bool:
    stripped = line.strip()
    if len(stripped) > MAX_HEADER_LINE:
        return False
    return bool(_ATTRIBUTION_START.match(stripped) and _ATTRIBUTION_END.search(stripped))


_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt footer h1 h2 h3 h4 h5 h6 header hr li "
    "main nav ol p pre section table td th tr ul".split()
)
_SKIPPED_TAGS = frozenset({"head", "script", "style", "title", "template"})
_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "protonmail_quote")
_VOID_TAGS = frozenset("area base br col embed hr img input link meta source track wbr".split())
_HTML_CHUNK = 8192
_TAG = re.compile(r"<[^<>]*>")


class _TextExtractor(HTMLParser):
    """Collects visible text; leaves out ``<blockquote>`` and webmail quote containers."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0
        self._stack: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID_TAGS:
            if tag in ("br", "hr") and not self._skip_depth:
                self.parts.append("\n")
            return
        classes = " ".join(value or "" for name, value in attrs if name in ("class", "id"))
        skip = (
            tag in _SKIPPED_TAGS
            or tag == "blockquote"
            or any(marker in classes for marker in _QUOTE_CLASSES)
        )
        self._stack.append((tag, skip))
        if skip:
            self._skip_depth += 1
        elif tag in _BLOCK_TAGS and not self._skip_depth:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID_TAGS:
            return
        while self._stack:
            open_tag, skipped = self._stack.pop()
            if skipped:
                self._skip_depth -= 1
            if open_tag == tag:
                break
        if tag in _BLOCK_TAGS and not self._skip_depth:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def _escape_stray_brackets(html: str) -> str:
    """Every ``<`` that is not closed by a ``>`` before the next ``<`` becomes ``&lt;`` (one
    pass): then no tag or declaration can run on to the end of the document."""
    out: list[str] = []
    position = 0
    length = len(html)
    while True:
        opening = html.find("<", position)
        if opening < 0:
            out.append(html[position:])
            return "".join(out)
        closing = html.find(">", opening + 1)
        following = html.find("<", opening + 1)
        out.append(html[position:opening])
        if closing < 0 or (0 <= following < closing):
            out.append("&lt;")
            position = opening + 1
        else:
            out.append(html[opening : closing + 1])
            position = closing + 1
        if position >= length:
            return "".join(out)


def _tidy(text: str) -> str:
    text = text.replace("\xa0", " ")
    lines = [_BLANKS.sub(" ", line).strip() for line in text.split("\n")]
    collapsed = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return collapsed.strip()


def html_to_text(html: str, *, budget: float = PARSE_BUDGET_SECONDS) -> str:
    """Visible text of an HTML mail body, one line per block, quoted parts left out.

    At most :data:`MAX_HTML_CHARS` are parsed; past ``budget`` seconds, or on markup the parser
    cannot take, the text is the markup with its tags stripped.
    """
    safe = _escape_stray_brackets(html[:MAX_HTML_CHARS])
    deadline = time.monotonic() + budget
    extractor = _TextExtractor()
    try:
        for start in range(0, len(safe), _HTML_CHUNK):
            _check(deadline)
            extractor.feed(safe[start : start + _HTML_CHUNK])
        extractor.close()
    except Exception:  # over budget, or markup the parser gives up on (AssertionError...)
        return _tidy(html_module.unescape(_TAG.sub("\n", safe)))
    return _tidy("".join(extractor.parts))
