#!/usr/bin/env bash
# System packages the tests (or benchmarks) need, installed from Debian's archive when missing.
#   test:  chromium (Playwright drives /usr/bin/chromium; no browser download) and a CJK font
#          (fonts-noto-cjk: without it screenshots show boxes instead of Chinese).
#   bench: wrk, the load generator.
set -euo pipefail
want=()
case "${1:-test}" in
  test)
    [ -x /usr/bin/chromium ] || want+=(chromium)
    fc-list 2>/dev/null | grep -qi 'Noto Sans CJK' || want+=(fonts-noto-cjk)
    ;;
  bench)
    command -v wrk >/dev/null || want+=(wrk)
    ;;
  *) echo "usage: $0 test|bench" >&2; exit 2 ;;
esac
[ ${#want[@]} -eq 0 ] && exit 0
echo "Installing system packages: ${want[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q "${want[@]}"
