"""The size limits of the code (README "Layout"): no file under src/ over 500 lines and
no function over 80. Functions are found on the clang-formatted text (make format-check
runs first): a definition is a line that ends in `) {` (qualifiers allowed) and is not a
control statement or a lambda, and its body ends at the first later line holding only
`}` (or `};`) at the function's indentation (its body's less 4)."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAX_FILE_LINES, MAX_FUNCTION_LINES = 500, 80

DEFINITION = re.compile(r"^(\s*)(?!(?:if|for|while|switch|else|do|catch|return)\b)[^\s}].*\)"
                        r"(?:\s*(?:const|override|final|noexcept|mutable))*\s*(?:->\s*[\w:<>, *&]+)?\s*\{$")


def sources():
    return sorted(p for p in (REPO / "src").rglob("*") if p.suffix in (".cpp", ".h"))


def functions(text):
    """(name line, first line number, length in lines) of each function definition."""
    lines = text.split("\n")
    found = []
    for i, line in enumerate(lines):
        m = DEFINITION.match(line)
        if not m or "](" in line or line.rstrip().endswith("] {") or "= [" in line:
            continue
        # The body is indented 4 past the function (the signature may wrap, deeper).
        body = lines[i + 1] if i + 1 < len(lines) else ""
        indent = " " * max(0, len(body) - len(body.lstrip()) - 4)
        for j in range(i + 1, len(lines)):
            if lines[j] in (indent + "}", indent + "};"):
                found.append((line.strip(), i + 1, j - i + 1))
                break
    return found


def test_no_source_file_over_500_lines():
    long = [f"{p.relative_to(REPO)}: {n} lines" for p in sources()
            if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES]
    assert not long, "split these along the math: " + "; ".join(long)


def test_no_function_over_80_lines():
    long = [f"{p.relative_to(REPO)}:{line} {name[:60]} ({n} lines)"
            for p in sources() for name, line, n in functions(p.read_text()) if n > MAX_FUNCTION_LINES]
    assert not long, "split these: " + "; ".join(long)


def test_the_function_finder_finds_functions():
    # The check above must not pass because it finds nothing.
    text = "namespace x {\n\nint f(int a) {\n    if (a) {\n        return 1;\n    }\n" + \
           "    return 2;\n}\n\nstruct S {\n    void g() const {\n        h();\n    }\n};\n" + \
           "void k(int a,\n       int b) {\n    a += b;\n}\n}\n"
    assert [(name, n) for name, _, n in functions(text)] == [("int f(int a) {", 6),
                                                           ("void g() const {", 3),
                                                           ("int b) {", 3)]
    total = sum(len(functions(p.read_text())) for p in sources())
    assert total > 400, f"only {total} function definitions found under src/"
