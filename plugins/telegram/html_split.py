"""Splitting Telegram HTML into messages of at most 4,096 characters.

Telegram refuses texts longer than 4,096 characters (counted in UTF-16 code units). A long message
is cut, in order of preference, at a line break, at whitespace, or between two graphemes, and
never inside a tag (``<a href="...">``) or a character reference (``&amp;``). Tags still open at a
cut are closed at the end of that part and opened again at the start of the next one, so every
part is valid HTML on its own. Lengths are measured on the HTML itself, which is never shorter
than the text Telegram counts, so the parts are always within the limit.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["TELEGRAM_TEXT_LIMIT", "split_telegram_html", "utf16_length"]

TELEGRAM_TEXT_LIMIT = 4096

_TOKEN = re.compile(r"<[^<>]*>|&#?[A-Za-z0-9]{1,32};|[^<&]|[<&]", re.DOTALL)
_TAG_NAME = re.compile(r"^</?\s*([A-Za-z][A-Za-z0-9-]*)")
_ZWJ = "\u200d"

#: A cut at a line break or a space is preferred unless it leaves a part shorter than this share.
_MIN_FILL = 0.5


def utf16_length(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (Telegram's unit)."""
    return len(text.encode("utf-16-le")) // 2


def _extends_grapheme(char: str) -> bool:
    """True when ``char`` belongs to the grapheme before it (marks, joiners, modifiers)."""
    if char == _ZWJ or unicodedata.combining(char):
        return True
    if unicodedata.category(char) in {"Mn", "Mc", "Me"}:
        return True
    code = ord(char)
    return 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F


def _atoms(html: str) -> list[str]:
    """Tags, character references and graphemes (approximated) of ``html``, in order."""
    atoms: list[str] = []
    for match in _TOKEN.finditer(html):
        token = match.group()
        glue = (
            len(token) == 1
            and atoms
            and _is_text(atoms[-1])
            and (_extends_grapheme(token) or atoms[-1].endswith(_ZWJ))
        )
        if glue:
            atoms[-1] += token
        else:
            atoms.append(token)
    return atoms


def _is_text(atom: str) -> bool:
    return not (len(atom) > 1 and atom[0] == "<" and atom[-1] == ">")


def _tag(atom: str) -> tuple[str, bool] | None:
    """``(name, is_closing)`` for a tag atom, None for text."""
    if _is_text(atom):
        return None
    match = _TAG_NAME.match(atom)
    if match is None:
        return None
    return match.group(1).lower(), atom.startswith("</")


def _closing(stack: tuple[tuple[str, str], ...]) -> str:
    return "".join(f"</{name}>" for name, _ in reversed(stack))


def split_telegram_html(html: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Cut ``html`` into parts of at most ``limit`` UTF-16 units, each valid Telegram HTML.

    Parts holding only whitespace and tags are dropped (Telegram refuses empty texts).
    """
    if utf16_length(html) <= limit:
        return [html] if html.strip() else []
    atoms = _atoms(html)
    sizes = [utf16_length(atom) for atom in atoms]
    parts: list[str] = []
    stack: tuple[tuple[str, str], ...] = ()  # tags open where the current part starts
    start = 0
    while start < len(atoms):
        prefix = "".join(open_tag for _, open_tag in stack)
        used = utf16_length(prefix)
        if used >= limit // 2:
            # Pathological nesting: drop formatting rather than loop forever.
            stack, prefix, used = (), "", 0
        open_stack = stack
        best_line = best_space = best_any = None
        index = start
        while index < len(atoms):
            atom = atoms[index]
            tag = _tag(atom)
            next_stack = open_stack
            if tag is not None:
                name, closing = tag
                if closing:
                    for depth in range(len(open_stack) - 1, -1, -1):
                        if open_stack[depth][0] == name:
                            next_stack = open_stack[:depth] + open_stack[depth + 1 :]
                            break
                else:
                    next_stack = (*open_stack, (name, atom))
            if used + sizes[index] + utf16_length(_closing(next_stack)) > limit:
                break
            used += sizes[index]
            open_stack = next_stack
            index += 1
            if tag is not None and not tag[1]:
                continue  # never end a part right after an opening tag
            cut = (index, open_stack)
            best_any = cut
            if atom == "\n":
                best_line = cut
            elif atom.isspace():
                best_space = cut
        if index >= len(atoms):
            cut_at, cut_stack = index, open_stack
        else:
            floor = start + int((index - start) * _MIN_FILL)
            chosen = next(
                (c for c in (best_line, best_space) if c is not None and c[0] > floor),
                best_any,
            )
            if chosen is None:  # a single atom larger than the room left: force progress
                chosen = (index + 1, open_stack)
            cut_at, cut_stack = chosen
        body = "".join(atoms[start:cut_at])
        part = (prefix + body + _closing(cut_stack)).strip()
        if _has_text(part):
            parts.append(part)
        start = cut_at
        stack = cut_stack
    return parts


def _has_text(part: str) -> bool:
    return any(_is_text(atom) and not atom.isspace() for atom in _atoms(part))
