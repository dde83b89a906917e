#!/bin/sh
# Make sure Fashion-MNIST is present: found already, else Debian's package
# (when we are root on Debian/Ubuntu), else a verified download.
set -e
PY="$1"
found() { "$PY" -c "from mnistlab.data.datasets import locate; locate('fashion-mnist', download=False)" 2>/dev/null; }
found && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's dataset-fashion-mnist package…"
    apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null; } || true
fi
found && exit 0
"$PY" -m mnistlab data download --dataset fashion-mnist
