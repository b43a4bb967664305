# Sourced by benches/http.sh and benches/http-instructions.sh: building
# benches/http_server.rs and starting and stopping one server at a time.
# Expects URL (the server's base address) to be set.

# Builds the server and sets `bin` to its path; extra arguments go to cargo
# (e.g. --features serde for the `tiered` mode).
build_http_server() {
  bin=$(cargo bench --bench http_server --no-run "$@" --message-format=json 2>/dev/null \
    | python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="http_server" and m.get("executable"): print(m["executable"])' | tail -n1)
  [ -x "$bin" ] || { echo "build failed; run: cargo bench --bench http_server --no-run" >&2; exit 1; }
  if curl -s -o /dev/null "$URL/health"; then
    echo "something already answers on $URL; set PORT" >&2; exit 1
  fi
}

# The server started last (its PID in `server_pid`), if any, is stopped.
server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}

# Waits until the server started last answers /health (`$1`: how many tenths
# of a second at most); a server that exits first fails with its log (`$2`).
await_server() {
  for _ in $(seq "$1"); do
    curl -s -o /dev/null "$URL/health" && return 0
    kill -0 "$server_pid" 2>/dev/null || { cat "$2" >&2; exit 1; }
    sleep 0.1
  done
  curl -s -o /dev/null "$URL/health" || { echo "server did not come up on $URL" >&2; exit 1; }
}
