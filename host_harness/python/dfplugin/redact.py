"""Redaction of secrets in text dfplugin shows: reprs, log records and exception messages.

Object store options carry credentials (``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``azure_storage_account_key``, ...) and table URIs may embed them too
(``s3://user:pass@host/t``, pre-signed URLs with ``X-Amz-Signature=...``). Everything this
package builds for humans from options or URIs goes through this module, so the rule lives
in one place:

* an option whose *name* looks secret (case-insensitive, contains ``secret``, ``password``,
  ``passwd``, ``token``, ``credential``, ``key``, ``signature`` or ``authorization``; e.g.
  ``aws_access_key_id`` too) has its value replaced by ``***``; ``aws_region``,
  ``endpoint``, ``table_uri`` are kept;
* text dfplugin did not write itself (the plugin's error messages) has URLs redacted and,
  when the options it is about are known, every secret value from them masked
  (:func:`secret_values`, :func:`mask_values`);
* in a URL, the userinfo (``scheme://user:pass@host`` -> ``scheme://***@host``) and the
  values of secret-looking query parameters (``X-Amz-Signature``, ``X-Amz-Credential``,
  ``X-Amz-Security-Token``, ``sig``, ``signature``, ``token``, ...) become ``***``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, List, Mapping

__all__ = [
    "MASK",
    "is_secret_key",
    "redact_value",
    "redact_url",
    "redact_text",
    "redact_options",
    "redact_json",
    "secret_values",
    "mask_values",
]

#: What a secret is replaced with.
MASK = "***"

_SECRET_WORDS = ("secret", "password", "passwd", "token", "credential", "key", "signature", "authorization")
#: Query parameters that are secret although their name does not say so (Azure SAS ``sig``).
_SECRET_QUERY_NAMES = frozenset({"sig"})

# scheme://authority...: up to whitespace or a quote / bracket that typically ends a URL in prose.
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^\s'\"<>`]+)")


def is_secret_key(name: Any) -> bool:
    """Whether an option or query parameter called ``name`` holds a secret."""
    lowered = str(name).lower()
    return lowered in _SECRET_QUERY_NAMES or any(word in lowered for word in _SECRET_WORDS)


def _redact_query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        name, sep, value = item.partition("=")
        parts.append(f"{name}={MASK}" if sep and value and is_secret_key(name) else item)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """``url`` with its userinfo and secret-looking query parameter values replaced by ``***``.

    Text that is not a ``scheme://...`` URL is returned unchanged (local paths, ``file:///``
    URLs without userinfo, ...).
    """
    match = _URL.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        return url
    scheme, rest = match.group(1), match.group(2)
    # authority ends at the first '/', '?' or '#'
    end = len(rest)
    for sep in "/?#":
        i = rest.find(sep)
        if 0 <= i < end:
            end = i
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        authority = MASK + "@" + authority.rsplit("@", 1)[1]
    fragment = ""
    if "#" in tail:
        tail, fragment = tail.split("#", 1)
        fragment = "#" + fragment
    if "?" in tail:
        path, query = tail.split("?", 1)
        tail = path + "?" + _redact_query(query)
    return scheme + authority + tail + fragment


def redact_text(text: str) -> str:
    """Free text (e.g. an error message) with every URL in it passed through :func:`redact_url`.

    Only URLs are rewritten: free text gives no reliable way to tell an option's value from
    prose (``unknown key: 'x'`` is not a secret).
    """
    if not isinstance(text, str) or "://" not in text:
        return text
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def redact_value(name: Any, value: Any) -> Any:
    """The value of option ``name`` for display: ``***`` when ``name`` looks secret, URLs
    redacted, nested mappings and lists redacted recursively, anything else as is."""
    if is_secret_key(name):
        return MASK
    return _redact_any(value)


def _redact_any(value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact_options(value)
    if isinstance(value, (list, tuple)):
        return [_redact_any(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_options(options: Mapping[str, Any]) -> dict:
    """A copy of ``options`` (e.g. ``storage_options``, or a table provider's whole options
    object) fit for display; see :func:`redact_value`."""
    return {k: redact_value(k, v) for k, v in options.items()}


# "name": "value" / name = 'value' pairs in text that is not valid JSON.
_PAIR = re.compile(r"""(?P<q>["']?)(?P<name>[A-Za-z0-9_.\-]+)(?P=q)(?P<sep>\s*[:=]\s*)(?P<vq>["'])(?P<value>.*?)(?P=vq)""")


def _mask_pair(m: "re.Match[str]") -> str:
    if not is_secret_key(m.group("name")):
        return m.group(0)
    q, vq = m.group("q"), m.group("vq")
    return f"{q}{m.group('name')}{q}{m.group('sep')}{vq}{MASK}{vq}"


def redact_json(text: Any) -> str:
    """JSON options text (``'{"table_uri": ..., "storage_options": {...}}'``) fit for display.

    Valid JSON is parsed, redacted structurally and printed again (keys sorted). Text that is
    not valid JSON is still shown with quoted values of secret-looking names masked and URLs
    redacted, since it may be a near-miss of options that hold credentials.
    """
    if text is None:
        return "null"
    text = str(text)
    try:
        parsed = json.loads(text)
    except ValueError:
        return redact_text(_PAIR.sub(_mask_pair, text))
    return json.dumps(_redact_any(parsed), sort_keys=True)


#: Secret values shorter than this are not searched for in free text (they would mask
#: ordinary words such as ``true``); real credentials are far longer.
_MIN_SECRET_LENGTH = 8


def secret_values(options: Any) -> List[str]:
    """The secret strings in ``options`` (a mapping, or its JSON text): values of
    secret-looking names, and the userinfo and secret query values of URLs anywhere in it.
    Longest first, so that :func:`mask_values` masks a secret before any part of it."""
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except ValueError:
            return []
    found: set = set()

    def walk(name: Any, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(k, v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(name, v)
        elif value is not None and not isinstance(value, bool):
            text = str(value)
            if name is not None and is_secret_key(name):
                found.add(text)
            for m in _URL.finditer(text):
                found.update(_url_secrets(m.group(0)))

    walk(None, options)
    return sorted((v for v in found if len(v) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


def _url_secrets(url: str) -> List[str]:
    rest = url.split("://", 1)[1]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    out: List[str] = []
    if "@" in authority:
        userinfo = authority.rsplit("@", 1)[0]
        out += [userinfo] + userinfo.split(":")
    if "?" in rest:
        for item in rest.split("?", 1)[1].split("#", 1)[0].split("&"):
            name, sep, value = item.partition("=")
            if sep and value and is_secret_key(name):
                out.append(value)
    return out


def mask_values(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each of ``secrets`` replaced by ``***``, and URLs
    redacted (:func:`redact_text`)."""
    if not isinstance(text, str):
        return text
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return redact_text(text)
