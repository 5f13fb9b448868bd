#!/usr/bin/env bash
# The browser tests drive Debian's chromium through Playwright. Install it when missing and
# we are root (CI, a fresh dev machine); otherwise say so and let those tests skip.
set -u
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium for the browser tests (apt-get)..."
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/tmp/ensure-chromium.log 2>&1 \
    || { echo "could not install chromium (see /tmp/ensure-chromium.log); browser tests will skip"; exit 0; }
else
  echo "chromium not found and not root: the browser tests will skip (apt-get install chromium to run them)"
fi
exit 0
