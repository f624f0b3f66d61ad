#!/usr/bin/env bash
# The wheel works away from the checkout (`make wheel-check`).
#
#   scripts/check_wheel.sh PYTHON WHEEL
#
# PYTHON is an interpreter that has galtaxa's dependencies (the project's .venv); the wheel is installed with
# --no-deps into a temporary folder put first on PYTHONPATH, and everything runs from another temporary folder, so
# the checkout's src/ is never read: the import must come from the wheel, the wheel must hold every non-Python file
# of the package (templates, the inspection app's page, scripts and styles, the shipped encoder weights), and
# `galtaxa demo --fast` (the wheel's own console script) must write a catalog and a report.
set -euo pipefail

PY=${1:?usage: scripts/check_wheel.sh PYTHON WHEEL}
WHEEL=${2:?usage: scripts/check_wheel.sh PYTHON WHEEL}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
WHEEL=$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/galtaxa-wheel.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
SITE="$TMP/site"
"$PY" -m pip install --quiet --no-deps --no-compile --target "$SITE" "$WHEEL"

# every non-Python file of the package in the checkout must be in the installed wheel
missing=0
while IFS= read -r f; do
  rel=${f#"$ROOT/src/"}
  if [ ! -f "$SITE/$rel" ]; then echo "not in the wheel: $rel"; missing=1; fi
done < <(find "$ROOT/src/galtaxa" -type f ! -name '*.py' ! -name '*.pyc' ! -path '*/__pycache__/*')
[ "$missing" = 0 ] || { echo "pyproject.toml's [tool.setuptools.package-data] misses the files above"; exit 1; }

cd "$TMP"
export PYTHONPATH="$SITE"
"$PY" - "$SITE" <<'EOF'
import sys
from pathlib import Path

site = Path(sys.argv[1]).resolve()
import galtaxa
from galtaxa.encode.galaxy_encoder import SHIPPED_DIR
from galtaxa.inspect.app import create_app  # noqa: F401  (Flask app module imports)

where = Path(galtaxa.__file__).resolve()
assert where.is_relative_to(site), f"galtaxa imported from {where}, not from the wheel in {site}"
assert Path(SHIPPED_DIR).resolve().is_relative_to(site), SHIPPED_DIR
print(f"galtaxa {galtaxa.__version__} imported from {where.parent}")
EOF

"$SITE/bin/galtaxa" --version
start=$(date +%s)
"$SITE/bin/galtaxa" demo --fast --out "$TMP/demo" > "$TMP/demo.log" 2>&1 || { cat "$TMP/demo.log"; exit 1; }
tail -n 5 "$TMP/demo.log"

"$PY" - "$SITE" "$TMP/demo" <<'EOF'
import sys
from pathlib import Path

site, run = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
for name in ("catalog.parquet", "catalog.csv", "catalog.fits", "groups.html", "report/report.html"):
    assert (run / name).is_file(), f"the demo did not write {name}"
# the inspection app serves its page and its static files from the wheel
from galtaxa.inspect.app import create_app

client = create_app(run).test_client()
for url in ("/", "/static/app.js", "/static/viewer.js", "/static/app.css", "/api/run"):
    assert client.get(url).status_code == 200, url
loaded = [m.__file__ for m in list(sys.modules.values())
          if m.__name__.startswith("galtaxa") and getattr(m, "__file__", None)]
outside = [f for f in loaded if not Path(f).resolve().is_relative_to(site)]
assert not outside, f"galtaxa modules read outside the wheel: {outside}"
print(f"demo catalog, report and inspection app OK from the wheel ({len(loaded)} galtaxa modules)")
EOF
echo "wheel check passed: $(basename "$WHEEL"), demo --fast in $(( $(date +%s) - start )) s"
