# Sourced by the scripts that install Debian packages (scripts/install-deps.sh and the suites'
# run-tests.sh): one idempotent way to do it, apt-get only when something is missing.
#
#   apt_ensure SPEC...   SPEC is TOOL:PACKAGE (installed when the command TOOL is not on PATH)
#                        or PACKAGE (installed when dpkg does not list it as installed)

apt_ensure() {
  local need=() spec sudo=""
  for spec in "$@"; do
    if [[ $spec == *:* ]]; then
      command -v "${spec%%:*}" >/dev/null 2>&1 || need+=("${spec##*:}")
    else
      dpkg-query -W -f='${Status}' "$spec" 2>/dev/null | grep -q "install ok installed" || need+=("$spec")
    fi
  done
  [ "${#need[@]}" -eq 0 ] && return 0
  echo "installing: ${need[*]}"
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
}
