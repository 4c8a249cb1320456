#!/usr/bin/env python3
"""Runs every fenced block of README.md and docs/*.md against the real binary,
so the docs cannot drift from what cohortd does (driven by tests/docs.rs).

Convention (README.md points here):

* ```sh blocks are run, one command at a time (a line ending in `\\` or an open
  quote continues the command). `# ` lines directly under a command, with no
  blank line between, are its expected output; a `#` line after a blank line is
  a comment. A line `#  more` (two spaces) continues the previous expected line.
* ```console blocks: `$ command`, then its expected output up to the next `$`.
* A command that exits non-zero fails the block unless the next command is
  `echo $?`, whose expected output is that exit status.
* A marker, an HTML comment on the line before the fence, says what to do with
  any other block, and is required for every block that is not sh or console:
    <!-- doctest: skip REASON -->      not run (kubectl, docker, Go, benchmarks...)
    <!-- doctest: run setup: CMD -->   run, after the hidden shell command CMD
    <!-- doctest: output -->           the output of the previous block's last command
    <!-- doctest: log -->              lines that must appear in the log of the
                                       running `serve` (a line indented with
                                       spaces continues the previous one)
    <!-- doctest: background -->      start the block's commands in the background
                                       (a Watch stream); the first expected line
                                       must appear before the doc goes on, the rest
                                       by the end of the file
    <!-- doctest: config NAME -->      a config file: saved as NAME and checked
                                       with `cohortd validate`
  A block of another kind without a marker fails the run: say why it is skipped.
* Expected text matches the output line by line: `...` inside a line matches any
  text, a line that is only `...` matches any number of lines. Run-specific
  values are compared by shape: RFC 3339 timestamps and durations (`12ms`,
  `1.5s`) become placeholders on both sides.
* Commands run in a scratch directory holding links to the repository's
  top-level entries, with `cohortd`, `python` and `grpcurl` on PATH: `cohortd`,
  `cargo run --release --`, `cargo run --` and `target/*/cohortd` are the binary
  cargo test built (CI never does a second, release build), `python` and
  `.venv/bin/python` are $COHORTD_PYTHON, `grpcurl` is .tools/bin/grpcurl.
  `/tmp/`, `/run/` and `/etc/cohortd` are mapped into the scratch directory and
  ports 8013/8014 (and OFREP 8016, sync 8015) to free ports (and back, in
  outputs), so runs never collide.
* `cohortd serve` runs in the background until the next `serve` or the end of
  the file; the harness waits for its /readyz to answer 200.
* Blocks calling grpcurl run when .tools/bin/grpcurl exists, and are required
  when CI=true; the same holds for Python blocks and $COHORTD_PYTHON.

Bounded: every command has a timeout, expected output is retried for at most
RETRY_SECONDS (a reload is debounced), every server is stopped at the end of
its file. Prints blocks run/skipped per file; exits 1 on any failure.

One file of about 500 lines on purpose: the convention and the code that
enforces it are read together, and the script needs nothing but the standard
library.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

COMMAND_TIMEOUT = 120.0
RETRY_SECONDS = 15.0
READY_SECONDS = 30.0
START_SECONDS = 60.0  # a background client's first line (Python starts slowly on a loaded box)

MARKER = re.compile(r"^<!--\s*doctest:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
DURATION = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:ns|µs|us|ms|s)(?![\w])")
CONTINUE = "\x00"  # joins a continued expected line; matches optional whitespace


class Failure(Exception):
    pass


class Block:
    def __init__(self, lang: str, body: list[str], line: int, marker: str | None):
        self.lang, self.body, self.line, self.marker = lang, body, line, marker


def parse_blocks(text: str) -> list[Block]:
    blocks, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        marker = None
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and (mm := MARKER.match(lines[j].strip())):
            marker = mm.group(1)
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        if i >= len(lines):
            raise Failure(f"line {start}: fenced block never closed")
        blocks.append(Block(m.group(1), body, start, marker))
        i += 1
    return blocks


def complete(cmd: str) -> bool:
    if cmd.endswith("\\"):
        return False
    try:
        shlex.split(cmd)
    except ValueError:
        return False
    return True


def parse_sh(body: list[str]) -> list[tuple[str, list[str]]]:
    """[(command, expected lines)] of a ```sh block."""
    cmds: list[tuple[str, list[str]]] = []
    open_expect = False
    i = 0
    while i < len(body):
        line = body[i]
        if not line.strip():
            open_expect = False
        elif line.lstrip().startswith("#"):
            if open_expect:
                s = line.lstrip()[1:]
                s = s[1:] if s.startswith(" ") else s
                if s.startswith(" ") and cmds[-1][1]:
                    cmds[-1][1][-1] += CONTINUE + s.strip()
                else:
                    cmds[-1][1].append(s)
        else:
            cmd = line
            while not complete(cmd) and i + 1 < len(body):
                i += 1
                cmd += "\n" + body[i]
            cmds.append((cmd, []))
            open_expect = True
        i += 1
    return cmds


def parse_console(body: list[str]) -> list[tuple[str, list[str]]]:
    cmds: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(body):
        line = body[i]
        if line.startswith("$ "):
            cmd = line[2:]
            while not complete(cmd) and i + 1 < len(body):
                i += 1
                cmd += "\n" + body[i]
            cmds.append((cmd, []))
        elif cmds:
            cmds[-1][1].append(line)
        elif line.strip():
            raise Failure(f"console block: output line before any `$ ` command: {line!r}")
        i += 1
    for _, exp in cmds:
        while exp and not exp[-1].strip():
            exp.pop()
    return cmds


def line_regex(line: str) -> str:
    parts = [re.escape(p) for p in line.rstrip().split("...")]
    return ".*?".join(parts).replace(re.escape(CONTINUE), r"\s*")


def expected_regex(lines: list[str]) -> re.Pattern:
    out, first = "", True
    for line in lines:
        if line.strip() == "...":
            out += r"(?:[^\n]*\n?)*?" if first else r"(?:\n[^\n]*)*?"
            continue
        out += ("" if first else r"\n") + line_regex(line)
        first = False
    return re.compile(out, re.S)


def mismatch(expected: list[str], actual: str) -> str:
    exp = "\n".join(e.replace(CONTINUE, "") for e in expected)
    return f"--- expected (shape)\n{exp}\n--- actual (normalised)\n{actual}\n---"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runner:
    def __init__(self, repo: Path, binary: Path, python: Path | None, grpcurl: Path | None, ci: bool):
        self.repo, self.binary, self.python, self.grpcurl, self.ci = repo, binary, python, grpcurl, ci

    # ---- one file -------------------------------------------------------------

    def run_file(self, path: Path) -> tuple[int, list[str], list[str]]:
        """Returns (blocks run, skip reasons, failures)."""
        self.root = Path(tempfile.mkdtemp(prefix="cohortd-doctest-"))
        self.cwd = self.root / "work"
        self.cwd.mkdir()
        for entry in self.repo.iterdir():
            if entry.name not in {"target", ".git", ".venv", ".tools"}:
                (self.cwd / entry.name).symlink_to(entry)
        for d in ("tmp", "run", "etc"):
            (self.root / d).mkdir()
        shim = self.root / "bin"
        shim.mkdir()
        (shim / "cohortd").symlink_to(self.binary)
        if self.python:
            # A wrapper, not a link: a venv's python finds its packages from the
            # path it is started by.
            (shim / "python").write_text(f'#!/bin/sh\nexec "{self.python}" "$@"\n')
            (shim / "python").chmod(0o755)
        if self.grpcurl:
            (shim / "grpcurl").symlink_to(self.grpcurl)
        self.p1, self.p2 = free_port(), free_port()
        # OFREP (8016) and sync (8015) move too, so a run never collides with a
        # cohortd or flagd already running on this machine.
        self.p3, self.p4 = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("COHORTD_", "OTEL_", "FLAGD_"))}
        self.env.update(
            PATH=f"{shim}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            COHORTD_LISTEN=f"127.0.0.1:{self.p1}",
            COHORTD_ADMIN_LISTEN=f"127.0.0.1:{self.p2}",
            COHORTD_OFREP_LISTEN=f"127.0.0.1:{self.p3}",
            COHORTD_SYNC_LISTEN=f"127.0.0.1:{self.p4}",
            COHORTD_ADDR=f"127.0.0.1:{self.p1}",
            FLAGD_HOST="127.0.0.1",
            FLAGD_PORT=str(self.p1),
            TMPDIR=str(self.root / "tmp"),
        )
        self.server: tuple[subprocess.Popen, Path] | None = None
        self.background: list[tuple[subprocess.Popen, Path, list[str], str]] = []
        self.last_output: str | None = None
        self.last_skipped = False
        ran, skipped, failures = 0, [], []
        try:
            for block in parse_blocks(path.read_text()):
                where = f"{path.relative_to(self.repo)}:{block.line}"
                try:
                    reason = self.run_block(block)
                except Failure as e:
                    failures.append(f"{where}: {e}")
                    self.last_skipped = False
                    continue
                if reason is None:
                    ran += 1
                    self.last_skipped = False
                else:
                    skipped.append(f"{where}: {reason}")
                    self.last_skipped = True
            try:
                self.finish_background()
            except Failure as e:
                failures.append(f"{path.relative_to(self.repo)} (background): {e}")
        finally:
            self.stop_all()
            shutil.rmtree(self.root, ignore_errors=True)
        return ran, skipped, failures

    # ---- blocks ---------------------------------------------------------------

    def run_block(self, block: Block) -> str | None:
        """Runs a block; returns None, or why it was skipped."""
        mode, _, arg = (block.marker or "").partition(" ")
        arg = arg.strip()
        if mode == "skip":
            if not arg:
                raise Failure("`doctest: skip` needs a reason")
            return arg
        if mode == "config":
            return self.check_config(arg, block.body)
        if mode == "output":
            if self.last_skipped:
                return "output of a skipped block"
            if self.last_output is None:
                raise Failure("`doctest: output` with no command before it")
            self.compare(block.body, self.last_output)
            return None
        if mode == "log":
            return self.check_log(block.body)
        if block.lang not in {"sh", "console"}:
            raise Failure(
                f"a ```{block.lang or '(no language)'} block without a doctest marker: "
                "mark it `<!-- doctest: skip REASON -->` (or output/log/config)"
            )
        if mode not in {"", "run", "background"}:
            raise Failure(f"unknown doctest marker `{block.marker}`")
        cmds = parse_sh(block.body) if block.lang == "sh" else parse_console(block.body)
        text = "\n".join(c for c, _ in cmds)
        if re.search(r"(^|[\s/|;&(])grpcurl\s", text):
            if not self.grpcurl:
                if self.ci:
                    raise Failure("needs .tools/bin/grpcurl, which CI must install (.ci/setup-go.sh)")
                return "grpcurl not installed (.tools/bin/grpcurl)"
        if re.search(r"(^|[\s/|;&(])python3?\s", text) and not self.python:
            if self.ci:
                raise Failure("needs $COHORTD_PYTHON (.ci/setup-python.sh)")
            return "no Python venv ($COHORTD_PYTHON or .venv)"
        if mode == "run" and arg.startswith("setup:"):
            self.shell(arg[len("setup:"):].strip(), check=True)
        for i, (cmd, expected) in enumerate(cmds):
            if cmd.strip() == "echo $?":
                continue
            nxt = cmds[i + 1] if i + 1 < len(cmds) else None
            if mode == "background":
                self.start_background(cmd, expected)
            elif is_serve(self.map_cmd(cmd)):
                self.start_server(cmd, expected)
            else:
                self.run_command(cmd, expected, nxt)
        return None

    def run_command(self, cmd: str, expected: list[str], nxt) -> None:
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            code, out = self.shell(cmd)
            self.last_output = out
            status_ok = code == 0 or (nxt is not None and nxt[0].strip() == "echo $?")
            if not status_ok:
                raise Failure(f"`{cmd}` exited {code}:\n{out}")
            try:
                if expected:
                    self.compare(expected, out, cmd)
                if nxt is not None and nxt[0].strip() == "echo $?":
                    self.compare(nxt[1], str(code), f"{cmd}; echo $?")
                return
            except Failure:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def compare(self, expected: list[str], actual: str, what: str = "output") -> None:
        actual = self.normalise(actual)
        exp = [self.normalise(e) for e in expected]
        while exp and not exp[-1].strip():
            exp.pop()
        if not expected_regex(exp).fullmatch(actual):
            raise Failure(f"`{what}` printed something else:\n{mismatch(exp, actual)}")

    def check_config(self, name: str, body: list[str]) -> None:
        if not name:
            raise Failure("`doctest: config` needs a file name")
        d = Path(tempfile.mkdtemp(dir=self.root))
        (d / name).write_text("\n".join(body) + "\n")
        r = subprocess.run([str(self.binary), "validate", "--allow-empty", str(d)], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise Failure(f"config block is not valid:\n{r.stdout}{r.stderr}")

    def check_log(self, body: list[str]) -> None:
        if self.server is None:
            raise Failure("`doctest: log` block but no `cohortd serve` is running")
        want: list[str] = []
        for line in body:
            if line.startswith((" ", "\t")) and want:
                want[-1] += CONTINUE + line.strip()
            elif line.strip():
                want.append(line.strip())
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            log = self.normalise(self.server[1].read_text(errors="replace"))
            missing = [w for w in want if not re.search(line_regex(self.normalise(w)), log)]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise Failure("not in the server's log:\n" + "\n".join(m.replace(CONTINUE, " ") for m in missing) + f"\n--- log\n{log}")
            time.sleep(0.3)

    # ---- processes ------------------------------------------------------------

    def map_cmd(self, cmd: str) -> str:
        cmd = re.sub(r"cargo run (--release )?--(?=\s)", "cohortd", cmd)
        cmd = re.sub(r"(?<![\w/])target/(release|debug)/cohortd", "cohortd", cmd)
        cmd = re.sub(r"(?<![\w/])\.venv/bin/python", "python", cmd)
        cmd = cmd.replace("127.0.0.1:8013", f"127.0.0.1:{self.p1}").replace("127.0.0.1:8014", f"127.0.0.1:{self.p2}")
        for host in ("127.0.0.1", "localhost"):
            cmd = cmd.replace(f"{host}:8016", f"{host}:{self.p3}").replace(f"{host}:8015", f"{host}:{self.p4}")
        for p in ("/tmp/", "/run/", "/etc/cohortd"):
            cmd = re.sub(r"(?<![\w./])" + re.escape(p), str(self.root) + p, cmd)
        return re.sub(r"\s*&\s*$", "", cmd)

    def normalise(self, text: str) -> str:
        text = ANSI.sub("", text).replace(str(self.root), "")
        text = text.replace(f"127.0.0.1:{self.p1}", "127.0.0.1:8013").replace(f"127.0.0.1:{self.p2}", "127.0.0.1:8014")
        for host in ("127.0.0.1", "localhost"):
            text = text.replace(f"{host}:{self.p3}", f"{host}:8016").replace(f"{host}:{self.p4}", f"{host}:8015")
        text = TIMESTAMP.sub("<TIME>", text)
        text = DURATION.sub("<DURATION>", text)
        lines = [l.rstrip() for l in text.split("\n")]
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines)

    def shell(self, cmd: str, check: bool = False) -> tuple[int, str]:
        # Own session, so a timeout kills everything the command started.
        proc = subprocess.Popen(
            ["bash", "-o", "pipefail", "-c", self.map_cmd(cmd)],
            cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            raw, _ = proc.communicate(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            stop(proc)
            raise Failure(f"`{cmd}` did not finish in {COMMAND_TIMEOUT:.0f} s")
        finally:
            if proc.poll() is None:
                stop(proc)
        out = raw.decode(errors="replace")
        if check and proc.returncode != 0:
            raise Failure(f"setup `{cmd}` exited {proc.returncode}:\n{out}")
        return proc.returncode, out

    def spawn(self, cmd: str, log: Path) -> subprocess.Popen:
        with open(log, "wb") as f:
            return subprocess.Popen(
                ["bash", "-c", self.map_cmd(cmd)], cwd=self.cwd, env=self.env,
                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def start_server(self, cmd: str, expected: list[str]) -> None:
        if expected:
            raise Failure("`serve` with expected output: show its log in a `doctest: log` block")
        self.stop_server()
        log = Path(tempfile.mktemp(dir=self.root, suffix=".serve.log"))
        proc = self.spawn(cmd, log)
        self.server = (proc, log)
        m = re.search(r"--admin-listen[ =](\S+)", self.map_cmd(cmd))
        admin = m.group(1) if m else f"127.0.0.1:{self.p2}"
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise Failure(f"`{cmd}` exited {proc.returncode}:\n{self.normalise(log.read_text(errors='replace'))}")
            try:
                with urllib.request.urlopen(f"http://{admin}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise Failure(f"`{cmd}`: /readyz on {admin} not 200 within {READY_SECONDS:.0f} s:\n{log.read_text(errors='replace')}")

    def start_background(self, cmd: str, expected: list[str]) -> None:
        log = Path(tempfile.mktemp(dir=self.root, suffix=".bg.log"))
        proc = self.spawn(cmd, log)
        if expected:
            self.wait_output(proc, log, expected[:1], cmd, prefix=True, seconds=START_SECONDS)
        self.background.append((proc, log, expected, cmd))

    def wait_output(self, proc, log: Path, expected: list[str], cmd: str, prefix: bool = False,
                    seconds: float = RETRY_SECONDS) -> None:
        exp = [self.normalise(e) for e in expected] + (["..."] if prefix else [])
        deadline = time.monotonic() + seconds
        while True:
            exited = proc.poll() is not None
            out = self.normalise(log.read_text(errors="replace"))
            if expected_regex(exp).fullmatch(out):
                return
            if time.monotonic() > deadline or exited:
                raise Failure(f"`{cmd}` (background) printed something else:\n{mismatch(exp, out)}")
            time.sleep(0.2)

    def finish_background(self) -> None:
        for proc, log, expected, cmd in self.background:
            if expected:
                self.wait_output(proc, log, expected, cmd)

    def stop_server(self) -> None:
        if self.server:
            stop(self.server[0])
            self.server = None

    def stop_all(self) -> None:
        for proc, *_ in self.background:
            stop(proc)
        self.background = []
        self.stop_server()


def is_serve(cmd: str) -> bool:
    return re.search(r"(^|\s)cohortd\s+serve(\s|$)", cmd) is not None and "|" not in cmd


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group (what Ctrl-C or Kubernetes would send), then
    SIGKILL for whatever is left of it after 15 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description="Run the docs' fenced blocks against cohortd.")
    ap.add_argument("--repo", type=Path, required=True)
    ap.add_argument("--bin", type=Path, required=True, help="the cohortd binary")
    ap.add_argument("files", nargs="*", type=Path, help="default: README.md and docs/*.md")
    args = ap.parse_args()
    repo = args.repo.resolve()
    py = os.environ.get("COHORTD_PYTHON")
    python = Path(py) if py else repo / ".venv/bin/python"
    grpcurl = repo / ".tools/bin/grpcurl"
    ci = os.environ.get("CI", "").lower() == "true"
    runner = Runner(repo, args.bin.resolve(), python if python.exists() else None,
                    grpcurl if grpcurl.exists() else None, ci)
    files = [f.resolve() for f in args.files] or [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]
    total_fail: list[str] = []
    for f in files:
        try:
            ran, skipped, failures = runner.run_file(f)
        except Failure as e:
            ran, skipped, failures = 0, [], [f"{f.relative_to(repo)}: {e}"]
        print(f"{f.relative_to(repo)}: {ran} run, {len(skipped)} skipped, {len(failures)} failed", flush=True)
        for s in skipped:
            print(f"  skipped {s}")
        total_fail += failures
    for fail in total_fail:
        print(f"\nFAIL {fail}")
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main())
