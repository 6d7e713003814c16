"""Step 1 and 2 of loading (see ``loader.py``): crossplane's parse of the
main file and its includes becomes ``Node``s in nginx's reading order, with
nginx's line numbers; crossplane's own errors are re-worded as nginx's and
placed in that order.

This is also where the error types live: every later stage raises
``ReadingError`` (through ``Node.error()``) so that ``load_config`` can tell
which of two errors nginx would have met first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from crossplane.analyzer import enter_block_ctx
from crossplane.errors import NgxParserBaseException, NgxParserSyntaxError
from crossplane.lexer import lex

from ngxws.config.model import Source

__all__ = [
    "ConfigError",
    "ReadingError",
    "Node",
    "Tree",
    "crossplane_errors",
    "open_failed",
    "plain_error",
    "unescape",
]


class ConfigError(Exception):
    """A config nginx would refuse; ``str()`` is nginx's ``[emerg]`` text.

    ``file``/``line`` are None for the few messages nginx prints without a
    position (``no "events" section in configuration``).
    """

    def __init__(
        self, message: str, file: str | None = None, line: int | None = None, hint: str = ""
    ) -> None:
        super().__init__(message, file, line)
        self.message = message
        self.file = file
        self.line = line
        self.hint = hint  # ngxws's own advice after the position ("; --allow-unenforced X ...")

    def __str__(self) -> str:
        if self.file is None:
            text = self.message
        elif self.line is None:
            text = f"{self.message} in {self.file}"
        else:
            text = f"{self.message} in {self.file}:{self.line}"
        return f"{text}; {self.hint}" if self.hint else text


class ReadingError(ConfigError):
    """An error found while reading, with its place in nginx's reading order."""

    def __init__(self, message: str, file: str, line: int, order: float, rank: int = 0) -> None:
        super().__init__(message, file, line)
        self.order = order
        # a token error found at the same place as a directive error comes
        # second: nginx checks a directive once its ";" or "{" is read
        self.rank = rank


def plain_error(exc: ConfigError) -> ConfigError:
    return ConfigError(exc.message, exc.file, exc.line)


def open_failed(path: str, exc: OSError) -> str:
    # nginx: open() "/etc/nginx/x.conf" failed (2: No such file or directory)
    return f'open() "{path}" failed ({exc.errno}: {exc.strerror})'


@dataclass(frozen=True)
class Node:
    """One directive as nginx reads it: includes already inlined.

    ``line`` is the line nginx names in its messages: where the directive's
    ``;`` or ``{`` stands (it differs from the first word's line when a
    directive spans lines, as in the module README's ``server\\n{``).
    ``close_line`` is the line of a block's ``}``.  ``ctx`` is crossplane's
    context tuple (``("http", "server")``); ``order`` the position in nginx's
    reading order; ``block`` None for ``...;``.
    """

    name: str
    args: tuple[str, ...]
    file: str
    line: int
    order: int
    ctx: tuple[str, ...]
    block: tuple[Node, ...] | None
    close_line: int | None = None

    @property
    def source(self) -> Source:
        return Source(self.file, self.line)

    def error(self, message: str) -> ReadingError:
        return ReadingError(message, self.file, self.line, self.order)


@dataclass(frozen=True)
class Statement:
    """A statement as nginx's tokenizer sees it: first word, its line, the
    line of its ``;``/``{``, and for a block the line of its ``}``."""

    name: str
    first_line: int
    line: int
    close_line: int | None


@dataclass
class Scan:
    """One file's statements in token order, and nginx's token-level error
    (``unexpected "}"``, ``unexpected end of file...``) if it has one;
    ``error_statement_line`` is the first line of the statement the error
    cut short (crossplane reports its own, misleading, error there)."""

    statements: list[Statement]
    error: tuple[str, int] | None = None
    error_statement_line: int | None = None

    def nginx_line(self, first_line: int, name: str | None) -> int:
        """crossplane reports a statement's first line; nginx its ``;``/``{``
        line.  ``name`` picks the statement when several start on that line."""
        starting = [s for s in self.statements if s.first_line == first_line]
        for statement in starting:
            if statement.name == name:
                return statement.line
        return starting[0].line if starting else first_line


def scan_file(path: str) -> Scan:
    """Tokenize ``path`` the way ngx_conf_read_token() does (crossplane's
    lexer supplies the tokens) to learn what crossplane does not say."""
    scan = Scan(statements=[])
    tokens: list[tuple[str, int, bool]] = []
    try:
        for token in lex(path):
            tokens.append(token)
    except NgxParserSyntaxError:
        pass  # every token was yielded before the brace check raised
    except OSError:
        return scan
    name: str | None = None
    first_line = 0
    open_blocks: list[int] = []  # indexes into scan.statements
    for token, line, quoted in tokens:
        if not quoted and token.startswith("#"):
            continue
        if quoted or token not in (";", "{", "}"):
            if name is None:
                name, first_line = token, line
            continue
        if token == "}":
            if name is not None or not open_blocks:
                scan.error, scan.error_statement_line = (
                    ('unexpected "}"', line),
                    (first_line if name is not None else None),
                )
                return scan
            index = open_blocks.pop()
            scan.statements[index] = replace(scan.statements[index], close_line=line)
            continue
        if name is None:
            scan.error = (f'unexpected "{token}"', line)
            return scan
        scan.statements.append(Statement(name, first_line, line, None))
        if token == "{":
            open_blocks.append(len(scan.statements) - 1)
        name = None
    try:
        with open(path, "rb") as f:
            eof_line = f.read().count(b"\n") + 1  # nginx: the line after the last LF
    except OSError:
        return scan
    if name is not None:
        scan.error = ('unexpected end of file, expecting ";" or "}"', eof_line)
        scan.error_statement_line = first_line
    elif open_blocks:
        scan.error = ('unexpected end of file, expecting "}"', eof_line)
    return scan


_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "t": "\t", "r": "\r", "n": "\n"}


def unescape(word: str) -> str:
    """ngx_conf_read_token()'s escapes, for every word: ``\\"``, ``\\'``,
    ``\\\\`` drop the backslash, ``\\t``/``\\r``/``\\n`` are control characters;
    any other backslash stays (regexes keep ``\\.``)."""
    if "\\" not in word:
        return word
    out: list[str] = []
    i = 0
    while i < len(word):
        ch = word[i]
        if ch == "\\" and i + 1 < len(word) and word[i + 1] in _ESCAPES:
            out.append(_ESCAPES[word[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class Tree:
    """Inlines crossplane's per-file results in nginx's reading order, with
    nginx's line numbers, and remembers which reading positions each file's
    lines hold (to place crossplane's errors among the reader's)."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self._configs: Sequence[Mapping[str, Any]] = payload["config"]
        self.scans: dict[str, Scan] = {c["file"]: scan_file(c["file"]) for c in self._configs}
        self._next = 0
        self._lines: dict[str, list[tuple[int, int]]] = {}
        self._include_order: dict[str, int] = {}
        self.main_file: str = self._configs[0]["file"]
        self.roots = self._file(self._configs[0], (), (self.main_file,))

    def _file(
        self, config: Mapping[str, Any], ctx: tuple[str, ...], stack: tuple[str, ...]
    ) -> list[Node]:
        name: str = config["file"]
        record = name not in self._lines
        if record:
            self._lines[name] = []
        cursor = [0]  # position in this file's scanned statements
        return self._block(config["parsed"], name, ctx, stack, record, cursor)

    def _statement(self, file: str, name: str, first_line: int, cursor: list[int]) -> Statement:
        """The scanned statement crossplane's ``stmt`` is (both walk the file
        in token order; a statement crossplane dropped is skipped over)."""
        statements = self.scans[file].statements
        for index in range(cursor[0], len(statements)):
            statement = statements[index]
            if statement.name == name and statement.first_line == first_line:
                cursor[0] = index + 1
                return statement
        return Statement(name, first_line, first_line, None)

    def _block(
        self,
        stmts: Iterable[Mapping[str, Any]],
        file: str,
        ctx: tuple[str, ...],
        stack: tuple[str, ...],
        record: bool,
        cursor: list[int],
    ) -> list[Node]:
        nodes: list[Node] = []
        for stmt in stmts:
            order = self._next
            self._next += 1
            name: str = stmt["directive"]
            statement = self._statement(file, name, stmt["line"], cursor)
            if record:
                self._lines[file].append((statement.first_line, order))
            if "includes" in stmt:
                for index in stmt["includes"]:
                    included = self._configs[index]
                    ifile: str = included["file"]
                    if ifile in stack:
                        message = f'include loop: "{ifile}" includes itself'
                        raise ConfigError(message, file, statement.line)
                    self._include_order.setdefault(ifile, order)
                    nodes.extend(self._file(included, ctx, stack + (ifile,)))
                continue
            block: tuple[Node, ...] | None = None
            if "block" in stmt:
                inner: tuple[str, ...] = tuple(enter_block_ctx(stmt, ctx))
                block = tuple(self._block(stmt["block"], file, inner, stack, record, cursor))
            args = tuple(unescape(a) for a in stmt["args"])
            nodes.append(
                Node(name, args, file, statement.line, order, ctx, block, statement.close_line)
            )
        return nodes

    def order_of(self, file: str, first_line: int) -> float:
        """Reading position of a statement crossplane dropped (it names its
        first line): just before the first kept statement from that line on."""
        entries = self._lines.get(file)
        if entries:
            for entry_line, order in entries:
                if entry_line >= first_line:
                    return order - 0.5
            return entries[-1][1] + 0.5
        if file in self._include_order:
            return self._include_order[file] + 0.5
        return -1.0 if file == self.main_file else math.inf


def crossplane_errors(payload: Mapping[str, Any], tree: Tree) -> list[ReadingError]:
    """crossplane's errors with nginx's wording and lines, placed in reading order."""
    errors: list[ReadingError] = []
    for file, scan in tree.scans.items():
        if scan.error is not None:
            message, line = scan.error
            order = tree.order_of(file, scan.error_statement_line or line)
            errors.append(ReadingError(message, file, line, order, rank=1))
    for err in payload["errors"]:
        exc = err.get("callback")
        file = err["file"]
        first_line: int = err.get("line") or 1
        scan = tree.scans.get(file, Scan(statements=[]))
        if isinstance(exc, (NgxParserSyntaxError, StopIteration)):
            if scan.error is not None:
                continue  # scan_file() said it, the way nginx does
            message = exc.strerror if isinstance(exc, NgxParserSyntaxError) else "syntax error"
        elif scan.error is not None and first_line == scan.error_statement_line:
            continue  # crossplane's reading of the statement the token error cut short
        elif isinstance(exc, NgxParserBaseException):
            message = exc.strerror
        elif isinstance(exc, OSError):
            message = open_failed(exc.filename or "", exc)
        else:
            message = err.get("error") or type(exc).__name__
        named = re.search(r'"([^"]*)"', message)  # crossplane names the directive first
        line = scan.nginx_line(first_line, named.group(1) if named else None)
        errors.append(ReadingError(message, file, line, tree.order_of(file, first_line)))
    return errors
