# Sourced by the test scripts: installs Debian packages they need.
#
#   install_missing WHO HINT PACKAGE...
#
# installs PACKAGE... with apt-get when running as root on a machine that
# has it; otherwise prints what is missing (WHO: the script's name, HINT:
# another way out, may be empty) and exits 1.
install_missing() {
    local who="$1" hint="$2"
    shift 2
    [ "$#" -gt 0 ] || return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "$who: installing $* with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "$who: missing: $*. Install them (Debian: sudo apt-get install $*)${hint:+, $hint}." >&2
        exit 1
    fi
}
