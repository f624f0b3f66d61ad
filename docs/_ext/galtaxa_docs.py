"""Sphinx directives that generate galtaxa's reference pages from the code (nothing is copied by hand).

* ``galtaxa-config``: every config key from :data:`galtaxa.config._SCHEMA` -- section, key, default, allowed
  types, help text -- and the commented default file ``galtaxa init`` writes
  (:func:`galtaxa.config.default_config_yaml`).
* ``galtaxa-cli``: the ``--help`` of ``galtaxa`` and of every subcommand, from :func:`galtaxa.cli.build_parser`.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.util.docutils import SphinxDirective


def _type_names(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {type(None): "null", bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "mapping"}
    return " | ".join(names.get(t, t.__name__) for t in types)


def _default(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def _inline(text: str) -> nodes.paragraph:
    """One paragraph: the `quoted` parts of a help text as literals, the rest as plain text (no markup read)."""
    para = nodes.paragraph()
    for i, part in enumerate(" ".join(str(text).split()).split("`")):
        if part:
            para += nodes.literal(text=part) if i % 2 else nodes.Text(part)
    return para


def _table(header: list[str], rows: list[list[nodes.Node]], widths: list[int]) -> nodes.table:
    table = nodes.table()
    group = nodes.tgroup(cols=len(header))
    table += group
    group += [nodes.colspec(colwidth=w) for w in widths]
    head = nodes.thead()
    group += head
    head += nodes.row("", *[nodes.entry("", nodes.paragraph(text=h)) for h in header])
    body = nodes.tbody()
    group += body
    for cells in rows:
        body += nodes.row("", *[nodes.entry("", cell) for cell in cells])
    return table


class ConfigReference(SphinxDirective):
    """One table per config section (key, default, type, meaning), then the commented default config."""

    has_content = False

    def run(self):
        from galtaxa import config

        self.env.note_dependency(config.schema.__file__)
        out: list[nodes.Node] = []
        for section, keys in config._SCHEMA.items():
            rows = []
            for key, (default, types, _check, help_text) in keys.items():
                name = f"{section}.{key}" if section else key
                rows.append([nodes.paragraph("", "", nodes.literal(text=name)),
                             nodes.paragraph("", "", nodes.literal(text=_default(default))),
                             nodes.paragraph(text=_type_names(types)), _inline(help_text)])
            title = f"{section}:" if section else "top level"
            out.append(self._section(f"config-{section or 'top-level'}", title,
                                     [_table(["key", "default", "type", "meaning"], rows, [20, 18, 12, 50])]))
        intro = _inline("`galtaxa init galtaxa.yaml` writes this file (every key optional, the defaults shown):")
        block = nodes.literal_block(text=config.default_config_yaml(), language="yaml")
        out.append(self._section("config-default-file", "the default file", [intro, block]))
        return out

    @staticmethod
    def _section(ident: str, title: str, children: list[nodes.Node]) -> nodes.section:
        section = nodes.section(ids=[ident], names=[ident])
        section += nodes.title(text=title)
        section += children
        return section


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:  # argparse keeps its subcommands here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


class CliReference(SphinxDirective):
    """The help of ``galtaxa`` and of each subcommand, in the parser's order."""

    has_content = False

    def run(self):
        from galtaxa.cli import build_parser

        os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width: fixed, so the page is reproducible
        parser = build_parser()
        parser.prog = "galtaxa"
        sub = _subparsers(parser)
        out: list[nodes.Node] = [nodes.literal_block(text=parser.format_help(), language="text")]
        if sub is None:
            return out
        helps = {a.dest: a.help for a in sub._choices_actions}
        for name, subparser in sub.choices.items():
            section = nodes.section(ids=[f"galtaxa-{name}"], names=[f"galtaxa {name}"])
            section += nodes.title(text=f"galtaxa {name}")
            if helps.get(name):
                section += nodes.paragraph(text=helps[name])
            section += nodes.literal_block(text=subparser.format_help(), language="text")
            out.append(section)
        return out


#: A word ending in ``_`` (scikit-learn's fitted attributes: ``n_components_``), which reST would read as a
#: hyperlink reference, outside backquotes.
_TRAILING_UNDERSCORE = re.compile(r"(?<![\w\\])([A-Za-z]\w*)_(?=[\s,.;:)\]]|$)")


def escape_fitted_attributes(app, what, name, obj, options, lines):
    """``kept_`` or ``(N, n_components_)`` in a docstring's prose or types is text, not a hyperlink reference."""
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("..", ":")):  # directives and field names keep their names
            continue
        parts = line.split("`")
        for j in range(0, len(parts), 2):  # the parts outside backquotes
            parts[j] = _TRAILING_UNDERSCORE.sub(r"\1\\_", parts[j])
        lines[i] = "`".join(parts)


def skip_member(app, what, name, obj, skip, options):
    """scikit-learn's metadata-routing setters (``set_fit_request``, ...) are scikit-learn's, not galtaxa's."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


#: A Markdown link to a file beside the including file: ``[mosaic](name.png)``.
_LOCAL_LINK = re.compile(r"\]\(([\w.-]+\.(?:png|json|csv))\)")


def relink_benchmark_files(app, relative_path, parent_docname, content):
    """Links of a ``benchmarks/results/*.md`` file to the figures beside it, made relative to ``docs/benchmarks/``
    (where the pages that include these files live), so they resolve on the site as they do in the repository."""
    folder = Path(app.srcdir) / relative_path.parent
    if folder.resolve() != (Path(app.srcdir).parent / "benchmarks" / "results").resolve():
        return
    prefix = os.path.relpath(folder, Path(app.srcdir) / "benchmarks").replace(os.sep, "/")
    content[0] = _LOCAL_LINK.sub(lambda m: f"]({prefix}/{m.group(1)})", content[0])


def setup(app):
    app.connect("include-read", relink_benchmark_files)
    app.connect("autodoc-process-docstring", escape_fitted_attributes, priority=600)  # after numpydoc (500)
    app.connect("autodoc-skip-member", skip_member)
    app.add_directive("galtaxa-config", ConfigReference)
    app.add_directive("galtaxa-cli", CliReference)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
