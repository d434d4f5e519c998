#!/usr/bin/env bash
# Install the Debian packages the test suite's real parts need, when they are missing:
#   scripts/debian-packages.sh PACKAGE...
# Does nothing for packages already installed; needs root (CI runs as root) and apt-get.
# One lock (flock) so that two passes or two checkouts never run apt-get at the same time.
set -euo pipefail
missing=()
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "Missing Debian packages: ${missing[*]} (install them: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "Installing Debian packages: ${missing[*]} ..." >&2
exec 9>/tmp/tarifa-apt.lock
flock 9
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
