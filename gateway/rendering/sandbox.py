"""The template sandbox with a budget: Jinja's immutable sandbox plus a time and a size limit.

Jinja's sandbox keeps templates away from Python internals, but not from the machine's time
and memory: ``{% for a in s %}{% for b in s %}...`` over a long string, ``'a' * 10**9``,
``'{:>999999999}'.format(x)``, a macro that calls itself twice per level, or a namespace
string doubled in a loop all run until the process is killed. :class:`BudgetedSandbox` bounds
them while a :func:`render_budget` is active (the renderer opens one per block):

* **time**: a deadline, checked on every loop iteration (each ``{% for %}`` iterable is wrapped
  by the code generator), every call (macros, methods, filters) and every output chunk;
* **size**: no string, list or tuple the template builds may exceed ``max_output`` characters
  or items, and all of them together (everything built during one render, intermediate values
  included) may not exceed :data:`BUILT_FACTOR` times that: a loop that builds a large value
  on each pass inside a macro or ``{% set %}`` block stops long before memory runs out.
  Operations that could allocate far more than that in one step are refused *before* they run
  (``*`` and ``+`` on sequences, ``**`` on big integers, printf and ``str.format`` widths,
  ``center``/``ljust``/``zfill``/``indent``/``replace`` sizes); everything else is checked right
  after (``~`` concatenations, call and filter results, macro and ``{% set %}``
  block bodies through :attr:`BudgetedSandbox.concat`).

The base is :class:`jinja2.sandbox.ImmutableSandboxedEnvironment`: templates cannot call
``append``, ``update``, ``pop``... on lists, dicts and sets, so a template cannot grow its
context either. Constant folding cannot run an expensive operation at compile time: the
intercepted operators are never folded and every filter is wrapped with ``pass_context``
(which Jinja never folds).

A refusal raises :class:`BudgetExceeded` (a :class:`jinja2.exceptions.SecurityError`); the
renderer turns it into a ``TemplateError`` naming the template and the line.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["BudgetExceeded", "BudgetedSandbox", "RenderBudget", "render_budget"]

#: Integers a template may build: 4096 bits (1,233 decimal digits) is far beyond any sum,
#: count or date arithmetic a message needs, and far below what makes ``**`` slow.
MAX_INT_BITS = 4096
#: Everything one render builds may total this many times ``max_output``.
BUILT_FACTOR = 20
#: How many loop iterations pass between two looks at the clock.
_CLOCK_EVERY = 64


@dataclass(frozen=True, slots=True)
class RenderBudget:
    """Limits of one render: wall-clock seconds and characters (or items) of any value built."""

    seconds: float = 2.0
    max_output: int = 200_000


class BudgetExceeded(SecurityError):
    """A template went over its time or size budget (or asked for an operation that would)."""


@dataclass(slots=True)
class _Active:
    deadline: float
    budget: RenderBudget
    built: int = 0


_ACTIVE: ContextVar[_Active | None] = ContextVar("gateway_render_budget", default=None)


@contextlib.contextmanager
def render_budget(budget: RenderBudget) -> Iterator[None]:
    """Apply ``budget`` to every render inside the ``with`` block (this thread / task only)."""
    token = _ACTIVE.set(_Active(time.monotonic() + budget.seconds, budget))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def _check_clock() -> None:
    active = _ACTIVE.get()
    if active is not None and time.monotonic() > active.deadline:
        raise BudgetExceeded(
            f"rendering took longer than {active.budget.seconds:g} s "
            "(rendering.time_limit_seconds); simplify the loops of the template"
        )


def _cap() -> int | None:
    active = _ACTIVE.get()
    return active.budget.max_output if active is not None else None


def _too_big(size: int, what: str) -> BudgetExceeded:
    cap = _cap()
    return BudgetExceeded(
        f"{what} would be {size:,} characters or items, over the limit of {cap:,} "
        "(rendering.max_output_characters)"
    )


def check_size(value: Any, what: str = "a value") -> Any:
    """Return ``value``; raise :class:`BudgetExceeded` when it is a string or sequence over the cap."""
    active = _ACTIVE.get()
    if active is None or not isinstance(value, str | bytes | list | tuple):
        return value
    size = len(value)
    if size > active.budget.max_output:
        raise _too_big(size, what)
    active.built += size
    if active.built > BUILT_FACTOR * active.budget.max_output:
        raise BudgetExceeded(
            f"the template built more than {BUILT_FACTOR * active.budget.max_output:,} characters "
            f"in all ({BUILT_FACTOR} x rendering.max_output_characters)"
        )
    return value


def _check_count(size: int, what: str) -> None:
    cap = _cap()
    if cap is not None and size > cap:
        raise _too_big(size, what)


def _int_arg(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_width_args(args: Iterable[Any], what: str) -> None:
    for value in args:
        number = _int_arg(value)
        if number is not None:
            _check_count(number, what)


_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


def _number(digits: str) -> int:
    # A run of thousands of digits would trip Python's int/str conversion limit: cap first.
    return int(digits) if len(digits) <= 12 else 10**12


def _check_printf(fmt: str, args: Any) -> None:
    """Refuse ``'%999999999d' % x`` (and ``*`` widths from the arguments) before it runs."""
    star = False
    for match in _PRINTF.finditer(fmt):
        for group in match.groups():
            if group == "*":
                star = True
            elif group:
                _check_count(_number(group), "a printf field width")
    if star:
        values = args if isinstance(args, tuple) else (args,)
        _check_width_args(values, "a printf field width")


def _check_format_string(fmt: str, args: Iterable[Any]) -> None:
    """Refuse ``'{:>999999999}'.format(x)`` (and nested widths from the arguments)."""
    nested = False
    for _literal, field, spec, _conversion in string.Formatter().parse(fmt):
        if field is None or not spec:
            continue
        if "{" in spec:
            nested = True
        for digits in _DIGITS.findall(spec):
            _check_count(_number(digits), "a format field width")
    if nested:
        _check_width_args(args, "a format field width")


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not isinstance(text, str) or not isinstance(old, str) or not isinstance(new, str):
        return
    grow = len(new) - len(old)
    if grow <= 0:
        return
    hits = len(text) + 1 if old == "" else text.count(old)
    limit = _int_arg(count)
    if limit is not None and limit >= 0:
        hits = min(hits, limit)
    _check_count(len(text) + hits * grow, "the result of replace")


#: ``str`` methods whose integer arguments are output widths.
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
#: Filters whose integer arguments are output widths.
_WIDTH_FILTERS = frozenset({"center", "indent"})


def _check_str_method(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str):
        return
    name = getattr(obj, "__name__", "")
    if name in _WIDTH_METHODS:
        _check_width_args((*args, *kwargs.values()), f"the result of {name}")
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, *args[:3])
    elif name == "join" and args:
        # ``sep.join(items)`` with a long separator multiplies it by the number of items.
        items = args[0]
        if isinstance(items, list | tuple | str):
            _check_count(len(owner) * max(len(items) - 1, 0), "the result of join")


def _sized(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _check_binop(op: str, left: Any, right: Any) -> None:
    if op == "*":
        for seq, times in ((left, right), (right, left)):
            size, count = _sized(seq), _int_arg(times)
            if size is not None and count is not None:
                _check_count(size * max(count, 0), "a repeated string or list")
                return
        if _int_arg(left) is not None and _int_arg(right) is not None:
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise BudgetExceeded(f"an integer over {MAX_INT_BITS} bits: refused")
    elif op == "**":
        base, exponent = _int_arg(left), _int_arg(right)
        if base is not None and exponent is not None and abs(base) > 1 and exponent > 0:
            if exponent * math.log2(abs(base)) > MAX_INT_BITS:
                raise BudgetExceeded(f"an integer over {MAX_INT_BITS} bits: refused")
    elif op == "+":
        left_size, right_size = _sized(left), _sized(right)
        if left_size is not None and right_size is not None:
            _check_count(left_size + right_size, "a concatenation")
    elif op == "%" and isinstance(left, str):
        _check_printf(left, right)


class BudgetCodeGenerator(CodeGenerator):
    """Jinja's code generator with every ``{% for %}`` iterable passed through
    ``environment.budget_iter`` and every ``~`` concatenation through ``environment.sized``."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        """Wrap the loop's iterable so each iteration can look at the clock."""
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("budget_iter", lineno=node.iter.lineno),
            [node.iter],
            [],
            None,
            None,
            lineno=node.iter.lineno,
        )
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        """Check the size of a ``~`` concatenation's result."""
        self.write("environment.sized(")
        super().visit_Concat(node, frame)
        self.write(")")


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` behind the clock and size checks, as a ``pass_context`` filter (never folded)."""
    pass_arg = getattr(getattr(func, "jinja_pass_arg", None), "name", None)

    @pass_context
    @functools.wraps(func)
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_clock()
        if name in _WIDTH_FILTERS:
            _check_width_args((*args, *kwargs.values()), f"the result of the {name} filter")
            if name == "indent":
                lines = value.count("\n") + 1 if isinstance(value, str) else 1
                widths = [w for w in (*args[:1], kwargs.get("width")) if _int_arg(w) is not None]
                _check_count(lines * (widths[0] if widths else 4), "the result of the indent filter")
        elif name == "replace" and len(args) >= 2:
            _check_replace(value, *args[:3])
        elif name == "format" and isinstance(value, str):
            _check_printf(value, tuple(args) or (kwargs or ()))
        if pass_arg == "context":
            result = func(context, value, *args, **kwargs)
        elif pass_arg == "eval_context":
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif pass_arg == "environment":
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        return check_size(result, f"the result of the {name} filter")

    return guarded


class BudgetedSandbox(ImmutableSandboxedEnvironment):
    """An immutable sandbox that enforces the active :class:`RenderBudget` (see the module doc)."""

    code_generator_class = BudgetCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def guard_filters(self) -> None:
        """Wrap every registered filter (call after the last filter is added)."""
        for name, func in list(self.filters.items()):
            if not getattr(func, "_gateway_guarded", False):
                guarded = _guard_filter(name, func)
                guarded._gateway_guarded = True  # type: ignore[attr-defined]
                self.filters[name] = guarded

    @staticmethod
    def concat(parts: Iterable[str]) -> str:  # type: ignore[override]
        """``"".join`` for macro bodies, ``{% set %}`` blocks and filter blocks, size-checked first."""
        items = list(parts)
        _check_count(sum(len(p) for p in items), "a macro or block body")
        return "".join(items)

    @staticmethod
    def sized(value: Any) -> Any:
        """The result of a ``~`` concatenation, size-checked."""
        return check_size(value, "a concatenation")

    @staticmethod
    def budget_iter(iterable: Iterable[Any]) -> Iterator[Any]:
        """``iterable``, looking at the clock every few items."""
        _check_clock()
        for count, item in enumerate(iterable, 1):
            if count % _CLOCK_EVERY == 0:
                _check_clock()
            yield item

    def call_binop(self, context: Context, op: str, left: Any, right: Any) -> Any:
        """``*``, ``**``, ``+`` and ``%``: refused when the result would be over the budget."""
        _check_clock()
        _check_binop(op, left, right)
        return check_size(self.binop_table[op](left, right), "the result of an operator")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja's sandboxed ``str.format``, with field widths checked before formatting."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt = value.__self__

        @functools.wraps(wrapped)
        def checked(*args: Any, **kwargs: Any) -> str:
            values = [*args, *kwargs.values()]
            if value.__name__ == "format_map" and args and isinstance(args[0], dict):
                values = list(args[0].values())
            _check_format_string(fmt, values)
            return check_size(wrapped(*args, **kwargs), "the result of format")

        return checked

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Every call from a template: clock, width checks on ``str`` methods, result size."""
        _check_clock()
        _check_str_method(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        return check_size(result, "the result of a call")
