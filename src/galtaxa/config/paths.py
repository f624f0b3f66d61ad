"""Paths in a config: ``~`` and ``$VAR`` expanded, relative paths of a config file resolved against its folder, and
the portable form a run folder's ``config.yaml`` is written in."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Mapping



from .schema import PATH_KEYS, ConfigError

__all__ = ["expand_path", "resolve_config_paths", "portable_config"]

_VAR = re.compile(r"\$(\w+|\{[^}]*\})")


def expand_path(value: str, key: str = "path") -> str:
    """``value`` with ``~`` / ``~user`` and ``$VAR`` / ``${VAR}`` expanded, as a shell would.

    Used for every path setting of a config (:data:`PATH_KEYS`) and for the ``RUN_DIR`` arguments of the
    commands, so that ``run_dir: ~/x`` and ``run_dir: $HOME/x`` name the same folder everywhere.

    Parameters
    ----------
    value : str
        The path as written.
    key : str
        The setting's name, for the message.

    Returns
    -------
    str
        The expanded path (relative paths stay relative).

    Raises
    ------
    ConfigError
        When ``value`` names an environment variable that is not set, or a ``~user`` that does not exist.

    Examples
    --------
    >>> import os
    >>> expand_path("$HOME/x") == expand_path("~/x") == os.path.join(os.path.expanduser("~"), "x")
    True
    """
    unset = [m.group(1).strip("{}") for m in _VAR.finditer(value) if m.group(1).strip("{}") not in os.environ]
    if unset:
        raise ConfigError(f"'{key}' = {value!r} names the environment variable {unset[0]!r}, which is not set: "
                          "set it or write the path out")
    out = os.path.expanduser(os.path.expandvars(value))
    if out.startswith("~"):
        raise ConfigError(f"'{key}' = {value!r}: no user {out.split('/')[0][1:]!r} to expand {out.split('/')[0]!r} "
                          "for; write the path out")
    return out


def _path_settings(cfg: Mapping):
    """``(container, key, name)`` of every path setting present in ``cfg``: :data:`PATH_KEYS`, the ``path`` of
    ``validation.references`` entries and the ``checkpoint`` of ``multimodal.encoders`` mappings (``input.labels:
    auto`` is not a path)."""
    found = []
    for section, key in PATH_KEYS:
        target = cfg if not section else cfg.get(section)
        if isinstance(target, dict) and key in target:
            found.append((target, key, f"{section}.{key}" if section else key))
    refs = (cfg.get("validation") or {}).get("references") if isinstance(cfg.get("validation"), Mapping) else None
    for i, ref in enumerate(refs if isinstance(refs, list) else []):
        if isinstance(ref, dict) and "path" in ref:
            found.append((ref, "path", f"validation.references[{i}].path"))
    multimodal = cfg.get("multimodal")
    encoders = multimodal.get("encoders") if isinstance(multimodal, Mapping) else None
    for i, spec in enumerate(encoders if isinstance(encoders, list) else []):
        if isinstance(spec, dict) and "checkpoint" in spec:
            found.append((spec, "checkpoint", f"multimodal.encoders[{i}].checkpoint"))
    return [(c, k, n) for c, k, n in found
            if isinstance(c[k], str) and c[k] and not (n == "input.labels" and c[k] == "auto")]


def _expand_paths(full: dict, problems: list[str]) -> None:
    """Expand ``~`` and ``$VAR`` in every path setting of ``full`` in place (:func:`expand_path`)."""
    for container, key, name in _path_settings(full):
        try:
            container[key] = expand_path(container[key], name)
        except ConfigError as err:
            problems.append(str(err))


def resolve_config_paths(cfg: dict, base) -> dict:
    """Make the relative path settings of a config file name files beside it, in place.

    The usual convention (Make, Snakemake, CMake): a relative path written in a config file is relative to the
    file's own folder, so that a run folder holding its ``config.yaml`` can be copied or moved and the config
    still names what is inside it.  Paths given on the command line or left at their defaults stay relative to
    the working directory.  ``~`` and ``$VAR`` are expanded first (an absolute result stays as it is); a value
    that cannot be expanded is left for :func:`validate_config` to report.

    Parameters
    ----------
    cfg : dict
        The mapping read from the file.
    base : path-like
        The file's folder.

    Returns
    -------
    dict
        ``cfg``.
    """
    base = Path(base).absolute()
    for container, key, name in _path_settings(cfg):
        try:
            expanded = expand_path(container[key], name)
        except ConfigError:
            continue
        if not os.path.isabs(expanded):
            container[key] = os.path.normpath(os.path.join(base, expanded))
    return cfg


def portable_config(cfg: Mapping, folder) -> dict:
    """A copy of ``cfg`` to write into ``folder/config.yaml``: what lies inside ``folder`` as relative paths.

    Paths inside ``folder`` (``run_dir`` itself is ``.``) become relative to it, every other path absolute, so
    that the file read back with :func:`load_config` (which resolves against the file's folder,
    :func:`resolve_config_paths`) names the same files, and still names the run's own files after the folder is
    copied or moved.

    Parameters
    ----------
    cfg : mapping
        A validated config.
    folder : path-like
        Where the config file is written.

    Returns
    -------
    dict
    """
    out = copy.deepcopy(dict(cfg))
    folder = Path(os.path.abspath(folder))
    for container, key, _name in _path_settings(out):
        path = Path(os.path.abspath(container[key]))
        try:
            container[key] = path.relative_to(folder).as_posix()
        except ValueError:
            container[key] = str(path)
    return out


