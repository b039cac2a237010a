"""Fingerprints of a piece of Python: what survives renaming, reformatting, new comments and changed literals.

The code is tokenised (``tokenize``): comments, docstrings, blank lines and indentation are dropped; every
name the code itself binds (classes, functions, parameters, variables, attributes set on ``self``, loop and
``with`` targets, import aliases) becomes ``V``, numbers ``N`` and strings ``S``; keywords, operators and the
names the code only uses (``nn``'s ``Conv2d``, ``torch``'s ``relu``, builtins) are kept, since a disguise
cannot rename a library. Every run of ``K`` consecutive tokens is hashed, and winnowing keeps the smallest hash
of every window of ``W`` hashes (Schleimer, Wilkerson and Aiken, SIGMOD 2003): any match of at least
``K + W - 1`` tokens shares at least one fingerprint, wherever it moved, and a fingerprint remembers the source
lines it covers.
"""
from __future__ import annotations

import ast
import functools
import io
import keyword
import tokenize
import zlib
from dataclasses import dataclass

K = 8   # tokens per hashed run: shorter runs are what any two solutions share ("self . V = nn . Conv2d (")
W = 4   # winnowing window: a match of K + W - 1 = 11 tokens or more is always found (calibrated: docs/instructor-guide.md, "Code similarity")


@dataclass(frozen=True)
class Token:
    text: str
    line: int


@dataclass
class Fingerprints:
    """The winnowed hashes of one piece of code, each with the (first, last) source lines it covers."""
    lines: dict[int, tuple[int, int]]   # hash -> lines
    tokens: int                         # normalised tokens in the code

    def __len__(self) -> int:
        return len(self.lines)


def bound_names(tree: ast.AST) -> set[str]:
    """The names the code binds itself: what a student can rename without changing what it does."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.keyword) and node.arg is None:
            continue
    return names - {"self", "cls"}


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def normalise(source: str, renamable: set[str] | None = None) -> list[Token]:
    """``source`` as normalised tokens (see the module's docstring); ``renamable`` defaults to the names it
    binds. Code that does not parse is tokenised as far as it goes."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        tree = None
    renamable = renamable if renamable is not None else (bound_names(tree) if tree is not None else set())
    docstrings = _docstring_lines(tree) if tree is not None else set()
    tokens: list[Token] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            kind, text, line = token.type, token.string, token.start[0]
            if kind in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                        tokenize.ENDMARKER, tokenize.ENCODING) or (kind == tokenize.STRING and line in docstrings):
                continue
            if kind == tokenize.NAME:
                text = "V" if text in renamable and not keyword.iskeyword(text) else text
            elif kind == tokenize.NUMBER:
                text = "N"
            elif kind == tokenize.STRING or kind in _FSTRING_PARTS:
                text = "S"
            tokens.append(Token(text, line))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    tokens = [t for i, t in enumerate(tokens) if not (t.text == "S" and i and tokens[i - 1].text == "S")]
    return _number_tuples_as_numbers(tokens)


def _number_tuples_as_numbers(tokens: list[Token]) -> list[Token]:
    """``( N , N )`` (``kernel_size=(3, 3)`` for ``kernel_size=3``) as one ``N``, unless the parentheses call
    something (a name, ``)`` or ``]`` before them)."""
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        if tokens[i].text == "(":   # only here: scanning from every token would be quadratic in a list of numbers
            j = i + 1
            while j + 1 < len(tokens) and tokens[j].text == "N" and tokens[j + 1].text == ",":
                j += 2
            if j < len(tokens) and tokens[j].text == "N":
                j += 1
            called = bool(out) and (out[-1].text in (")", "]") or
                                    (out[-1].text.isidentifier() and not keyword.iskeyword(out[-1].text)))
            if j > i + 2 and j < len(tokens) and tokens[j].text == ")" and not called:
                out.append(Token("N", tokens[i].line))
                i = j + 1
                continue
        out.append(tokens[i])
        i += 1
    return out


_FSTRING_PARTS = {getattr(tokenize, name) for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
                  if hasattr(tokenize, name)}


@functools.lru_cache(maxsize=65536)
def _token_id(text: str) -> int:
    """A token's number, the same in every process (``hash`` of a string is not: it is salted per process)."""
    return zlib.crc32(text.encode())


def fingerprints(tokens: list[Token], k: int = K, w: int = W) -> Fingerprints:
    """Winnowed hashes of the k-grams of ``tokens`` (a tuple of ints hashes the same in every process)."""
    ids = [_token_id(t.text) for t in tokens]
    grams = [(hash(tuple(ids[i:i + k])), tokens[i].line, tokens[i + k - 1].line)
             for i in range(len(tokens) - k + 1)]
    kept: dict[int, tuple[int, int]] = {}
    if grams and len(grams) < w:
        grams_windows = [grams]
    else:
        grams_windows = [grams[i:i + w] for i in range(len(grams) - w + 1)]
    for window in grams_windows:
        value, first, last = min(window, key=lambda gram: gram[0])
        if value in kept:
            first, last = min(first, kept[value][0]), max(last, kept[value][1])
        kept[value] = (first, last)
    return Fingerprints(kept, len(tokens))


def of_source(source: str, renamable: set[str] | None = None) -> Fingerprints:
    return fingerprints(normalise(source, renamable))
