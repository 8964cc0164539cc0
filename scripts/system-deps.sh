#!/usr/bin/env bash
# System packages the tests (or benchmarks) need, installed from Debian's archive when missing.
#   test:  chromium (Playwright drives /usr/bin/chromium; no browser download) and a CJK font
#          (fonts-noto-cjk: without it screenshots show boxes instead of Chinese).
#          postgresql (the hub's database: scripts/postgres.sh starts a throwaway cluster).
#   postgres: postgresql only (scripts/postgres.sh asks for it when it finds no server).
#   bench: wrk, the load generator; postgresql.
set -euo pipefail
want=()
case "${1:-test}" in
  test)
    [ -x /usr/bin/chromium ] || want+=(chromium)
    fc-list 2>/dev/null | grep -qi 'Noto Sans CJK' || want+=(fonts-noto-cjk)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want+=(postgresql)
    ;;
  postgres)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want+=(postgresql)
    ;;
  bench)
    command -v wrk >/dev/null || want+=(wrk)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want+=(postgresql)
    ;;
  *) echo "usage: $0 test|postgres|bench" >&2; exit 2 ;;
esac
[ ${#want[@]} -eq 0 ] && exit 0
echo "Installing system packages: ${want[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q "${want[@]}"
