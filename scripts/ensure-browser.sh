#!/bin/sh
# The browser tests drive Debian's Chromium (browser downloads from the
# internet don't work everywhere); install it when we are root on Debian.
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium for the browser tests…"
    apt-get install -y -qq chromium >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; } ||
        echo "could not install chromium: the browser tests will be skipped"
else
    echo "no /usr/bin/chromium: the browser tests will be skipped"
fi
