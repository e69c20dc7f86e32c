"""Quote stripping and HTML to text on bodies built to be slow: they finish (each test carries a
timeout; the old code took seconds to forever on the same input), keep what a family wrote, and
fall back to the raw text when the time budget is used up; markup the parser gives up on still
yields text."""

from __future__ import annotations

import pytest
from email_helpers import FROM_ADDRESS, REPLY_DOMAIN
from gateway_plugins.smtp_email.inbound_mail import ReplyMail, parse_incoming_mail, raw_reply
from gateway_plugins.smtp_email.reply_text import MAX_HTML_CHARS, html_to_text, latest_reply_text

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    "body",
    [
        "On " + "a " * 4000,  # 1.8 s before
        "On " + "a " * 50000,  # never finished before
        " ".join(["word"] * 50000),
        ("On " + "a " * 98 + ":\n") * 500,  # many lines that look like attribution starts
        "a" + "\n" * 100000 + "b",  # the signature pattern backtracks on blank runs
        "a" + " \n" * 50000,
    ],
)
def test_hostile_bodies_finish_and_keep_the_text(body: str) -> None:
    text = latest_reply_text(body)
    assert text.split()[:1] == body.split()[:1]  # nothing the family wrote was cut away


def test_a_quote_after_a_long_answer_is_still_cut() -> None:
    answer = "We will come. " * 2000
    body = f"{answer}\n\nOn Tue, Mar 4, 2027 at 5:30 PM Mr. Okafor <l@d.example> wrote:\n> Dear family"
    assert latest_reply_text(body) == answer.strip()


def test_over_budget_falls_back_to_the_raw_text() -> None:
    body = "Yes.\n\nOn Tue, Mar 4, 2027 Okafor wrote:\n> Dear family"
    assert latest_reply_text(body, budget=-1) == body
    assert latest_reply_text(body) == "Yes."


@pytest.mark.parametrize(
    "html",
    [
        "<a" * 50000,  # quadratic in html.parser (34 s before)
        "<![" * 30000,  # html.parser gives up (AssertionError) on this
        "<div>" * 20000 + "x" + "</div>" * 20000,
        "<script>" + "<" * 100000,
        "<p>hello</p>" * 50000,
    ],
)
def test_hostile_html_finishes(html: str) -> None:
    text = html_to_text(html)
    assert len(text) <= MAX_HTML_CHARS


def test_html_over_budget_is_stripped_of_its_tags() -> None:
    html = "<p>Yes, <b>two</b> of us</p><blockquote>old</blockquote>"
    assert html_to_text(html) == "Yes, two of us"
    assert html_to_text(html, budget=-1).split() == ["Yes,", "two", "of", "us", "old"]


def test_a_mail_that_cannot_be_parsed_is_still_a_reply() -> None:
    raw = (
        b"From: Amina <amina@families.example>\r\nTo: reply+tok1@" + REPLY_DOMAIN.encode() + b"\r\n"
        b"Message-ID: <m9@families.example>\r\nSubject: Re: bus\r\n\r\nyes we come\r\n"
    )
    fallback = raw_reply(raw, channel="email", reply_domain=REPLY_DOMAIN)
    assert isinstance(fallback, ReplyMail)
    message = fallback.message
    assert (message.sender, message.text, message.reply_token) == (
        "amina@families.example",
        "yes we come",
        "tok1",
    )
    own = frozenset({FROM_ADDRESS})
    parsed = parse_incoming_mail(raw, channel="email", reply_domain=REPLY_DOMAIN, own_addresses=own)
    assert isinstance(parsed, ReplyMail)
    assert parsed.message.provider_message_id == message.provider_message_id  # one id either way


async def test_a_parse_past_its_limit_ends_the_worker_and_the_next_mail_gets_a_new_one() -> None:
    from gateway_plugins.smtp_email.parse_worker import MailParseWorker

    slow = (
        b"From: a@families.example\r\nMessage-ID: <slow@families.example>\r\n\r\n"
        + ("On " + "a " * 98 + ":\n").encode() * 500
    )
    quick = b"From: a@families.example\r\nMessage-ID: <quick@families.example>\r\n\r\nyes\r\n"
    worker = MailParseWorker(timeout=0.05)  # far below what the slow one needs
    try:
        with pytest.raises(TimeoutError):
            await worker.parse(slow, channel="email", reply_domain=REPLY_DOMAIN)
        worker.timeout = 30
        parsed = await worker.parse(quick, channel="email", reply_domain=REPLY_DOMAIN)
        assert isinstance(parsed, ReplyMail) and parsed.message.text == "yes"
    finally:
        await worker.close()
