"""The inspectors' material: one self-contained HTML page with every group's mosaics, and a YAML form to fill.

Replaces the interactive prompts of the papers' code (Fang et al. 2025; METHODS M1/M2): the page can be mailed
to the inspectors (the PNGs are embedded as base64 data URIs, no external file is needed), each of them fills the
class of every group under their own name in the YAML template, and :func:`galtaxa.label.load_mapping` reads the
result back.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..utils.atomic import atomic_write_text
from ..utils.templates import render_template
from ..utils.textfiles import needs_quote
from .mapping import DEFAULT_CLASSES, _as_group, _check_classes
from .thumbnails import REJECTED_GROUP, load_mosaic_table

__all__ = ["CLASS_DESCRIPTIONS", "write_group_page", "write_mapping_template", "yaml_scalar"]

#: Short descriptions of the default classes, shown on the page and in the template.
CLASS_DESCRIPTIONS = {
    "SPH": "spheroid: round or elliptical, smooth, concentrated light, no disc",
    "ETD": "early-type disc: disc with a prominent bulge, little structure",
    "LTD": "late-type disc: disc with a small bulge, arms or clumps",
    "IRR": "irregular: no regular shape, clumpy, disturbed or merging",
    "UNC": "unclassifiable: too faint, too small, artefacts or mixed group",
}

def yaml_scalar(value) -> str:
    """A scalar written as YAML would read it back unchanged (quoted when needed); text that a spreadsheet would
    take for a formula (starting with ``=``, ``+``, ``-``, ``@``: :func:`galtaxa.utils.textfiles.needs_quote`) is
    single-quoted, which YAML reads as the text itself and a spreadsheet as text."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6,
                          default_style="'" if needs_quote(value) else None)
    text = text.rstrip("\n")
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return text.strip()


def _groups_and_sizes(groups) -> tuple[list[int], dict[int, int]]:
    """Accept a mosaic table (DataFrame with ``group`` and maybe ``n_members``), a dict group -> size, or ids."""
    sizes: dict[int, int] = {}
    if isinstance(groups, pd.DataFrame):
        if "group" not in groups.columns:
            raise ValueError(f"the table has no 'group' column (columns: {list(groups.columns)})")
        ids = [_as_group(g, "group") for g in groups["group"]]
        if "n_members" in groups.columns:
            sizes = {g: int(n) for g, n in zip(ids, groups["n_members"])}
    elif isinstance(groups, Mapping):
        ids = [_as_group(g, "group") for g in groups]
        sizes = {_as_group(g, "group"): int(n) for g, n in groups.items()}
    else:
        if isinstance(groups, (str, bytes)) or not isinstance(groups, Iterable):
            raise ValueError(f"groups must be a list of group ids, a dict group -> size or a mosaic table; "
                             f"got {groups!r}")
        ids = [_as_group(g, "group") for g in np.asarray(list(groups)).ravel().tolist()]
    out = sorted({g for g in ids if g != REJECTED_GROUP})
    if any(g < 0 for g in out):
        raise ValueError(f"group ids must be >= -1 (-1 = rejected); got {min(out)}")
    return out, sizes


def write_mapping_template(
    groups,
    path: str | Path,
    classes: Sequence[str] = DEFAULT_CLASSES,
    inspectors: Sequence[str] = ("inspector1",),
    page: str | Path | None = None,
) -> Path:
    """Write the commented YAML form in which the inspectors assign a class to each group.

    Layout (read back by :func:`galtaxa.label.load_mapping`)::

        classes: [SPH, ETD, LTD, IRR, UNC]
        groups: [0, 1, 2]
        inspectors:
          inspector1:
            0: null      # 1234 members
            1: null      # 567 members

    Every group starts as ``null`` (not yet assigned).  Group -1 (rejected by the vote) is never listed: its
    galaxies stay unclassified.

    Parameters
    ----------
    groups : list of int, dict group -> size, or the table of :func:`galtaxa.label.group_mosaics`
        The groups to map (sizes, when known, are written as comments).  Per-galaxy labels are fine too:
        duplicates are removed.
    path : str or Path
    classes : sequence of str
        The allowed classes (any set).
    inspectors : sequence of str
        One block per inspector (names must be unique).
    page : str or Path, optional
        The group page, named in the instructions.

    Returns
    -------
    Path
    """
    ids, sizes = _groups_and_sizes(groups)
    classes = _check_classes(classes, "write_mapping_template")
    if isinstance(inspectors, str):
        inspectors = (inspectors,)
    inspectors = [str(i).strip() for i in inspectors]
    if not inspectors or any(not i for i in inspectors) or len(set(inspectors)) != len(inspectors):
        raise ValueError(f"inspectors must be unique non-empty names; got {inspectors!r}")
    path = Path(path)
    lines = [
        f"# galtaxa: group -> class mapping form ({len(ids)} groups, {len(inspectors)} inspector(s)).",
        "#",
        "# 1. Look at the mosaics of every group"
        + (f" on the group page {Path(page).name}." if page else " (group page)."),
        "# 2. Under your own name in 'inspectors', replace 'null' by one class per group.",
        "#    Leave 'null' for a group you do not want to assign (it then does not vote).",
        "# 3. Several inspectors: each fills their own block (rename 'inspector1', copy the block for more).",
        "#    The class of a group is the majority of the inspectors' votes; ties stay unclassified.",
        "# Group -1 (galaxies rejected by the clustering vote) is not mapped: they stay unclassified.",
        "# Allowed classes (edit the list to use your own class set):",
    ]
    for c in classes:
        desc = CLASS_DESCRIPTIONS.get(c)
        lines.append(f"#   {c}" + (f": {desc}" if desc else ""))
    lines.append(f"# Read back with: galtaxa.label.load_mapping({str(path)!r})")
    lines.append("classes: [" + ", ".join(yaml_scalar(c) for c in classes) + "]")
    lines.append("groups: [" + ", ".join(str(g) for g in ids) + "]")
    lines.append("inspectors:")
    for name in inspectors:
        lines.append(f"  {yaml_scalar(name)}:" + ("" if ids else " {}"))
        for g in ids:
            entry = f"    {g}: null"
            if g in sizes:
                entry = f"{entry:<16}# {sizes[g]} members"
            lines.append(entry)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _data_uri(png: str | Path) -> str:
    png = Path(png)
    if not png.is_file():
        raise FileNotFoundError(f"mosaic image not found: {png}")
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def write_group_page(
    mosaic_table,
    out_html: str | Path,
    mapping_template_path: str | Path | None = None,
    classes: Sequence[str] = DEFAULT_CLASSES,
    title: str = "galtaxa: group inspection",
    inspectors: Sequence[str] = ("inspector1",),
) -> Path:
    """Write one self-contained HTML page showing every group's mosaics for visual classification.

    For each group (as in the table of :func:`galtaxa.label.group_mosaics`) the page shows the original and the
    pre-processed mosaic side by side, with the group size and the number of galaxies shown; the PNGs are
    embedded as base64 data URIs, so the single HTML file can be mailed or opened offline.  The page starts with
    the instructions, the class definitions and a summary table.

    Parameters
    ----------
    mosaic_table : pandas.DataFrame, or path to ``mosaics.json`` (or its folder)
        Columns ``group``, ``n_members``, ``n_shown``, ``png`` and optionally ``png_pre`` and ``name``.
    out_html : str or Path
    mapping_template_path : str or Path, optional
        The YAML form for the inspectors.  Written with :func:`write_mapping_template` (``classes``,
        ``inspectors``) if the file does not exist yet; its text is shown on the page.
    classes : sequence of str
    title : str
    inspectors : sequence of str
        Inspector names for a newly written template.

    Returns
    -------
    Path

    Raises
    ------
    FileNotFoundError
        A mosaic PNG named in the table is missing.
    ValueError
        The table lacks a required column.
    """
    table = mosaic_table if isinstance(mosaic_table, pd.DataFrame) else load_mosaic_table(mosaic_table)
    required = {"group", "n_members", "n_shown", "png"}
    if not required <= set(table.columns):
        raise ValueError(f"mosaic table lacks columns {sorted(required - set(table.columns))}")
    classes = _check_classes(classes, "write_group_page")
    out_html = Path(out_html)

    template_text = None
    if mapping_template_path is not None:
        mapping_template_path = Path(mapping_template_path)
        if not mapping_template_path.exists():
            write_mapping_template(table, mapping_template_path, classes=classes, inspectors=inspectors,
                                   page=out_html)
        template_text = mapping_template_path.read_text(encoding="utf-8")

    n_total = int(table["n_members"].sum()) if len(table) else 0
    groups = []
    for row in table.itertuples(index=False):
        g = int(row.group)
        views = [("original", _data_uri(row.png))]
        pre = getattr(row, "png_pre", "")
        if isinstance(pre, str | Path) and str(pre):
            views.append(("pre-processed", _data_uri(pre)))
        groups.append({"id": g, "label": "rejected (-1)" if g == REJECTED_GROUP else str(g),
                       "head": "Rejected galaxies (group -1)" if g == REJECTED_GROUP else f"Group {g}",
                       "n_members": int(row.n_members), "n_shown": int(row.n_shown),
                       "fraction": f"{row.n_members / n_total:.3f}" if n_total else "nan", "views": views})
    page = render_template(
        "group_page.html.j2", title=title, n_groups=int((table["group"] != REJECTED_GROUP).sum()), n_total=n_total,
        mapping_path=None if mapping_template_path is None else str(mapping_template_path),
        classes=[(c, CLASS_DESCRIPTIONS.get(c, "")) for c in classes], groups=groups, template_text=template_text)
    atomic_write_text(out_html, page)
    return out_html
