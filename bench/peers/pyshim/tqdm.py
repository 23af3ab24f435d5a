"""Stand-in for tqdm, which gguf-py's writer imports for its progress bars (not a Debian package here).

Counts what the writer reports and prints one line per whole 10% of the total to stderr; nothing else of tqdm's API.
"""
import sys


class tqdm:
    def __init__(self, iterable=None, desc="", total=None, **_):
        self.iterable, self.desc, self.total, self.n, self._shown = iterable, desc, total, 0, -1

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)

    def set_description(self, desc):
        self.desc = desc

    def reset(self, total=None):
        self.total, self.n, self._shown = total, 0, -1

    def update(self, n=1):
        self.n += n
        if self.total:
            tenth = int(10 * self.n / self.total)
            if tenth != self._shown:
                self._shown = tenth
                print(f"{self.desc}: {10 * tenth}%", file=sys.stderr, flush=True)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
