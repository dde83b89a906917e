#!/bin/sh
# Make sure Fashion-MNIST is present: found already, else Debian's package
# (when we are root on Debian/Ubuntu), else a verified download. Data that is
# there but cannot be used (MNISTLAB_DATA_DIR naming no folder, say) stops here
# with its reason: neither the package nor a download would mend it.
set -e
PY="$1"
# Exits 0 where found, 3 where not found; else says why not on stderr.
found() {
    "$PY" -c 'import sys
from mnistlab.data.datasets import NotFound, locate
from mnistlab.errors import DatasetError, printable
try:
    locate("fashion-mnist", download=False)
except NotFound:
    sys.exit(3)
except DatasetError as exc:
    sys.exit(f"error: {printable(str(exc))}")  # one line, as the command line says it'
}
look() {
    status=0
    found || status=$?
    [ "$status" = 0 ] && exit 0
    [ "$status" = 3 ] || exit "$status"
}
look
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's dataset-fashion-mnist package…"
    apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null; } || true
fi
look
"$PY" -m mnistlab data download --dataset fashion-mnist
