"""Files users and earlier runs wrote, read with caps on size, nesting and YAML aliases.

Threat model: config files, a run's recorded ``config.yaml``, task files, seed data and
benchmark files come from users, downloads and run folders anyone may have edited, so
they are parsed as hostile input. A YAML alias bomb (anchors nested in anchors) of a
few hundred bytes expands to billions of nodes: one of 545 bytes kept ``acdc`` busy for
over 120 s and 1 GB, one of 319 bytes made a 28 MB error line. A JSON line can nest deep
enough to overflow the parser, a line can hold 10 MB, a path can be a folder. Each
reader here refuses such input before anything uses it, with one :class:`InputFileError`
line that names the file (and the line) and quotes at most :data:`QUOTE_CHARS`
characters of it.

Caps: :data:`MAX_YAML_BYTES` per YAML file, :data:`MAX_YAML_NODES` nodes once aliases
are expanded, :data:`MAX_DEPTH` levels of nesting, :data:`MAX_JSON_BYTES` per JSON file
(a task), :data:`MAX_LINE_BYTES` per line of a JSONL file.
"""

import json
import reprlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

MAX_YAML_BYTES = 1024**2
"""A config file; the recorded config of a paper-scale run is under 20 KiB."""
MAX_YAML_NODES = 100_000
"""Nodes of a YAML document with every alias expanded (a config has a few hundred)."""
MAX_DEPTH = 64
"""Nesting levels of a YAML document."""
MAX_JSON_BYTES = 4 * 1024**2
"""A task file; the largest seed task is under 8 KiB."""
MAX_LINE_BYTES = 1024**2
"""One line of a JSONL file (a benchmark item, a seed-data example)."""
QUOTE_CHARS = 200
"""Most characters of a file's content an error message quotes."""

_PREVIEW = reprlib.Repr()
_PREVIEW.maxstring = 80
_PREVIEW.maxother = 80
_PREVIEW.maxlist = _PREVIEW.maxtuple = _PREVIEW.maxdict = _PREVIEW.maxset = 6
_PREVIEW.maxlevel = 3
_PREVIEW.maxlong = 40


class InputFileError(ValueError):
    """A file is missing, unreadable, too big, nested too deep or malformed; names it."""


def preview(value: Any) -> str:
    """A short repr of ``value`` for an error message, in bounded time and length.

    ``repr`` of a structure built from YAML aliases grows exponentially; this one stops
    at a few items and levels.
    """
    return _PREVIEW.repr(value)[:QUOTE_CHARS]


def read_bytes(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The content of ``path``, at most ``limit`` bytes.

    Raises:
        InputFileError: ``path`` is a folder, missing, unreadable or over ``limit``.
    """
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, not a {what}")
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as err:
        raise InputFileError(f"{path}: cannot read the {what}: {err.strerror or err}") from None
    if len(data) > limit:
        raise InputFileError(f"{path}: the {what} is over the cap of {limit:,} bytes")
    return data


def read_text(path: str | Path, limit: int, what: str = "file") -> str:
    """:func:`read_bytes` decoded as UTF-8 (a leading BOM dropped)."""
    data = read_bytes(path, limit, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputFileError(f"{path}: the {what} is not UTF-8 text ({err.reason})") from None


def load_yaml(path: str | Path, what: str = "YAML file") -> Any:
    """The value of a YAML file, within every cap of this module.

    Raises:
        InputFileError: As :func:`read_text`, or the YAML is invalid, expands past
            :data:`MAX_YAML_NODES` nodes or nests past :data:`MAX_DEPTH` levels.
    """
    return parse_yaml(read_text(path, MAX_YAML_BYTES, what), str(path))


def parse_yaml(text: str, source: str) -> Any:
    """The value of the YAML document ``text``; ``source`` names it in errors.

    The document is composed first (aliases are shared nodes there, so this is linear),
    its expanded size and depth are counted, and only then is it built into Python
    objects: a bomb is refused before it costs anything.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise InputFileError(f"{source}:{where} not valid YAML: {problem[:QUOTE_CHARS]}") from None
    except RecursionError:
        raise InputFileError(f"{source}: YAML nested too deeply") from None
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        raise InputFileError(f"{source}: unusable YAML value: {str(err)[:QUOTE_CHARS]}") from None
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, source: str) -> None:
    """Refuse a document over MAX_YAML_NODES nodes with aliases expanded, or MAX_DEPTH deep.

    Sizes are memoised per node, so a shared (aliased) node is counted once per use
    without walking it again; a node inside itself (a recursive alias) is refused.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise InputFileError(f"{source}: YAML alias refers to itself")
        if depth > MAX_DEPTH:
            raise InputFileError(f"{source}: YAML nested more than {MAX_DEPTH} levels")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                total += size(key_node, depth + 1) + size(value_node, depth + 1)
                if total > MAX_YAML_NODES:
                    break
        open_nodes.discard(key)
        if total > MAX_YAML_NODES:
            raise InputFileError(
                f"{source}: YAML expands to over {MAX_YAML_NODES:,} nodes (aliases of "
                "aliases?); refused"
            )
        sizes[key] = total
        return total

    size(root, 0)


def load_json(path: str | Path, limit: int = MAX_JSON_BYTES, what: str = "JSON file") -> Any:
    """The value of a JSON file of at most ``limit`` bytes.

    Raises:
        InputFileError: As :func:`read_text`, or the JSON is invalid or nested too deeply.
    """
    text = read_text(path, limit, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputFileError(f"{path}: not valid JSON: {err}") from None
    except RecursionError:
        raise InputFileError(f"{path}: JSON nested too deeply") from None


def lines(path: str | Path, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, raw bytes) of each line of ``path``, none over ``limit`` bytes.

    A longer line is refused without being held whole in memory.

    Raises:
        InputFileError: ``path`` is a folder or unreadable, or a line is over ``limit``.
    """
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, not a file")
    try:
        handle = path.open("rb")
    except OSError as err:
        raise InputFileError(f"{path}: cannot read: {err.strerror or err}") from None
    with handle:
        number = 0
        while True:
            try:
                raw = handle.readline(limit + 1)
            except OSError as err:
                raise InputFileError(f"{path}: cannot read: {err.strerror or err}") from None
            if not raw:
                return
            number += 1
            if len(raw) > limit and not (len(raw) == limit + 1 and raw.endswith(b"\n")):
                raise InputFileError(
                    f"{path}:{number}: line over the cap of {limit:,} bytes; refused"
                )
            yield number, raw
