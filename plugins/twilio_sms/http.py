"""The HTTP client the ``twilio`` library sends through: Twilio's async client, pointed at a
configurable base URL, with real timeouts and a record of the answer's headers.

``twilio`` has no base-URL setting, so :class:`RebasedAsyncTwilioHttpClient` swaps the scheme and
host of every URL the library builds for ``api_base_url`` (keeping path and query). Its
``request`` also applies the channel's timeout (the library's own passes none to aiohttp),
records the headers of error answers (:func:`.errors.capture_response_headers`), because
``TwilioRestException`` does not carry ``Retry-After``, and encodes the form itself: the same
``application/x-www-form-urlencoded`` bytes aiohttp would send for the library's dict, without
aiohttp building a multipart-capable ``FormData`` (and drawing a random boundary) per message,
which cost about a fifth of a send's time.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response

from .errors import record_error_headers

__all__ = ["RebasedAsyncTwilioHttpClient", "encode_form"]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_FORM_VALUE = (str, int, float)
#: Rebased URLs kept (the Messages URL, and a few fetched by SID while reconciling).
_REBASED_KEPT = 64

def encode_form(data: dict[str, object]) -> bytes | None:
    """``data`` as the form body aiohttp sends for a dict (``urlencode`` with ``doseq``, UTF-8),
    or None when a value is not plain text or numbers (or a list of them): aiohttp then encodes
    it itself."""
    pairs: list[str] = []
    for key, value in data.items():
        name = _quote_form(str(key))
        if isinstance(value, list | tuple):
            if not all(isinstance(item, _FORM_VALUE) for item in value):
                return None
            pairs.extend(f"{name}={_quote_form(str(item))}" for item in value)
        elif isinstance(value, _FORM_VALUE):
            pairs.append(f"{name}={_quote_form(str(value))}")
        else:
            return None
    return "&".join(pairs).encode("ascii")


#: What each UTF-8 byte becomes in a form (``quote_plus``): unreserved characters as they are,
#: a space as ``+``, every other byte as ``%XX``.
_FORM_BYTES = tuple(
    chr(byte) if chr(byte).isascii() and (chr(byte).isalnum() or chr(byte) in "_.-~")
    else "+" if byte == 0x20
    else f"%{byte:02X}"
    for byte in range(256)
)


def _quote_form(text: str) -> str:
    """``urllib.parse.quote_plus(text)``, by table (it joins a list built a byte at a time:
    the largest part of encoding a message's form)."""
    return "".join(map(_FORM_BYTES.__getitem__, text.encode("utf-8")))


class RebasedAsyncTwilioHttpClient(AsyncTwilioHttpClient):
    """``AsyncTwilioHttpClient`` sending to ``api_base_url`` over one pooled aiohttp session.

    Create it inside a running event loop and ``await close()`` it.
    """

    def __init__(
        self,
        api_base_url: str,
        *,
        timeout: float,
        pool_size: int = 100,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(
            pool_connections=False,
            timeout=timeout,
            logger=logger or logging.getLogger("gateway.twilio_sms.http"),
        )
        base = urlsplit(api_base_url)
        if base.scheme not in ("http", "https") or not base.netloc:
            raise ValueError(f"api_base_url must be an http(s) URL, got {api_base_url!r}")
        self._scheme = base.scheme
        self._netloc = base.netloc
        self._path_prefix = base.path.rstrip("/")
        # connect: before anything is sent (safe to retry); sock_read: waiting for the
        # answer after the request went out (outcome unknown).
        self._client_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_read=timeout
        )
        self._auth_cache: tuple[tuple[str, str], str] | None = None
        # Every send posts to the same Messages URL: rebased once, not parsed per message.
        self._rebased: dict[str, str] = {}
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool_size, limit_per_host=pool_size),
            timeout=self._client_timeout,
        )

    def _authorization(self, auth: tuple[str, str]) -> str:
        if self._auth_cache is None or self._auth_cache[0] != auth:
            self._auth_cache = (auth, aiohttp.encode_basic_auth(auth[0], auth[1]))
        return self._auth_cache[1]

    def rebase(self, url: str) -> str:
        """``url`` with the scheme and host of ``api_base_url`` (and its path as a prefix)."""
        rebased = self._rebased.get(url)
        if rebased is None:
            parts = urlsplit(url)
            rebased = urlunsplit(
                (self._scheme, self._netloc, self._path_prefix + parts.path, parts.query, "")
            )
            if len(self._rebased) >= _REBASED_KEPT:
                self._rebased.clear()
            self._rebased[url] = rebased
        return rebased

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the twilio HttpClient signature
        allow_redirects: bool = False,
    ) -> Response:
        """Send one API request to the rebased URL; network errors propagate from aiohttp."""
        if self.session is None:  # pragma: no cover - closed client
            raise RuntimeError("the Twilio HTTP client is closed")
        request_headers = dict(headers or {})
        if auth is not None:
            request_headers["Authorization"] = self._authorization(auth)
        body: bytes | dict[str, object] | None = data
        if data and request_headers.get("Content-Type", FORM_CONTENT_TYPE) == FORM_CONTENT_TYPE:
            encoded = encode_form(data)
            if encoded is not None:
                body = encoded
                request_headers["Content-Type"] = FORM_CONTENT_TYPE
        kwargs: dict[str, Any] = {
            "params": params or None,
            "data": body,
            "headers": request_headers,
            "allow_redirects": allow_redirects,
        }
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(connect=timeout, sock_read=timeout)
        async with self.session.request(method.upper(), self.rebase(url), **kwargs) as answer:
            text = await answer.text()
            if answer.status >= 400:
                record_error_headers(answer.headers)
            self.logger.debug("Twilio API %s %s -> %s", method.upper(), answer.url.path,
                              answer.status)
            return Response(answer.status, text, answer.headers)

    async def close(self) -> None:
        """Close the pooled session."""
        if self.session is not None:
            await self.session.close()
            self.session = None
