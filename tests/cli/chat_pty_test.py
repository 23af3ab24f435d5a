#!/usr/bin/env python3
"""whale chat driven through a pseudo-terminal, as a person would use it: two turns, /help, a multi-line message,
/clear, Ctrl-C during a long answer (generation stops, the program does not), then /exit. On a terminal the
reasoning of the R1 template (the model starts inside <think>) is dimmed with ANSI escapes; --hide-thinking hides it.

Usage: chat_pty_test.py --whale BIN --model DIR
"""
import argparse
import os
import pty
import re
import select
import signal
import sys
import time

failures = []
checks = [0]


class Session:
    def __init__(self, argv):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(argv[0], argv)
        self.out = b""

    def read_until(self, pattern, timeout=60):
        """Reads until `pattern` (bytes regex) matches the output after the last call; returns that output."""
        start, deadline = len(self.out), time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.out[start:], re.S)
            if m:
                chunk = self.out[start:start + m.end()]
                self.out = self.out[:start + m.end()] + self.out[start + m.end():]
                self.mark = start + m.end()
                return chunk
            r, _, _ = select.select([self.fd], [], [], 0.2)
            if r:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                self.out += data
        raise TimeoutError(f"no {pattern!r} in {self.out[start:][-400:]!r}")

    def send(self, text):
        os.write(self.fd, text.encode())

    def wait(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            try:
                while select.select([self.fd], [], [], 0.1)[0] and os.read(self.fd, 65536):
                    pass
            except OSError:
                time.sleep(0.1)
        os.kill(self.pid, signal.SIGKILL)
        return None


def check(name, ok, detail=""):
    checks[0] += 1
    print(f"[{'ok' if ok else 'FAIL'}] {name}" + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whale", required=True)
    ap.add_argument("--model", required=True)
    a = ap.parse_args()
    base = [a.whale, "chat", "--model", a.model, "--seed", "7", "--temp", "1"]

    s = Session(base + ["-n", "40", "--ctx", "60000"])
    try:
        s.read_until(rb"> ")
        s.send("What is 2+2?\r")
        turn1 = s.read_until(rb"tok/s[^\]]*\][^\n]*\n.*?> ")
        check("first answer streams and reports tok/s", b"tokens," in turn1, turn1[-200:])
        check("reasoning is dimmed on a terminal", b"\x1b[2m" in turn1, turn1[:200])
        s.send("And 3+3? \\\r")
        s.read_until(rb"\. ")
        s.send("Think again.\r")
        turn2 = s.read_until(rb"tok/s[^\]]*\][^\n]*\n.*?> ")
        check("second turn (multi-line message)", b"tokens," in turn2, turn2[-200:])
        s.send("/help\r")
        check("/help", b"/clear" in s.read_until(rb"Ctrl-C stops an answer.*?> "))
        s.send("/clear\r")
        check("/clear", b"conversation cleared" in s.read_until(rb"cleared.*?> "))
    except TimeoutError as e:
        check("conversation", False, str(e))
    s.send("/exit\r")
    check("/exit quits with status 0", s.wait() == 0)

    # Ctrl-C: an answer that would run for a long time stops, and the program asks for the next message.
    s = Session(base + ["--ignore-eos", "--ctx", "60000"])
    try:
        s.read_until(rb"> ")
        s.send("Tell me a long story.\r")
        time.sleep(1.0)
        s.send("\x03")
        stopped = s.read_until(rb"stopped by Ctrl-C[^\n]*\n.*?> ", timeout=60)
        check("Ctrl-C stops the answer", b"stopped by Ctrl-C" in stopped, stopped[-200:])
        s.send("Still there?\r")
        time.sleep(1.0)  # a Ctrl-C typed before the line is read would discard it (the terminal flushes input)
        s.send("\x03")
        again = s.read_until(rb"stopped by Ctrl-C[^\n]*\n.*?> ", timeout=60)
        check("chat continues after Ctrl-C", b"tokens," in again, again[-200:])
    except TimeoutError as e:
        check("Ctrl-C", False, str(e))
    s.send("/exit\r")
    check("/exit after Ctrl-C", s.wait() == 0)

    # --hide-thinking: no dim escapes, and nothing of the reasoning is shown.
    s = Session(base + ["-n", "40", "--hide-thinking"])
    try:
        s.read_until(rb"> ")
        s.send("What is 2+2?\r")
        turn = s.read_until(rb"tok/s[^\]]*\][^\n]*\n.*?> ")
        body = turn.split(b"\n", 1)[1] if b"\n" in turn else turn
        check("--hide-thinking shows no dimmed reasoning", b"\x1b[2m" not in body.split(b"[")[0], body[:200])
    except TimeoutError as e:
        check("--hide-thinking", False, str(e))
    s.send("\x04")  # Ctrl-D
    check("Ctrl-D quits", s.wait() == 0)

    print(f"{checks[0] - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
