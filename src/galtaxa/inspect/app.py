"""The inspection web app (Flask): the page, its JSON API and the pictures, for one run folder.

Routes
------
``GET /``                                the page (``templates/index.html``, ``static/app.js``)
``GET /api/run``                         run summary, classes, groups with their sizes, shares and medians
``GET /api/groups/<g>``                  the galaxies shown for group ``g`` (its mosaic's members), with the values
                                         its grid can be sorted and filtered by and the catalog's flags
``GET /api/votes``                       every inspector's class and comment per group, the resolved class
``POST /api/vote``                       ``{inspector, group, class}`` (``class: null`` clears) -> ``mapping.yaml``
``POST /api/comment``                    ``{inspector, group, comment}`` -> ``group_comments.csv``
``GET /api/apply``                       the classes in the catalog against the names of ``mapping.yaml``, the job
``POST /api/apply``                      ``{inspector}``: put the names in the catalog (``galtaxa run`` with the
                                         run's mapping, cached stages reused: :mod:`~galtaxa.inspect.apply`)
``GET /api/galaxy/<row>``                one catalog row (raw, and formatted: :mod:`~galtaxa.inspect.measures`), the
                                         labels given to that galaxy, its pixel scale and pixel sources
``POST /api/label``                      ``{inspector, id, class?, flags?}`` -> ``labels_inspected.csv``
``GET /api/labels``                      every single-galaxy label
``GET /api/queue?inspector=&limit=``     the galaxies to label next, most useful first
``GET /api/pixels/<row>?source=native|stamp|polar``  a galaxy's pixel values for the large view (float32,
                                         ``C x H x W``, shape in ``X-Pixels-Shape``; :mod:`~galtaxa.inspect.pixels`)
``GET /img/<row>.png?view=&stretch=&size=``  a galaxy's picture
``GET /mosaic/<g>.png?view=original|pre``    a group's mosaic PNG as the run wrote it
``GET /files/<path>``                    a file of the run folder (groups.html, report/...), confined to it

Safety: every value reaches the page through ``textContent`` or Jinja2's autoescaping, and a Content Security
Policy forbids inline scripts; every file read is confined to the run folder (:func:`~galtaxa.inspect.paths.
confine`), but for the run's own input (its config's ``input.path``), read by galtaxa's readers for the native
cutout of the galaxy row a request names (:mod:`~galtaxa.inspect.pixels`); a POST must be JSON from the app's own origin (no cross-site form can save a label); on a loopback
address only ``Host: localhost / 127.0.0.1 / [::1]`` is answered (no DNS rebinding).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from flask import Flask, abort, jsonify, render_template, request, send_file

from ..label import CLASS_DESCRIPTIONS
from ..status import log
from .apply import ApplyJob
from .images import SIZES, GalaxyImages
from .measures import all_fields, key_measurements, measurement_flags
from .paths import OutsideRunError, confine
from .pixels import PIXEL_SOURCES, NativeCutouts, PixelsUnavailable, encode, pixel_scale
from .run import InspectionRun
from .store import FLAGS, InspectionStore, StoreError, check_inspector

__all__ = ["create_app", "FILE_SUFFIXES"]

#: File types ``/files/`` serves from the run folder.
FILE_SUFFIXES = {".html": "text/html", ".png": "image/png", ".json": "application/json", ".csv": "text/csv",
                 ".yaml": "text/plain", ".md": "text/plain", ".txt": "text/plain"}

_APP_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
#: Files of the run folder (the static page, the report) are shown sandboxed: their scripts never run.
_FILE_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(netloc: str) -> str:
    return (urlsplit(f"//{netloc}").hostname or "").lower()


def create_app(run_dir: str | Path, inspector: str | None = None, host: str = "127.0.0.1") -> Flask:
    """The inspection app for one run folder.

    Parameters
    ----------
    run_dir : str or Path
        A finished run folder (with a catalog).
    inspector : str, optional
        The default inspector name shown on the page (each browser may change it).
    host : str
        The address the server listens on; on a loopback address only local ``Host`` headers are answered.

    Raises
    ------
    NoCatalogError, NotADirectoryError
        ``run_dir`` is not a finished run (see :class:`~galtaxa.inspect.run.InspectionRun`).
    """
    run = InspectionRun(run_dir)
    images = GalaxyImages(run)
    native = NativeCutouts(run.config, run.run_dir)
    job = ApplyJob(run.run_dir)
    store = InspectionStore(run.run_dir, [g for g in run.group_ids() if g >= 0], sizes=run.sizes(),
                            ids=run.catalog["id"])
    if inspector is not None:
        inspector = check_inspector(inspector)
    loopback_only = _is_loopback(host)

    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024, TEMPLATES_AUTO_RELOAD=False)
    app.json.sort_keys = False  # keep the order of classes, groups and morphology columns
    app.extensions["galtaxa_inspect"] = {"run": run, "images": images, "store": store, "native": native,
                                         "apply": job}

    # ------------------------------------------------------------------ guards
    @app.before_request
    def _guard():
        if loopback_only and not _is_loopback(_host_name(request.host)):
            abort(421, description="this app answers only on localhost (started on a loopback address)")
        if request.method not in ("GET", "HEAD"):
            if not request.is_json:
                abort(415, description="send JSON (Content-Type: application/json)")
            origin = request.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
                abort(403, description="cross-origin request refused")

    @app.after_request
    def _headers(resp):
        resp.headers.setdefault("Content-Security-Policy", _APP_CSP)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        if request.path.startswith("/api/"):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.errorhandler(StoreError)
    def _store_error(err):
        return jsonify(error=str(err)), 400

    for code in (400, 403, 404, 405, 409, 413, 415, 421, 503):
        app.register_error_handler(code, lambda err, code=code: (jsonify(error=getattr(err, "description", str(err))),
                                                                 code))

    def body() -> dict:
        try:
            data = request.get_json(silent=True)
        except RecursionError:  # e.g. 30,000 nested brackets (silent=True only covers malformed JSON)
            abort(400, description="the JSON body is nested too deeply")
        if not isinstance(data, dict):
            abort(400, description="expected a JSON object")
        return data

    def row_or_404(row: int) -> int:
        if not 0 <= row < len(run.catalog):
            abort(404, description=f"no galaxy at row {row}")
        return row

    def labels_by_id() -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for r in store.labels():
            out.setdefault(r["id"], []).append(r)
        return out

    # ------------------------------------------------------------------ page
    @app.get("/")
    def index():
        return render_template("index.html", run=run.summary())

    @app.get("/api/run")
    def api_run():
        groups = run.groups()
        for g in groups:
            g["views"] = list(images.views(g["group"]))
        try:
            classes = list(store.mapping().classes)
            mapping_error = None
        except StoreError as err:
            classes, mapping_error = list(store.default_classes), str(err)
        return jsonify(
            run=run.summary(), inspector=inspector, classes=classes,
            descriptions={c: CLASS_DESCRIPTIONS.get(c, "") for c in classes}, flags=list(FLAGS), groups=groups,
            catalog_flags=run.catalog_flag_kinds(),
            images=images.describe(), mapping_error=mapping_error,
            files={n: (run.run_dir / n).is_file() for n in ("groups.html", "report/report.html")})

    @app.get("/api/groups/<int(signed=True):group>")
    def api_group(group: int):
        if group not in run.group_ids():
            abort(404, description=f"no group {group}")
        labels = labels_by_id()
        keys = run.sort_keys()
        members = []
        for r in run.members(group):
            b = run.brief(r)
            b["labels"] = labels.get(b["id"], [])
            b["has_image"] = images.available(r)
            b["values"] = run.sort_values(r, keys)
            b["flag_kinds"] = run.flag_kinds(r)
            members.append(b)
        return jsonify(group=group, views=list(images.views(group)), members=members, sort_keys=keys,
                       n=run.sizes().get(group, 0))

    @app.get("/api/votes")
    def api_votes():
        mapping = store.mapping()
        table = mapping.votes_table()
        comments: dict[int, dict[str, str]] = {}
        for k, c in enumerate(store.comments()):
            try:
                g = int(c["group"])
            except ValueError:  # a hand edit: the other comments are still shown
                log.warning("%s: row %d: group %r is not a group number; comment ignored", store.comments_path,
                            k + 1, c["group"][:40])
                continue
            comments.setdefault(g, {})[c["inspector"]] = c["comment"]
        out = {}
        for rec in table.to_dict("records"):
            g = int(rec["group"])
            chosen = {name: votes.get(g) for name, votes in mapping.assignments.items() if votes.get(g)}
            out[str(g)] = {"votes": chosen, "resolved": rec["class"], "classified": bool(rec["classified"]),
                           "tie": bool(rec["tie"]), "disagree": len(set(chosen.values())) > 1,
                           "summary": rec["votes"], "comments": comments.get(g, {})}
        return jsonify(classes=list(mapping.classes), groups=out,
                       inspectors=[n for n, v in mapping.assignments.items() if any(v.values())])

    @app.post("/api/vote")
    def api_vote():
        data = body()
        cls = data.get("class")
        mapping = store.set_group_class(data.get("inspector"), data.get("group"), cls)
        g = int(data["group"])
        return jsonify(ok=True, group=g, votes={n: v.get(g) for n, v in mapping.assignments.items() if v.get(g)})

    @app.post("/api/comment")
    def api_comment():
        data = body()
        row = store.set_group_comment(data.get("inspector"), data.get("group"), data.get("comment", ""))
        return jsonify(ok=True, comment=row)

    # ------------------------------------------------------------------ applying the names to the catalog
    def apply_status() -> dict:
        config = run.run_dir / "config.yaml"
        out = {"job": job.describe(), "mapping_file": store.mapping_path.name, "config": config.is_file(),
               "config_mapping": None, "resolved": {}, "in_catalog": run.catalog_classes(), "differs": [],
               "n_named": 0, "error": None}
        if config.is_file():
            try:
                current = ((yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("labelling")
                           or {}).get("mapping_file")
            except (OSError, ValueError, AttributeError):
                current = None
            if isinstance(current, str) and current:
                path = Path(current)
                try:
                    out["config_mapping"] = (run.run_dir / path).resolve().relative_to(run.run_dir).as_posix()
                except (ValueError, OSError):
                    out["config_mapping"] = path.name
        try:
            resolved = store.mapping().resolve()
        except (StoreError, ValueError) as err:
            out["error"] = str(err)
            resolved = {}
        out["resolved"] = {str(g): c for g, c in resolved.items()}
        out["n_named"] = sum(1 for c in resolved.values() if c)
        out["differs"] = [g for g, c in resolved.items() if out["in_catalog"].get(g, "") != c]
        out["in_catalog"] = {str(g): c for g, c in out["in_catalog"].items()}
        return out

    @app.get("/api/apply")
    def api_apply_status():
        return jsonify(apply_status())

    @app.post("/api/apply")
    def api_apply():
        data = body()
        who = check_inspector(data.get("inspector"))
        state = apply_status()
        if not state["config"]:
            abort(400, description="this run folder has no config.yaml (the config its run wrote): run "
                                   "`galtaxa run CONFIG` with labelling.mapping_file: mapping.yaml instead")
        if state["error"]:
            abort(400, description=state["error"])
        if not state["n_named"]:
            abort(400, description="no group has a class yet (a tie or a group nobody named stays unclassified): "
                                   "name groups first")
        if not job.start(who):
            abort(409, description="the mapping is being applied already; wait for it to finish")
        log.info("inspect: %s applies %s to the catalog", who, store.mapping_path)
        return jsonify(apply_status())

    # ------------------------------------------------------------------ galaxies
    @app.get("/api/galaxy/<int:row>")
    def api_galaxy(row: int):
        row = row_or_404(row)
        rec = run.galaxy(row)
        gid = str(rec["id"])
        scale, scale_from = pixel_scale(run.config, rec)
        return jsonify(row=row, brief=run.brief(row), catalog=rec, labels=labels_by_id().get(gid, []),
                       best_guess=run.best_guess(row),
                       measurements=key_measurements(rec, scale), measure_flags=measurement_flags(rec),
                       fields=all_fields(rec, run.run_dir),
                       has_image=images.available(row),
                       views=list(images.views(int(rec["group"])) if images.available(row) else []),
                       pixel_scale=scale, pixel_scale_from=scale_from,
                       pixels={"native": native.state, "stamp": images.has_pixels and images.available(row)})

    @app.post("/api/label")
    def api_label():
        data = body()
        keep = [k for k in ("class", "flags") if k not in data]
        if len(keep) == 2:
            abort(400, description="send 'class' and/or 'flags'")
        flags = data.get("flags") or []
        if not isinstance(flags, list):
            abort(400, description="'flags' must be a list")
        gid = data.get("id")
        if not isinstance(gid, str) or run.row_of(gid) is None:
            abort(400, description=f"no galaxy {gid!r} in the catalog")
        row = store.set_galaxy_label(data.get("inspector"), gid, data.get("class"), flags, keep=keep)
        return jsonify(ok=True, label=row, labels=labels_by_id().get(gid, []))

    @app.get("/api/labels")
    def api_labels():
        return jsonify(labels=store.labels())

    @app.get("/api/queue")
    def api_queue():
        name = request.args.get("inspector", "")
        try:
            limit = min(max(int(request.args.get("limit", 30)), 1), 500)
        except ValueError:
            abort(400, description="limit must be an integer")
        labels = store.labels()
        done = {r["id"] for r in labels if r["inspector"] == name and r["class"]}
        rows = run.queue(done_ids=done, limit=limit, usable=images.available)
        mine = sum(1 for r in labels if r["inspector"] == name and r["class"])
        by_id = labels_by_id()
        items = []
        for r in rows:
            b = run.brief(r)
            b["labels"] = by_id.get(b["id"], [])
            items.append(b)
        return jsonify(items=items, labelled_by_you=mine, n_rejected=run.summary()["n_rejected"],
                       has_predictions=run.has_predictions,
                       order=("rejected by the vote first, then the least confident "
                              + ("(classifier confidence: each galaxy's highest probability)"
                                 if run.has_predictions else "(clustering agreement)")))

    # ------------------------------------------------------------------ pictures and files
    @app.get("/img/<int:row>.png")
    def img(row: int):
        row = row_or_404(row)
        try:
            size = int(request.args.get("size", 96))
        except ValueError:
            abort(400, description=f"size must be one of {SIZES}")
        try:
            data = images.png(row, request.args.get("view", "original"), request.args.get("stretch", "stored"), size)
        except ValueError as err:
            abort(400, description=str(err))
        except LookupError as err:
            abort(404, description=str(err))
        resp = app.response_class(data, mimetype="image/png")
        resp.headers["Cache-Control"] = "private, max-age=3600"
        return resp

    @app.get("/api/pixels/<int:row>")
    def api_pixels(row: int):
        row = row_or_404(row)
        source = request.args.get("source", "native")
        if source not in PIXEL_SOURCES:
            abort(400, description=f"source must be one of {', '.join(PIXEL_SOURCES)}")
        gid = str(run.catalog["id"].iat[row])
        try:
            if source == "native":
                values = native.read(gid)
                what = f"native cutout ({native.state['kind']})"
            else:
                values = images.stamp(row, "polar" if source == "polar" else "original")
                what = "conditioned stamp" if source == "stamp" else "polar unfolding of the conditioned stamp"
            data, shape = encode(values)
        except PixelsUnavailable as err:
            abort(err.status, description=str(err))
        except LookupError as err:
            abort(404, description=str(err))
        resp = app.response_class(data, mimetype="application/octet-stream")
        resp.headers["X-Pixels-Shape"] = shape
        resp.headers["X-Pixels-Source"] = what
        return resp

    @app.get("/mosaic/<int(signed=True):group>.png")
    def mosaic(group: int):
        view = request.args.get("view", "original")
        if view not in ("original", "pre"):
            abort(400, description="view must be original or pre")
        png = run.mosaic_png(group, view)
        if png is None:
            abort(404, description=f"no {view} mosaic for group {group}")
        return send_file(png, mimetype="image/png", max_age=3600)

    @app.get("/files/<path:relpath>")
    def files(relpath: str):
        try:
            path = confine(run.run_dir, relpath)
        except OutsideRunError as err:
            abort(404, description=str(err))
        except FileNotFoundError:
            abort(404, description=f"no file {relpath!r} in the run folder")
        mime = FILE_SUFFIXES.get(path.suffix.lower())
        if mime is None:
            abort(404, description=f"{path.suffix or 'this'} files are not served")
        resp = send_file(path, mimetype=mime, max_age=0)
        resp.headers["Content-Security-Policy"] = _FILE_CSP
        return resp

    return app
