"""The iarc task, variant "modifier", written from the spec (docs/tasks.md) alone:
a stream generator and a checker that reads a window's counted targets, their values
and their labels off the visible tokens. Independent of the C++ engine, so that the
two can be compared."""

import numpy as np

LETTERS = "IARC"


class ModifierStream:
    """Simulates one stream token by token. Data tokens 0..n-1; control tokens
    I = n, A = n+1, R = n+2, C = n+3."""

    def __init__(self, rng, n=16, tasks="IARC", p_c=0.25, gap_min=3, gap_max=9):
        self.rng, self.n, self.p_c = rng, n, p_c
        self.gap_min, self.gap_max = gap_min, gap_max
        self.task_letters = [c for c in "IAR" if c in tasks]
        self.c_enabled = "C" in tasks
        if not self.task_letters:
            raise ValueError(f"tasks = {tasks!r} enables none of I, A, R")

    def tokens(self, length):
        """The first `length` tokens of a fresh stream, as a list of ints."""
        n, rng = self.n, self.rng
        out = [int(rng.integers(n)), int(rng.integers(n))]
        history = list(out)      # D: every data token so far
        task, m = None, 0
        snapshot, k = [], 0      # R: Z and the data tokens since the R token
        while len(out) < length:
            # A control token: the first names a task; later ones are C with probability p_c.
            if task is not None and self.c_enabled and rng.random() < self.p_c:
                out.append(n + 3)
                m += 1
            else:
                task = self.task_letters[int(rng.integers(len(self.task_letters)))]
                out.append(n + LETTERS.index(task))
                m, k, snapshot = 0, 0, list(history)
            gap = int(rng.integers(self.gap_min, self.gap_max + 1))
            for _ in range(gap - 1):
                k += 1
                if task == "I":
                    y = history[-1] + 1 + m
                elif task == "A":
                    y = history[-1] + history[-2] + m
                elif k <= len(snapshot):   # R: Z[-k] + m
                    y = snapshot[-k] + m
                else:                      # R with Z too short: a uniform random token
                    y = int(rng.integers(n))
                out.append(y % n)
                history.append(y % n)
        return out[:length]


def read_window(tokens, n):
    """What the window alone determines, target by target (target t is tokens[t + 1]).

    Returns (counted, expected, labels): counted[t] is True iff the target is a data token
    whose task token, every C since it and every token its rule reads are in the window;
    expected[t] is then the rule's value (else None); labels[t] is "I", "A" or "R" when
    the task token is visible and m = 0, "C" when m >= 1, "-" for control tokens and None
    when the window does not show the task."""
    counted, expected, labels = [], [], []
    task, m = None, 0
    seen = []                  # visible data tokens so far
    z_len, k = 0, 0            # R: visible data before the R token, data since it
    for j, tok in enumerate(tokens):
        if tok >= n:
            letter = LETTERS[tok - n]
            if letter == "C":
                m += 1
            else:
                task, m, z_len, k = letter, 0, len(seen), 0
            value, label = None, "-"
        else:
            value = None
            if task == "I" and len(seen) >= 1:
                value = (seen[-1] + 1 + m) % n
            elif task == "A" and len(seen) >= 2:
                value = (seen[-1] + seen[-2] + m) % n
            elif task == "R" and k + 1 <= z_len:
                value = (seen[z_len - k - 1] + m) % n
            label = None if task is None else (task if m == 0 else "C")
            seen.append(tok)
            if task is not None:
                k += 1
        if j > 0:
            counted.append(value is not None)
            expected.append(value)
            labels.append(label)
    return counted, expected, labels


def sample_windows(count, T, seed, n=16, tasks="IARC", p_c=0.25, gap_min=3, gap_max=9):
    """`count` windows of T + 1 tokens, each from a fresh stream at a random offset of
    2 gap_max .. 4 gap_max tokens (the opening of the stream is not seen). Returns
    (tokens [count, T+1] int64, counted [count, T] bool, labels: list of lists)."""
    rng = np.random.default_rng(seed)
    gen = ModifierStream(rng, n, tasks, p_c, gap_min, gap_max)
    windows, flags, labels = [], [], []
    for _ in range(count):
        offset = int(rng.integers(2 * gap_max, 4 * gap_max + 1))
        w = gen.tokens(offset + T + 1)[offset:]
        c, _, lab = read_window(w, n)
        windows.append(w)
        flags.append(c)
        labels.append(lab)
    return np.array(windows, dtype=np.int64), np.array(flags, dtype=bool), labels
