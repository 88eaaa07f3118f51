"""Secrets kept out of logs: a filter for every handler that may carry HTTP requests (`--debug`)."""

from __future__ import annotations

import logging
import re

#: What stands in for a secret.
HIDDEN = "***"

_PATTERNS = (
    # A JSON or Python-repr field that holds a secret: "password": "...", 'secret': '...', "token": "...".
    re.compile(r"""(?P<key>["'](?:password|secret|token|auth_token|os_password|client_secret)["']\s*:\s*)"""
               r"""(?P<q>["'])(?P<value>(?:\\.|(?!(?P=q)).)*)(?P=q)""", re.IGNORECASE),
    # Token headers, as curl lines or header dicts show them, unless keystoneauth already hashed them ({SHA256}...).
    re.compile(r"""(?P<key>\b(?:X-Auth-Token|X-Subject-Token|X-Service-Token)["']?\s*[:=]\s*["']?)"""
               r"""(?P<value>(?!\{SHA256\})[^\s"',}]+)""", re.IGNORECASE),
    # Variables and options written out: OS_PASSWORD=..., --os-password ..., password=... in a URL query.
    re.compile(r"""(?P<key>\b(?:OS_PASSWORD|OS_TOKEN|OS_AUTH_TOKEN)=|--os-(?:password|token)[ =]|[?&]password=)"""
               r"""(?P<value>[^\s&"']+)""", re.IGNORECASE),
)


def redacted(text: str) -> str:
    """`text` with every secret it shows replaced by HIDDEN."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group("key") + (m.groupdict().get("q") or "") + HIDDEN
                           + (m.groupdict().get("q") or ""), text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with its secrets hidden (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redacted(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
