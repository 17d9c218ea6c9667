"""File helpers shared by the stages: atomic writes, sets of outputs published together, JSON,
hashing, the checks of a path given on the command line, and bounded YAML loading."""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SHOWN_CHARS = 200          # user input quoted in an error message is cut to this many characters
YAML_MAX_BYTES = 1 << 20   # a params, mapping or rule file larger than this is refused (1 MiB)
YAML_MAX_ALIASES = 100     # more alias references than this is a "billion laughs" bomb, not a config
YAML_MAX_NODES = 100_000   # values once every alias is expanded: a config this large is a bomb too


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only if the block succeeds.

    A reader never sees a half-written file, and a crash leaves the old file (or none) in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the final file gets the usual mode
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files a killed writer of ``path`` left behind (their process is gone)."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def remove_stale_folders(parent: Path, name: str) -> list[Path]:
    """Delete the working folders ``.<name>.<pid>.*.tmp`` in ``parent`` that a killed run left (their
    process is gone)."""
    removed = []
    for folder in parent.glob(f".{name}.*.tmp"):
        pid = folder.name[len(name) + 2:].split(".", 1)[0]
        if folder.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as stable, sorted, indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json_text(data), encoding="utf-8")


def json_text(data: Any) -> str:
    """``data`` as stable, sorted, indented JSON text."""
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def binary_file_reason(head: bytes) -> str | None:
    """Why ``head`` is not the start of a text file, or None."""
    if head.startswith(b"PK\x03\x04"):
        return "it looks like an Excel workbook or a zip archive; save or extract it as CSV first"
    if head.startswith(b"\x1f\x8b"):
        return "it is gzip-compressed; decompress it first"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    controls = sum(b < 32 and b not in (9, 10, 12, 13) for b in head)
    if b"\x00" in head or controls > 0.01 * len(head):
        return "it is binary, not a CSV text file (leadscore reads CSV or Parquet)"
    return None


def cut(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters with "…": how an error message quotes user input."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary(path: Path) -> Path:
    """A new temporary file next to ``path``, named so :func:`remove_stale_temporaries` finds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())
    return Path(name)


class OutputSet:
    """One run's outputs, published together or not at all.

    Each member is written to a temporary file in its own folder (:meth:`path`); :meth:`publish`
    fsyncs them all, renames them into place, deletes the members this run does not write
    (:meth:`remove`), and writes the manifest last: every member's sha256 and the run id. A
    failure before the swap leaves the previous set untouched; a kill during it leaves members that
    do not match the manifest, which :func:`verify_set` reports. Use it through :func:`output_set`.
    """

    def __init__(self, manifest: Path, *, run_id: str) -> None:
        self.manifest, self.run_id = manifest, run_id
        self._members: dict[Path, Path] = {}   # final path -> its temporary
        self._absent: set[Path] = set()
        self._shared: set[Path] = set()        # published with the set, but not its own (see :meth:`path`)
        for stale in remove_stale_temporaries(manifest):
            log.info("removed %s, left by an interrupted run", stale)

    def path(self, final: Path, *, shared: bool = False) -> Path:
        """Where to write ``final``'s new content (a temporary file next to it, empty). ``shared``: a
        file other commands may rewrite later (a score history entry of the same instant): swapped in
        with the set, named in the manifest, but its bytes are not checked as the set's."""
        if shared:
            self._shared.add(final)
        if final in self._members:
            return self._members[final]
        for stale in remove_stale_temporaries(final):
            log.info("removed %s, left by an interrupted run", stale)
        self._absent.discard(final)
        self._members[final] = tmp = _temporary(final)
        return tmp

    def write_text(self, final: Path, text: str) -> Path:
        """Write ``text`` (UTF-8) as ``final``'s new content; returns ``final``."""
        self.path(final).write_text(text, encoding="utf-8")
        return final

    def write_json(self, final: Path, data: Any) -> Path:
        """:func:`write_json`, as a member of this set."""
        return self.write_text(final, json_text(data))

    def remove(self, final: Path) -> None:
        """``final`` is not part of this run's set: an old run's copy is deleted when the set is published."""
        tmp = self._members.pop(final, None)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        self._absent.add(final)

    def publish(self) -> None:
        """Swap the whole set into place; the manifest, written last, names every member."""
        members = {}
        for final, tmp in self._members.items():
            _fsync(tmp)
            if final not in self._shared:
                members[final] = sha256_file(tmp)
        body = {"run_id": self.run_id,
                "members": {_relative(final, self.manifest): digest for final, digest in sorted(members.items())},
                "absent": sorted(_relative(final, self.manifest) for final in self._absent)}
        if self._shared:
            body["shared"] = sorted(_relative(final, self.manifest) for final in self._shared)
        manifest_tmp = _temporary(self.manifest)
        self._members[self.manifest] = manifest_tmp
        manifest_tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _fsync(manifest_tmp)
        for final, tmp in self._members.items():
            if final != self.manifest:
                os.replace(tmp, final)
        for final in self._absent:
            final.unlink(missing_ok=True)
        os.replace(manifest_tmp, self.manifest)
        for folder in {final.parent for final in self._members}:
            with suppress(OSError):  # not every file system can fsync a folder
                _fsync(folder)
        self._members.clear()

    def discard(self) -> None:
        """Delete the temporaries: the previous set stays as it was."""
        for tmp in self._members.values():
            tmp.unlink(missing_ok=True)
        self._members.clear()


def _relative(final: Path, manifest: Path) -> str:
    return os.path.relpath(final, manifest.parent)


@contextmanager
def output_set(manifest: Path, *, run_id: str) -> Iterator[OutputSet]:
    """An :class:`OutputSet` published when the block ends without an error, discarded otherwise."""
    outputs = OutputSet(manifest, run_id=run_id)
    try:
        yield outputs
        outputs.publish()
    finally:
        outputs.discard()


def verify_set(manifest: Path) -> list[str]:
    """What is wrong with the set ``manifest`` names: members missing, changed or left over from
    another run (a run killed while publishing it). Empty: the set is whole. No manifest: nothing
    to check (an output written before manifests were)."""
    if not manifest.exists():
        return []
    try:
        body = read_json(manifest)
        members, absent = dict(body["members"]), list(body.get("absent", []))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{manifest} is unreadable ({exc})"]
    problems = []
    for name, digest in sorted(members.items()):
        path = manifest.parent / name
        if not path.exists():
            problems.append(f"{path} is missing")
        elif sha256_file(path) != digest:
            problems.append(f"{path} is not the file of run {body.get('run_id')!s}")
    problems += [f"{manifest.parent / name} is left over from another run" for name in absent
                 if (manifest.parent / name).exists()]
    return problems


def check_set(manifest: Path) -> None:
    """Refuse a mixed set of outputs (:func:`verify_set`), saying how to get a whole one."""
    problems = verify_set(manifest)
    if problems:
        raise DataError(f"the outputs {manifest} lists are not one run's ({'; '.join(problems[:3])}): a run was "
                        "interrupted while publishing them; rerun the command that wrote them")


def check_input_file(path: Path, *, flag: str) -> None:
    """An input must be a regular file or a folder: a FIFO, device or socket would hang the reader.
    A path that does not exist is left to the reader, which says so in its own words."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DataError(f"{flag} {path}: cannot read it ({exc.strerror})") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise DataError(f"{flag} {path} is not a regular file (a pipe, device or socket); save the data to a file "
                        "and pass that")


def check_output_path(path: Path, *, flag: str, inputs: Iterable[Path] = (),
                      suffixes: Iterable[str] | None = None) -> None:
    """Refuse, before any work, an output path that cannot be written or would destroy an input: a
    folder, an input under any spelling (symlink, hard link), a name not ending in one of
    ``suffixes`` (None: any), or a folder that is not writable, or does not exist and cannot be
    created (the nearest existing folder above it is not writable, or is a file)."""
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; name the file to write, e.g. {path / 'scores.csv'}")
    for source in inputs:
        if _same_file(path, source):
            raise ConfigError(f"{flag} {path} is the input {source}: writing it would destroy the input; "
                              "write to another file")
    wanted = tuple(suffixes) if suffixes is not None else ()
    if wanted and not path.name.lower().endswith(wanted):
        raise DataError(f"{flag} {path}: unknown file type; write one of {', '.join(wanted)}")
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # created when the output is written
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: {folder} is a file, not a folder; choose another output path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: the folder {folder} is not writable; choose another output path")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet): compare where they would be
        return a.resolve() == b.resolve()


class _BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses more than YAML_MAX_ALIASES alias references, or a document of more
    than YAML_MAX_NODES values once its aliases are expanded (a "billion laughs" needs few aliases)."""

    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > YAML_MAX_ALIASES:
                raise yaml.YAMLError(f"more than {YAML_MAX_ALIASES} aliases (*name): refused, as a config needs "
                                     "few and a chain of them can expand without bound")
        return super().compose_node(parent, index)

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None and _expanded_size(node, {}) > YAML_MAX_NODES:
            raise yaml.YAMLError(f"its aliases expand to more than {YAML_MAX_NODES:,} values: refused as an "
                                 "alias bomb; write the values out instead of aliasing them")
        return node


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for with every alias expanded (shared nodes counted each time)."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1  # a recursive alias counts once: the constructor builds a cycle, not an expansion
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    total = 1
    for child in children:
        total += _expanded_size(child, sizes)
        if total > YAML_MAX_NODES:
            break
    sizes[id(node)] = total
    return total


def load_yaml(path: Path, *, text: str | None = None) -> Any:
    """Parse the YAML file ``path`` (or its ``text`` already read) safely and within bounds: at most
    YAML_MAX_BYTES and YAML_MAX_ALIASES alias references. Errors name the file; quoted input is cut."""
    try:
        size = len(text.encode("utf-8")) if text is not None else path.stat().st_size
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if size > YAML_MAX_BYTES:
        raise ConfigError(f"{path} is {size:,} bytes; a YAML file leadscore reads may be at most "
                          f"{YAML_MAX_BYTES:,} bytes")
    try:
        if text is None:
            text = path.read_text(encoding="utf-8")
        return yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {cut(str(exc), SHOWN_CHARS * 2)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
