# Shared by the scripts: install Debian packages that are missing.
# Usage: ensure_packages PACKAGE... (as root, or via sudo when available)

apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      echo "need root to install: $*" >&2; return 1
    fi
  fi
  echo "installing: $*"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_mysql_server() {
  command -v mariadbd >/dev/null || command -v mysqld >/dev/null ||
    [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ]
}

ensure_mysql_server() {
  if ! have_mysql_server; then
    # Debian does not start the service from a container's policy-rc.d; the
    # project never uses it anyway: it starts private servers of its own.
    apt_install mariadb-server
  fi
}

ensure_rust() {
  if ! command -v cargo >/dev/null; then
    echo "cargo is missing: install Rust (https://rustup.rs), then run this again" >&2
    exit 1
  fi
  for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
      rustup component add "$component"
    fi
  done
}

ensure_browser() {
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

# The fault tests cut real connections between network namespaces.
ensure_iptables() {
  command -v iptables >/dev/null || [ -x /usr/sbin/iptables ] || apt_install iptables
}
