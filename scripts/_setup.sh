# Sourced by scripts/test and scripts/demo: a venv with the project installed.
# Reinstalls only when the packaging inputs changed since the last install.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CELERY_STATUS_VENV:-$ROOT/.venv}"

setup_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "creating $VENV" >&2
        python3 -m venv "$VENV"
    fi
    # shellcheck disable=SC1091
    . "$VENV/bin/activate"
    local stamp="$VENV/.celery-status-installed"
    local newer
    newer="$(find "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/protos" -newer "$stamp" 2>/dev/null | head -1 || true)"
    if [ ! -f "$stamp" ] || [ -n "$newer" ] || ! python -c "import celerystatus.v1.celery_status_pb2" 2>/dev/null; then
        echo "installing celery-status[dev] into $VENV" >&2
        python -m pip install -q --upgrade pip >&2
        (cd "$ROOT" && python -m pip install -q -e '.[dev]') >&2
        touch "$stamp"
    fi
}
