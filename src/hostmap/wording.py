"""Small pieces of English shared by every printed report: counts with the right plural."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`1 migration`, `2 migrations`; `plural` for nouns that do not just take an s."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def printable(text: str) -> str:
    """`text` on one line and free of terminal control: control characters (a map key's `\\r`, an escape sequence
    from a server name) and line or paragraph separators are shown escaped, as Python writes them."""
    import unicodedata

    return "".join(repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
