"""Serving the inspection app: a waitress WSGI server on 127.0.0.1 by default, the browser opened on it."""

from __future__ import annotations

import webbrowser

from waitress import create_server

from ..status import log

__all__ = ["make_server", "serve", "app_url"]


def app_url(host: str, port: int) -> str:
    """The address to open in a browser (``localhost`` for a wildcard bind, brackets for IPv6)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def make_server(app, host: str = "127.0.0.1", port: int = 8765, threads: int = 8):
    """A waitress server for ``app`` (not started); ``port=0`` picks a free port (``server.effective_port``).

    Raises
    ------
    ValueError
        For a port outside 0-65535 (the socket layer would silently take it modulo 65536).
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port {port!r} is not a port number: ports run from 0 (any free port) to 65535")

    return create_server(app, host=host, port=port, threads=threads, ident="galtaxa-inspect")


def serve(app, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True) -> None:
    """Serve ``app`` until interrupted (Ctrl-C), opening the user's browser on it."""
    server = make_server(app, host, port)
    url = app_url(host, server.effective_port)
    print(f"galtaxa inspect: {url}  (Ctrl-C to stop)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("  listening beyond this machine: anyone on the network who can reach it can save labels; use it "
              "only on a trusted network", flush=True)
    if open_browser:
        try:
            webbrowser.open(url)
        except webbrowser.Error as err:  # no browser on a headless machine: the URL is printed above
            log.info("no browser opened (%s)", err)
    try:
        server.run()
    except KeyboardInterrupt:
        print("galtaxa inspect: stopped", flush=True)
    finally:
        server.close()
