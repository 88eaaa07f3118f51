"""What the operator can do next about a move, in words: the executor names the advice, the readers word it here."""

from __future__ import annotations

from hostmap.results import Advice, MoveResult


def advice_text(advice: Advice) -> str:
    """The advice as a sentence for the operator."""
    kind, host = advice.kind, advice.host
    if kind == "check":
        return "check it with `openstack server migration list`, or run hostmap apply again to watch it"
    if kind == "rerun":
        return "it is safe to run hostmap again"
    if kind == "left_running":
        return "left running (--on-timeout leave)"
    if kind == "confirm_cold":
        return (f"once the server is VERIFY_RESIZE on {host}, run hostmap apply again to confirm it "
                "(or `openstack server resize confirm`)")
    return f"run hostmap apply again to move it on to {host}"


def explained(move: MoveResult) -> str:
    """The move's reason followed by what to do next, as the report, the log and the journal show it."""
    if move.advice is None:
        return move.reason
    text = advice_text(move.advice)
    return f"{move.reason}; {text}" if move.reason else text
