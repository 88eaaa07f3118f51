"""The operator's transcript: `apply` in a pseudo-terminal of 80 columns, replayed in a terminal emulator."""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

import pexpect
import pyte

from conftest import scenario, write_json

COLUMNS, LINES = 80, 24


def _screen_text(output: bytes) -> str:
    """What an operator can read after the run, scrollback first, as pyte draws it: one string, a line a row."""
    screen = pyte.HistoryScreen(COLUMNS, LINES, history=10_000, ratio=0.5)
    stream = pyte.ByteStream(screen)
    stream.feed(output)
    rows = ["".join(line[x].data for x in range(COLUMNS)) for line in screen.history.top]
    rows += list(screen.display)
    return "\n".join(row.rstrip() for row in rows)


def _squeezed(text: str) -> str:
    """`text` without any whitespace: a question that wrapped at 80 columns reads the same as one that did not."""
    return re.sub(r"\s+", "", text)


def test_every_prompt_and_answer_stays_in_the_transcript_at_80_columns(tmp_path: Path) -> None:
    """In a terminal of 80 columns, with the live display drawing migrations in flight between questions that wrap,
    the plan's question, every move's question and each answer typed are on the final screen or in its scrollback."""
    data = scenario(migration={"setup_s": 1.5})
    names = {"compute001": "web-0-with-a-long-name-that-makes-the-question-wrap",
             "compute003": "cache-0-with-a-long-name-that-makes-the-question-wrap"}
    for server in data["servers"]:
        if server["host"] in names and server["name"] in ("web-0", "cache-0"):
            server["name"] = names[server["host"]]
    scenario_file = write_json(tmp_path / "scenario.json", data)
    host_map = write_json(tmp_path / "map.json", {"compute004": sorted(names.values())})
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(TERM="xterm", COLUMNS=str(COLUMNS), LINES=str(LINES))
    output = io.BytesIO()
    child = pexpect.spawn(sys.executable, ["-m", "hostmap", "apply", str(host_map), "--sim-scenario",
                                           str(scenario_file), "--log-file", str(tmp_path / "log"),
                                           "--journal", str(tmp_path / "journal.sqlite")],
                          env=env, timeout=60, dimensions=(LINES, COLUMNS))
    child.logfile_read = output
    asked: list[tuple[str, str]] = []
    child.expect_exact(b"Go on? [y]es, asking before each migration/[a]ll, without asking/[n]o: ")
    child.sendline("y")
    asked.append(("Go on? [y]es, asking before each migration/[a]ll, without asking/[n]o: ", "y"))
    for answer in ("y", "y"):
        child.expect(rb"Migrate [^\r\n]*?\[q\]uit: ")
        question = child.after.decode()
        assert len(question) > COLUMNS  # it wraps
        child.sendline(answer)
        asked.append((question, answer))
    child.expect(pexpect.EOF)
    child.close()
    raw = output.getvalue()
    assert child.exitstatus == 0, raw.decode(errors="replace")
    transcript = _squeezed(_screen_text(raw))
    assert _squeezed("hostmap: the plan: 2 migrations;") in transcript
    for question, answer in asked:
        assert _squeezed(question + answer) in transcript, (question, _screen_text(raw))
    for name in names.values():
        assert _squeezed(f"migrated {name} ") in transcript
