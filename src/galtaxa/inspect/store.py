"""What the inspectors decide, kept in the run folder: group classes, group comments, single-galaxy labels.

Three files of ``RUN_DIR``, each rewritten whole and atomically (temporary file + rename) under an exclusive
lock (``RUN_DIR/.inspect.lock``, ``fcntl.flock``), after reading it again from the disk: two inspectors saving
at the same moment, from one server or from two servers on the same folder, never lose each other's choices,
and a hand edit made while the app runs is kept.

``mapping.yaml``
    The group -> class form of :func:`galtaxa.label.write_mapping_template`, one block per inspector
    (``classes``, ``groups``, ``inspectors: {name: {group: class or null}}``); every file written is read back
    with :func:`galtaxa.label.load_mapping` before it replaces the old one, so ``galtaxa run`` with
    ``labelling.mapping_file`` pointing at it and the static page keep working.
``group_comments.csv``
    ``group, inspector, comment, time``: one free comment per inspector and group.
``labels_inspected.csv``
    ``id, class, flags, inspector, time``: one row per galaxy and inspector -- the class the inspector gave
    that galaxy (empty: none) and its flags (``;``-separated, from :data:`FLAGS`).  :func:`galaxy_labels`
    turns it into one class per galaxy (the inspectors' majority) for training.

Times are UTC, ISO 8601, to the second.

The two CSV files are hand-editable: they are read as UTF-8 (an Excel byte-order mark removed) or, with a
warning naming the file and the line, as Latin-1; a row that cannot be read (a field beyond 131,072 characters,
a NUL byte, a group that is not a number) is a :class:`StoreError` or a warning naming the file and the line,
never a crash of the app.  A value that a spreadsheet would run as a formula (an id, a name or a comment starting
with ``=``, ``+``, ``-``, ``@``) is written with a leading single quote and read back without it
(:mod:`galtaxa.utils.textfiles`); in ``mapping.yaml`` such a name is a single-quoted YAML scalar, which YAML
reads as the name itself and a spreadsheet as text.  Names and comments may not hold control characters or line
and paragraph separators (U+2028, U+2029).
"""

from __future__ import annotations

import contextlib
import csv
import io
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import yaml

from ..label import DEFAULT_CLASSES, GroupMapping, load_mapping
from ..label.group_page import yaml_scalar
from ..utils.atomic import atomic_write_text
from ..utils.textfiles import neutralise_cell, read_text_file, restore_cell

try:  # POSIX: a lock shared by every process working on the folder
    import fcntl
except ImportError:  # pragma: no cover - Windows: the in-process lock only
    fcntl = None

__all__ = [
    "COMMENTS_FILE",
    "FLAGS",
    "LABELS_FILE",
    "LOCK_FILE",
    "MAPPING_FILE",
    "InspectionStore",
    "StoreError",
    "galaxy_labels",
    "read_labels",
]

MAPPING_FILE = "mapping.yaml"
LABELS_FILE = "labels_inspected.csv"
COMMENTS_FILE = "group_comments.csv"
LOCK_FILE = ".inspect.lock"

#: What an inspector can flag a single galaxy as.
FLAGS = ("misplaced", "artefact", "merger", "interesting")

LABEL_COLUMNS = ("id", "class", "flags", "inspector", "time")
COMMENT_COLUMNS = ("group", "inspector", "comment", "time")

MAX_NAME = 64
MAX_COMMENT = 2000


class StoreError(ValueError):
    """A choice that cannot be saved (bad inspector name, unknown group or class, an unreadable file)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_text(value, what: str, max_len: int, multiline: bool = False) -> str:
    if not isinstance(value, str):
        raise StoreError(f"{what} must be text; got {type(value).__name__}")
    value = value.strip()
    if len(value) > max_len:
        raise StoreError(f"{what} is longer than {max_len} characters")
    allowed = {"\n", "\t"} if multiline else set()
    bad = [c for c in value if unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp")
           if c not in allowed]
    if bad:
        raise StoreError(f"{what} holds control characters or line separators "
                         f"({', '.join(repr(c) for c in bad[:3])})")
    return value


def check_inspector(name) -> str:
    """A valid inspector name: 1-64 printable characters (surrounding blanks removed)."""
    name = _check_text(name, "the inspector name", MAX_NAME)
    if not name:
        raise StoreError("the inspector name is empty: give your name (--inspector NAME, or on the page)")
    return name


def _yaml_scalar(value) -> str:
    """``value`` as a one-line YAML scalar that reads back unchanged (quoted when needed; single-quoted when a
    spreadsheet would take it for a formula)."""
    text = yaml_scalar(value)
    if "\n" in text:
        raise StoreError(f"{value!r} cannot be written on one line")
    return text


def render_mapping(mapping: GroupMapping, sizes: Mapping[int, int] | None = None) -> str:
    """The text of ``mapping.yaml`` for ``mapping``: the layout of :func:`galtaxa.label.write_mapping_template`.

    Parameters
    ----------
    mapping : GroupMapping
    sizes : dict group -> number of members, optional
        Written as a comment after each entry.
    """
    sizes = dict(sizes or {})
    lines = [
        f"# galtaxa: group -> class mapping ({len(mapping.groups)} groups, {len(mapping.inspectors)} inspector(s)).",
        "# Written by `galtaxa inspect` (each choice saved at once); it can also be edited by hand: under your",
        "# own name in 'inspectors', one class per group ('null' = not assigned, does not vote). The class of a",
        "# group is the majority of the inspectors' votes; ties stay unclassified. Group -1 (rejected by the",
        "# clustering vote) is never mapped. Read back by galtaxa.label.load_mapping; set",
        "# labelling.mapping_file to this file and rerun to put the classes in the catalog.",
        "classes: [" + ", ".join(_yaml_scalar(c) for c in mapping.classes) + "]",
        "groups: [" + ", ".join(str(int(g)) for g in mapping.groups) + "]",
        "inspectors:" + ("" if mapping.inspectors else " {}"),
    ]
    for name, votes in mapping.assignments.items():
        entries = {int(g): votes.get(int(g)) for g in mapping.groups}
        entries.update({int(g): c for g, c in votes.items()})
        lines.append(f"  {_yaml_scalar(name)}:" + ("" if entries else " {}"))
        for g in sorted(entries):
            entry = f"    {g}: {_yaml_scalar(entries[g])}"
            if g in sizes:
                entry = f"{entry:<20}# {sizes[g]} members"
            lines.append(entry)
    return "\n".join(lines) + "\n"


def _votes(mapping: GroupMapping) -> dict:
    """``{inspector: {group: class}}`` without the unassigned (``null``) entries."""
    return {n: {g: c for g, c in v.items() if c is not None} for n, v in mapping.assignments.items()}


def _read_csv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    """The rows of one of the app's CSV files (``[]`` without one), values restored from their spreadsheet-safe
    form.

    Raises
    ------
    StoreError
        Naming the file (and the line): not a regular file, a header without the columns, a row that cannot be
        parsed.
    """
    if not path.exists():
        return []
    try:
        text = read_text_file(path, "inspection file")
    except ValueError as err:
        raise StoreError(f"{err}; fix or move it") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        fields = [restore_cell(f) for f in (reader.fieldnames or [])]
        missing = [c for c in columns if c not in fields]
        if missing:
            raise StoreError(f"{path}: missing the columns {missing} (expected {', '.join(columns)}); "
                             "fix or move the file")
        reader.fieldnames = fields
        return [{c: restore_cell(row.get(c) or "") if isinstance(row.get(c), str) else "" for c in columns}
                for row in reader]
    except csv.Error as err:
        # line_num counts the lines of the records read whole: the one that failed is the next
        raise StoreError(f"{path}: line {reader.line_num + 1} cannot be read ({err}); fix or move the file") from None


def _csv_text(rows: Iterable[Mapping[str, str]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\r\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: neutralise_cell(v) for k, v in row.items()})
    return buf.getvalue()


def read_labels(path: str | Path) -> list[dict[str, str]]:
    """The rows of a ``labels_inspected.csv`` (``id, class, flags, inspector, time``); ``[]`` without a file."""
    return _read_csv(Path(path), LABEL_COLUMNS)


def galaxy_labels(path: str | Path, classes: Sequence[str] | None = None) -> dict[str, str]:
    """One class per galaxy from a ``labels_inspected.csv``: the class most of its inspectors gave it.

    Rows without a class (flags only) do not vote; a galaxy whose top classes are tied gets no label.

    Parameters
    ----------
    path : str or Path
        ``RUN_DIR/labels_inspected.csv`` (no file: ``{}``).
    classes : sequence of str, optional
        Keep only these classes.

    Returns
    -------
    dict
        ``{id: class}``.
    """
    votes: dict[str, Counter] = {}
    for row in read_labels(path):
        cls = row["class"].strip()
        if cls and (classes is None or cls in classes):
            votes.setdefault(row["id"], Counter())[cls] += 1
    out = {}
    for gid, counts in votes.items():
        (top, n), *rest = counts.most_common()
        if not rest or rest[0][1] < n:
            out[gid] = top
    return out


class InspectionStore:
    """Read and save the inspectors' choices for one run folder.

    Parameters
    ----------
    run_dir : str or Path
    groups : iterable of int
        The groups of the run's catalog (``-1``, the rejected galaxies, is dropped: it is never mapped).
    classes : sequence of str, optional
        The class set when ``mapping.yaml`` does not exist or names none (default
        :data:`galtaxa.label.DEFAULT_CLASSES`).
    sizes : dict group -> members, optional
        Written as comments in ``mapping.yaml``.
    ids : iterable of str, optional
        The galaxy ids of the catalog; labels for other ids are refused.
    """

    def __init__(self, run_dir: str | Path, groups: Iterable[int], classes: Sequence[str] | None = None,
                 sizes: Mapping[int, int] | None = None, ids: Iterable[str] | None = None):
        self.run_dir = Path(run_dir)
        self.groups = tuple(sorted({int(g) for g in groups if int(g) >= 0}))
        self.default_classes = tuple(classes) if classes is not None else DEFAULT_CLASSES
        self.sizes = {int(k): int(v) for k, v in (sizes or {}).items()}
        self.ids = None if ids is None else frozenset(map(str, ids))
        self._thread_lock = threading.RLock()

    # ------------------------------------------------------------------ files
    @property
    def mapping_path(self) -> Path:
        return self.run_dir / MAPPING_FILE

    @property
    def labels_path(self) -> Path:
        return self.run_dir / LABELS_FILE

    @property
    def comments_path(self) -> Path:
        return self.run_dir / COMMENTS_FILE

    @contextlib.contextmanager
    def locked(self):
        """Hold the folder's inspection lock (every thread and process that writes takes it)."""
        with self._thread_lock:
            if fcntl is None:  # pragma: no cover
                yield
                return
            with open(self.run_dir / LOCK_FILE, "a+b") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # ------------------------------------------------------------------ reading
    def mapping(self) -> GroupMapping:
        """The current ``mapping.yaml`` (an empty mapping over the run's groups when there is none yet).

        Raises
        ------
        StoreError
            The file exists but :func:`galtaxa.label.load_mapping` refuses it (the message says why); the app
            then saves nothing into it until it is fixed.
        """
        if not self.mapping_path.is_file():
            return GroupMapping(classes=self.default_classes, assignments={}, groups=self.groups,
                                source=str(self.mapping_path))
        try:
            found = load_mapping(self.mapping_path, classes=self.default_classes)
        except ValueError as err:
            raise StoreError(f"{err} -- fix the file (or move it away) before saving from the app") from err
        groups = tuple(sorted(set(found.groups) | set(self.groups)))
        return GroupMapping(classes=found.classes, assignments=found.assignments, groups=groups,
                            source=found.source)

    @property
    def classes(self) -> tuple[str, ...]:
        """The run's class set (from ``mapping.yaml``, else the default)."""
        try:
            return self.mapping().classes
        except StoreError:
            return self.default_classes

    def comments(self) -> list[dict[str, str]]:
        """The rows of ``group_comments.csv``."""
        return _read_csv(self.comments_path, COMMENT_COLUMNS)

    def labels(self) -> list[dict[str, str]]:
        """The rows of ``labels_inspected.csv``."""
        return read_labels(self.labels_path)

    # ------------------------------------------------------------------ saving
    def _check_group(self, group) -> int:
        if isinstance(group, bool) or not isinstance(group, int | str):
            raise StoreError(f"group must be an integer; got {group!r}")
        try:
            g = int(group)
        except ValueError:
            raise StoreError(f"group must be an integer; got {group!r}") from None
        if g not in self.groups:
            raise StoreError(f"group {g} does not exist (groups: {list(self.groups)}); group -1, the galaxies "
                             "rejected by the vote, is never named as a whole: label them one by one")
        return g

    def set_group_class(self, inspector: str, group, cls: str | None) -> GroupMapping:
        """Save ``inspector``'s class for ``group`` (``None`` clears it) into ``mapping.yaml``.

        Returns the mapping as written.
        """
        inspector = check_inspector(inspector)
        g = self._check_group(group)
        with self.locked():
            current = self.mapping()
            if cls is not None:
                if not isinstance(cls, str) or cls.strip() not in current.classes:
                    raise StoreError(f"unknown class {cls!r} (classes of this run: {', '.join(current.classes)})")
                cls = cls.strip()
            assignments = {k: dict(v) for k, v in current.assignments.items()}
            assignments.setdefault(inspector, {})[g] = cls
            new = GroupMapping(classes=current.classes, assignments=assignments, groups=current.groups,
                               source=str(self.mapping_path))
            text = render_mapping(new, self.sizes)
            back = yaml.safe_load(text)
            check = GroupMapping(classes=back["classes"], assignments=back["inspectors"], groups=back["groups"],
                                 source=str(self.mapping_path))
            if _votes(check) != _votes(new) or check.classes != new.classes:  # pragma: no cover - a bug
                raise StoreError("mapping.yaml would not read back as written; nothing saved")
            atomic_write_text(self.mapping_path, text)
        return new

    def set_group_comment(self, inspector: str, group, comment: str) -> dict[str, str]:
        """Save ``inspector``'s free comment on ``group`` (an empty comment removes it)."""
        inspector = check_inspector(inspector)
        g = self._check_group(group)
        comment = _check_text(comment, "the comment", MAX_COMMENT, multiline=True)
        row = {"group": str(g), "inspector": inspector, "comment": comment, "time": _now()}
        with self.locked():
            rows = [r for r in self.comments() if not (r["group"] == str(g) and r["inspector"] == inspector)]
            if comment:
                rows.append(row)
            atomic_write_text(self.comments_path, _csv_text(rows, COMMENT_COLUMNS))
        return row

    def set_galaxy_label(self, inspector: str, galaxy_id: str, cls: str | None = None,
                         flags: Iterable[str] | None = None, keep: Sequence[str] = ()) -> dict[str, str]:
        """Save ``inspector``'s class and flags for one galaxy into ``labels_inspected.csv``.

        Parameters
        ----------
        inspector : str
        galaxy_id : str
            An id of the catalog.
        cls : str or None
            The galaxy's own class (``None``: none).
        flags : iterable of str, optional
            Flags from :data:`FLAGS`.
        keep : sequence of {"class", "flags"}
            Fields to keep from the inspector's existing row instead of ``cls``/``flags`` (to change one
            without sending the other).

        Returns
        -------
        dict
            The row as saved (``class`` and ``flags`` empty: the row was removed).
        """
        inspector = check_inspector(inspector)
        if not isinstance(galaxy_id, str) or not galaxy_id:
            raise StoreError(f"galaxy id must be a non-empty string; got {galaxy_id!r}")
        if self.ids is not None and galaxy_id not in self.ids:
            raise StoreError(f"no galaxy {galaxy_id!r} in the catalog")
        flags = list(flags or [])
        unknown = [f for f in flags if f not in FLAGS]
        if unknown:
            raise StoreError(f"unknown flags {unknown} (flags: {', '.join(FLAGS)})")
        flags_text = ";".join(f for f in FLAGS if f in flags)
        with self.locked():
            classes = self.classes
            rows = self.labels()
            old = next((r for r in rows if r["id"] == galaxy_id and r["inspector"] == inspector), None)
            if "class" in keep and old is not None:
                cls = old["class"] or None
            if "flags" in keep:
                flags_text = old["flags"] if old is not None else ""
            if cls is not None and (not isinstance(cls, str) or cls.strip() not in classes):
                raise StoreError(f"unknown class {cls!r} (classes of this run: {', '.join(classes)})")
            row = {"id": galaxy_id, "class": (cls or "").strip(), "flags": flags_text, "inspector": inspector,
                   "time": _now()}
            keep_row = bool(row["class"] or row["flags"])
            if old is not None:
                rows = [row if r is old else r for r in rows] if keep_row else [r for r in rows if r is not old]
            elif keep_row:
                rows.append(row)
            atomic_write_text(self.labels_path, _csv_text(rows, LABEL_COLUMNS))
        return row
