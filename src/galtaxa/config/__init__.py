"""The pipeline configuration: one YAML file, validated before any work starts.

``galtaxa init`` writes a commented default (:func:`default_config_yaml`);
:func:`load_config` reads a YAML file, merges it over the defaults and checks
every key and value, so a typo fails at once with a message that says what to
change instead of an hour into a run.

Beyond the keys and types, :func:`validate_config` bounds what a config may hold: at most
:data:`MAX_CONFIG_VALUES` values once YAML anchors and aliases are expanded (an "alias bomb" of a few lines
would otherwise expand to billions when the config is written into the catalogs), nesting at most
:data:`MAX_CONFIG_DEPTH` deep, integers within what the libraries accept (``seed`` in ``0 .. 2**32 - 1``,
any other integer within ``+-(2**31 - 1)``).  Every path setting (:data:`PATH_KEYS`) has ``~`` and
``$VAR`` / ``${VAR}`` expanded here, once, so every part of galtaxa sees the same path; an unset variable is
refused.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Mapping

import yaml

from ..status import log

from .paths import _expand_paths, expand_path, portable_config, resolve_config_paths
from .schema import (DEFAULTS, INT_MAX, MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH, MAX_CONFIG_VALUES, PATH_KEYS, SEED_MAX,
                     _SCHEMA, ConfigError, default_config, default_config_yaml, merge)

__all__ = ["ConfigError", "DEFAULTS", "default_config", "default_config_yaml", "load_config", "validate_config", "merge",
           "fit_to_input", "MIN_GALAXIES", "expand_path", "PATH_KEYS", "MAX_CONFIG_VALUES", "MAX_CONFIG_DEPTH",
           "MAX_CONFIG_BYTES", "SEED_MAX", "resolve_config_paths", "portable_config"]


def _check_expanded_size(cfg, where: str) -> None:
    """Refuse a config holding more than :data:`MAX_CONFIG_VALUES` values once aliases are expanded, or nested
    deeper than :data:`MAX_CONFIG_DEPTH` (a self-referencing alias too).

    YAML anchors and aliases make one object appear in many places; the count walks the config as JSON or a
    YAML dump without aliases would write it, and stops at the limit, so a few lines that expand to billions
    of values are refused in microseconds.
    """
    count = 0
    stack = [(cfg, 0)]
    while stack:
        obj, depth = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES:
            raise ConfigError(f"{where} expands to more than {MAX_CONFIG_VALUES:,} values (YAML anchors and aliases "
                              "repeated inside each other?); a galtaxa config holds a few hundred")
        if isinstance(obj, Mapping):
            children = [v for kv in obj.items() for v in kv]
        elif isinstance(obj, (list, tuple, set)):
            children = list(obj)
        else:
            continue
        if depth >= MAX_CONFIG_DEPTH and children:
            raise ConfigError(f"{where} is nested more than {MAX_CONFIG_DEPTH} levels deep (or an alias refers to "
                              "itself); a galtaxa config has sections of settings, a few levels deep")
        stack.extend((c, depth + 1) for c in children)


def _int_problems(value, name: str) -> list[str]:
    """Integers (also inside lists and mappings) beyond what the libraries take, named by setting."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        if name == "seed":  # its own range is the schema's check (0 to SEED_MAX)
            return []
        if not -INT_MAX <= value <= INT_MAX:
            return [f"'{name}' = {value} is out of range ({-INT_MAX} to {INT_MAX})"]
        return []
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in _int_problems(v, f"{name}.{k}")]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _int_problems(v, f"{name}[{i}]")]
    return []


def _short(value, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters (a config value may be long)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def _type_name(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def validate_config(cfg: Mapping, where: str = "config") -> dict:
    """Check keys, types and values; return the config with defaults filled in.

    Raises
    ------
    ConfigError
        Listing every problem found, each with the key and what to change.
    """
    _check_expanded_size(cfg, where)
    problems = []
    known_sections = {s for s in _SCHEMA if s}
    for key, value in cfg.items():
        if key in _SCHEMA[""]:
            continue
        if key not in known_sections:
            problems.append(f"unknown key '{key}' (known: {', '.join(sorted(known_sections | set(_SCHEMA[''])))})")
        elif not isinstance(value, Mapping):
            problems.append(f"'{key}' must be a mapping of settings, got {type(value).__name__}")
    full = merge(DEFAULTS, {k: v for k, v in cfg.items() if k in _SCHEMA[""] or isinstance(v, Mapping)})
    _expand_paths(full, problems)
    for section, keys in _SCHEMA.items():
        values = full if section == "" else full.get(section, {})
        if section and isinstance(cfg.get(section), Mapping):
            for key in cfg[section]:
                if key not in keys:
                    problems.append(f"unknown key '{section}.{key}' (known: {', '.join(keys)})")
        for key, (_default, types, check, help_text) in keys.items():
            name = f"{section}.{key}" if section else key
            value = values.get(key)
            types_t = types if isinstance(types, tuple) else (types,)
            if isinstance(value, bool) and bool not in types_t:
                ok_type = False
            elif float in types_t and isinstance(value, int) and not isinstance(value, bool):
                ok_type = True
            else:
                ok_type = isinstance(value, types_t)
            out_of_range = _int_problems(value, name) if ok_type else []
            if not ok_type:
                problems.append(f"'{name}' must be {_type_name(types)}, got {_short(value)} ({help_text})")
            elif out_of_range:
                problems += [f"{p} ({help_text})" for p in out_of_range]
            elif check is not None and not check(value):
                problems.append(f"'{name}' has an impossible value {_short(value)} ({help_text})")
    if full["route"] == "multimodal" and full["measure"]["enabled"] is False:
        problems.append("'route: multimodal' fuses the morphology parameters: set 'measure.enabled' to true")
    if full["reduce"]["fit_rows"] is not None and full["reduce"]["method"] != "pca":
        problems.append(f"'reduce.fit_rows' (out-of-core fitting) is for 'reduce.method: pca', not "
                        f"{full['reduce']['method']!r}: set it to null or use pca")
    algos = full["cluster"]["algorithms"]
    if isinstance(algos, list) and isinstance(full["cluster"]["min_agree"], int) and full["cluster"]["min_agree"] > len(algos):
        problems.append(
            f"'cluster.min_agree' = {full['cluster']['min_agree']} is above the number of algorithms ({len(algos)}): "
            "lower it or add voters"
        )
    ckpt = full["encoder"]["checkpoint"]
    if isinstance(ckpt, str) and not Path(ckpt).expanduser().exists():
        problems.append(f"'encoder.checkpoint' file {ckpt!r} does not exist: give the path of a local weights file or null")
    sup_ckpt = full["supervised"]["checkpoint"]
    if isinstance(sup_ckpt, str) and not Path(sup_ckpt).expanduser().exists():
        problems.append(f"'supervised.checkpoint' file {sup_ckpt!r} does not exist: give the backbone weights "
                        "(e.g. RUN_DIR/supervised/ssl/encoder.safetensors from `galtaxa pretrain`) or null")
    psf = full["measure"]["psf"]
    if isinstance(psf, str) and not Path(psf).expanduser().exists():
        problems.append(f"'measure.psf' file {psf!r} does not exist: give a FITS or .npy PSF image or null")
    mapping_file = full["labelling"]["mapping_file"]
    if isinstance(mapping_file, str) and not Path(mapping_file).expanduser().exists():
        problems.append(f"'labelling.mapping_file' {mapping_file!r} does not exist (run `galtaxa cluster` first, then fill the template)")
    val = full["validation"]
    if isinstance(val.get("references"), list) and isinstance(val.get("subsample"), (list, str)) \
            and (val["references"] or val["subsample"]):
        from ..validation.spec import spec_problems  # lazy: scikit-learn, only a config with a validation

        problems += spec_problems(val)
    if problems:
        raise ConfigError(f"{where} is invalid:\n  - " + "\n  - ".join(problems))
    return full


#: Fewest usable galaxies each route can cluster.
MIN_GALAXIES = {"usmorph": 4, "multimodal": 10}


def fit_to_input(cfg: Mapping, n_galaxies: int) -> tuple[dict, list[str]]:
    """Check the clustering settings against the number of usable galaxies, before any slow stage.

    Called once the input is read (the galaxy count is known) and before measurement.  A combination that
    cannot be fitted is adjusted (each change returned as a sentence and logged as a warning) or refused.

    * ``route: multimodal``: a Gaussian-mixture component in ``D = min(multimodal.bottleneck, N - 1)``
      dimensions (the whitened bottleneck has at most ``N - 1``) must not have more free parameters
      (:func:`galtaxa.cluster.gmm.parameters_per_component`) than there are galaxies.  Otherwise the covariance
      type becomes ``diag``; if diagonal components are still too many parameters, the bottleneck is lowered to
      the largest ``D`` with ``2 D + 1 <= N``.  Candidates ``K`` above ``N / (D + 1)`` (full covariances) or
      ``N / 2`` are dropped from ``multimodal.candidates``, keeping at least the smallest.  A given
      ``multimodal.n_components`` above ``N / 2`` is refused.
    * ``route: usmorph``: ``cluster.n_clusters`` above ``N / 2`` (fewer than two galaxies per group) is lowered
      to ``max(2, N // 2)``; ``reduce.n_components`` (an integer) above ``N - 1`` is lowered to ``N - 1``.

    Parameters
    ----------
    cfg : mapping
        A validated config (:func:`validate_config`).
    n_galaxies : int
        Galaxies that reached the pipeline (read without error).

    Returns
    -------
    (dict, list of str)
        The (possibly adjusted) config, a copy, and one sentence per adjustment (empty when none).

    Raises
    ------
    ConfigError
        When too few galaxies are given for the route, or a fixed number of components cannot be fitted; the
        message says what to change.
    """
    from ..cluster.gmm import parameters_per_component  # lazy: scikit-learn, not for every config read

    out = copy.deepcopy(dict(cfg))
    n = int(n_galaxies)
    route = out.get("route", "usmorph")
    need = MIN_GALAXIES.get(route, 2)
    if n < need:
        raise ConfigError(f"route '{route}' needs at least {need} usable galaxies; the input has {n}: add galaxies "
                          "(or check why the others could not be read: status and reason in the catalog)")
    notes: list[str] = []
    if route == "multimodal":
        mm = out["multimodal"]
        k_fixed = mm["n_components"] if isinstance(mm["n_components"], int) else None
        if k_fixed is not None and k_fixed > n // 2:
            raise ConfigError(f"'multimodal.n_components' = {k_fixed} groups for {n} galaxies leaves fewer than two "
                              f"per group: set it to at most {n // 2} or to 'bic'")
        dim = min(int(mm["bottleneck"]), n - 1)
        cov = mm["covariance_type"]
        if parameters_per_component(dim, cov) > n:
            was = f"{cov} covariances in {dim} dimensions ({parameters_per_component(dim, cov)} parameters per " \
                  f"component)"
            if cov in ("full", "tied") and parameters_per_component(dim, "diag") <= n:
                mm["covariance_type"] = cov = "diag"
                notes.append(f"multimodal.covariance_type: {was} cannot be fitted on {n} galaxies; using 'diag' "
                             f"({parameters_per_component(dim, 'diag')} parameters per component)")
            else:
                new_dim = max(2, (n - 1) // 2)
                cov_new = "diag" if cov in ("full", "tied") else cov
                notes.append(f"multimodal.bottleneck: {was} cannot be fitted on {n} galaxies; using "
                             f"{cov_new} covariances and a {new_dim}-d bottleneck (was {mm['bottleneck']})")
                mm["covariance_type"] = cov = cov_new
                mm["bottleneck"] = dim = min(int(mm["bottleneck"]), new_dim)
        k_max = max(1, n // (dim + 1)) if cov == "full" else max(1, n // 2)
        cands = sorted(set(mm["candidates"]))
        if k_fixed is None and cands[-1] > k_max:
            kept = [c for c in cands if c <= k_max] or cands[:1]
            notes.append(f"multimodal.candidates: K above {k_max} cannot be fitted on {n} galaxies with {cov} "
                         f"covariances in {dim} dimensions; scanning {kept} (was {cands})")
            mm["candidates"] = kept
    else:
        cl, red = out["cluster"], out["reduce"]
        if cl["n_clusters"] > n // 2:
            k = max(2, n // 2)
            notes.append(f"cluster.n_clusters: {cl['n_clusters']} groups for {n} galaxies leaves fewer than two per "
                         f"group; using {k}")
            cl["n_clusters"] = k
        nc = red["n_components"]
        if isinstance(nc, int) and not isinstance(nc, bool) and nc > n - 1:
            notes.append(f"reduce.n_components: {nc} dimensions for {n} galaxies; using {n - 1}")
            red["n_components"] = n - 1
    for note in notes:
        log.warning("config adjusted to the %d galaxies of the input: %s", n, note)
    return out, notes


def load_config(path: str | Path | None = None, overrides: Mapping | None = None) -> dict:
    """Read a YAML config (or none: the defaults), apply ``overrides``, validate.

    Relative paths in the file are relative to the file's folder (:func:`resolve_config_paths`); those in
    ``overrides`` (the command line's) to the working directory.
    """
    cfg: dict = {}
    where = "config"
    if path is not None:
        path = Path(path)
        where = str(path)
        if not path.exists():
            raise ConfigError(f"config file {path} not found (create one with `galtaxa init {path}`)")
        if not path.is_file():  # a folder, or a FIFO / device that a read would block on
            raise ConfigError(f"config file {path} is {'a folder' if path.is_dir() else 'not a regular file'}: "
                              "give a YAML file")
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {path} is {size:,} bytes; a galtaxa config is a few KB (at most "
                              f"{MAX_CONFIG_BYTES:,} bytes are read)")
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            line = raw[:err.start].count(b"\n") + 1
            raise ConfigError(f"{path}: line {line} is not UTF-8 (byte 0x{raw[err.start]:02x}); save the config "
                              "as UTF-8") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as err:
            for mark in (getattr(err, "context_mark", None), getattr(err, "problem_mark", None)):
                if mark is not None:
                    mark.name = str(path)  # PyYAML names a string "<unicode string>"
            raise ConfigError(f"{path} is not valid YAML: {err}") from err
        except RecursionError:
            raise ConfigError(f"{path} is nested too deeply to be read (at most {MAX_CONFIG_DEPTH} levels make "
                              "sense)") from None
        if loaded is not None and not isinstance(loaded, Mapping):
            raise ConfigError(f"{path} must hold a mapping of sections, got {type(loaded).__name__}")
        _check_expanded_size(loaded or {}, where)
        cfg = resolve_config_paths(dict(loaded or {}), path.parent)
    if overrides:
        cfg = merge(cfg, overrides)
    return validate_config(cfg, where)


