"""HTML pages from the Jinja2 templates in ``galtaxa/templates/``, every value escaped."""

from __future__ import annotations

import functools

import jinja2

__all__ = ["render_template"]


@functools.lru_cache(maxsize=1)
def _environment():
    env = jinja2.Environment(loader=jinja2.PackageLoader("galtaxa", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pyrepr"] = repr  # a Python literal shown on a page (escaped like any other value)
    return env


def render_template(name: str, **context) -> str:
    """Render template ``name`` with ``context``; strings are HTML-escaped (autoescape), a missing name raises.

    Parameters
    ----------
    name : str
        File name in ``galtaxa/templates/``.
    **context
        The template's variables.

    Returns
    -------
    str
        The page.

    Examples
    --------
    >>> "&lt;b&gt;" in render_template("report.html.j2", title="<b>", toc=[], blocks=[])
    True
    """
    return _environment().get_template(name).render(**context)
