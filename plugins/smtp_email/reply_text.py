"""The new part of a reply: quoted history, attribution lines and signatures removed.

Quote headers are found by ``mail-parser-reply`` (Gmail, Outlook, Apple Mail styles in many
languages). A few patterns it misses (Spanish ``El ... escribió:`` with one space, attribution
lines wrapped by the client, trailing ``>`` quotes) are cut here afterwards.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from mailparser_reply import EmailMessage as ReplyParserMessage

__all__ = ["REPLY_LANGUAGES", "html_to_text", "latest_reply_text"]

#: Languages whose quote headers are recognised. (Polish is left out: its single-line
#: ``Data:``/``Do:`` header pattern cuts ordinary replies.)
REPLY_LANGUAGES: tuple[str, ...] = (
    "en", "es", "fr", "de", "it", "nl", "sv", "da", "cs", "zh", "ja", "ko",
)

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


def _cut_attribution(text: str) -> str:
    """Cut at an attribution line (possibly wrapped over two lines) followed by a quote."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not _ATTRIBUTION_START.match(stripped):
            continue
        for span in (1, 2, 3):  # clients wrap long attribution lines
            joined = " ".join(part.strip() for part in lines[index : index + span])
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


def latest_reply_text(text: str, languages: tuple[str, ...] = REPLY_LANGUAGES) -> str:
    """The newest part of a reply body, without quoted history or the sender's signature."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    parsed = ReplyParserMessage(
        text=normalized, languages=list(languages), keep_hyphen_lists=True
    ).read()
    newest = parsed.replies[0].body if parsed.replies else normalized
    newest = _drop_trailing_quote(_cut_attribution(newest)).strip()
    if not newest:
        # Bottom-posted: the attribution and quote come first, the answer below them.
        newest = "\n".join(
            line
            for line in normalized.split("\n")
            if not _QUOTED.match(line) and not _is_attribution(line)
        ).strip()
    # Interleaved answers: keep the family's own lines, not the quoted ones between them.
    return "\n".join(line for line in newest.split("\n") if not _QUOTED.match(line)).strip()


def _is_attribution(line: str) -> bool:
    stripped = line.strip()
    return bool(_ATTRIBUTION_START.match(stripped) and _ATTRIBUTION_END.search(stripped))


_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt footer h1 h2 h3 h4 h5 h6 header hr li "
    "main nav ol p pre section table td th tr ul".split()
)
_SKIPPED_TAGS = frozenset({"head", "script", "style", "title", "template"})
_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "protonmail_quote")
_VOID_TAGS = frozenset("area base br col embed hr img input link meta source track wbr".split())


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


def html_to_text(html: str) -> str:
    """Visible text of an HTML mail body, one line per block, quoted parts left out."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    text = "".join(extractor.parts).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    collapsed = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return collapsed.strip()
