#!/usr/bin/env python3
"""`make demo`: the demo organisation served as it would run for real. Generates the demo
ledger (`aifinops demo`, which prints a showback), then starts `aifinops serve` (REST API,
dashboard, /metrics) and the metering gateway in front of a local stand-in for the LLM
providers (tests/integration/mock_upstream.py: recorded OpenAI and Anthropic payloads, no
network), prints the URLs and tokens, and stops everything cleanly on Ctrl-C.

Environment:
  AIFINOPS=build/release/aifinops   the binary (its web/ folder holds the dashboard)
  DEMO_DIR=build/demo               where the ledger, policy, configs and tokens go
  DEMO_SERVE=1                      0: only generate the ledger and print the showback
  DEMO_PORT=8080                    serve's port on 127.0.0.1
  DEMO_GATEWAY_PORT=8081            the gateway's port on 127.0.0.1
  DEMO_SECONDS=0                    stop after this many seconds (0: run until Ctrl-C);
                                    for scripted checks of `make demo`
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

AIFINOPS = os.path.abspath(os.environ.get("AIFINOPS", str(REPO / "build" / "release" / "aifinops")))
DEMO_DIR = Path(os.environ.get("DEMO_DIR", str(REPO / "build" / "demo"))).resolve()
SERVE = os.environ.get("DEMO_SERVE", "1") != "0"
PORT = int(os.environ.get("DEMO_PORT", "8080"))
GATEWAY_PORT = int(os.environ.get("DEMO_GATEWAY_PORT", "8081"))
SECONDS = float(os.environ.get("DEMO_SECONDS", "0"))


def run(*args):
    return subprocess.run([AIFINOPS, *args], check=True, capture_output=True, text=True).stdout


def api_token(token_id, *args):
    lines = run("serve", "tokens", "new", "--id", token_id, *args).splitlines()
    return lines[0].removeprefix("token: "), lines[1]


def wait_for(url, token=None, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        request = urllib.request.Request(url)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5):
                return True
        except urllib.error.HTTPError:
            return True  # it answers
        except OSError:
            time.sleep(0.2)
    return False


def main():
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    db = DEMO_DIR / "demo.db"
    marker = DEMO_DIR / "gateway.yaml"
    if marker.exists() and marker.read_text().startswith("# Written by `make demo`"):
        # The last run's gateway metered into this ledger, so `aifinops demo` would refuse
        # to recreate it: it is ours, remove it first.
        for leftover in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            leftover.unlink(missing_ok=True)
        shutil.rmtree(f"{db}.spool", ignore_errors=True)
    subprocess.run([AIFINOPS, "demo", "--db", str(db)], check=True)
    if not SERVE:
        return 0

    # API tokens: admin, viewer, and a viewer who sees one team only.
    admin, admin_line = api_token("demo-admin", "--scope", "admin")
    viewer, viewer_line = api_token("demo-viewer", "--scope", "viewer")
    lead, lead_line = api_token("search-lead", "--scope", "viewer", "--restrict", "team=search")
    policy = DEMO_DIR / "serve_policy.yaml"
    policy.write_text((DEMO_DIR / "demo_policy.yaml").read_text() + "\napi_tokens:\n" +
                      "\n".join([admin_line, viewer_line, lead_line]) + "\n")
    tokens = DEMO_DIR / "tokens.txt"
    tokens.write_text(f"admin {admin}\nviewer {viewer}\nsearch-lead {lead}\n")
    tokens.chmod(0o600)

    # The gateway in front of the local stand-in provider, metering into the demo ledger.
    import mock_upstream  # noqa: E402  (tests/integration, on sys.path above)
    upstream = mock_upstream.start()
    key_text = run("gateway", "keys", "new", "--id", "demo-app")
    key = re.search(r"(sk-aif-\S+)", key_text).group(1)
    key_hash = re.search(r'key_sha256: "([0-9a-f]{64})"', key_text).group(1)
    gateway_yaml = DEMO_DIR / "gateway.yaml"
    gateway_yaml.write_text(f"""# Written by `make demo`: the gateway in front of a local stand-in provider.
listen: 127.0.0.1:{GATEWAY_PORT}
ledger: {db}
upstreams:
  - {{name: stand-in, kind: openai, base_url: "http://127.0.0.1:{upstream.server_port}/v1"}}
routes:
  - {{model: "*", upstream: stand-in}}
keys:
  - id: demo-app
    key_sha256: "{key_hash}"
    tags: {{team: support-bot, project: support-chatbot, environment: production}}
    models: ["*"]
    limits: {{rpm: 600}}
""")

    serve = subprocess.Popen([AIFINOPS, "serve", "--db", str(db), "--config", str(policy),
                              "--listen", f"127.0.0.1:{PORT}"])
    gateway = subprocess.Popen([AIFINOPS, "gateway", "--config", str(gateway_yaml)])
    children = [serve, gateway]
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    ok = wait_for(f"http://127.0.0.1:{PORT}/api/v1/report", viewer) and \
        wait_for(f"http://127.0.0.1:{GATEWAY_PORT}/metrics")
    if not ok or any(c.poll() is not None for c in children):
        print("make demo: serve or the gateway did not start (ports in use? set DEMO_PORT and "
              "DEMO_GATEWAY_PORT)", file=sys.stderr)
        stopping = True
    else:
        # One metered request, so the gateway's counters have something to show.
        body = json.dumps({"model": "gpt-4o-mini",
                           "messages": [{"role": "user", "content": "hello"}]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{GATEWAY_PORT}/v1/chat/completions",
                                         data=body, headers={"Authorization": f"Bearer {key}",
                                                             "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=10).read()
        except OSError as e:
            print(f"make demo: the sample gateway request failed: {e}", file=sys.stderr)
        print(f"""
Northwind Labs demo is running (Ctrl-C stops it):

  Dashboard (viewer):   http://127.0.0.1:{PORT}/#token={viewer}
  Dashboard (one team): http://127.0.0.1:{PORT}/#token={lead}
  REST API:             curl -H 'Authorization: Bearer {viewer}' 'http://127.0.0.1:{PORT}/api/v1/report?by=team'
  Prometheus metrics:   curl -H 'Authorization: Bearer {admin}' http://127.0.0.1:{PORT}/metrics
  Gateway (OpenAI API): curl -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
                          -d '{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"hi"}}]}}' \\
                          http://127.0.0.1:{GATEWAY_PORT}/v1/chat/completions
  Gateway metrics:      http://127.0.0.1:{GATEWAY_PORT}/metrics

The gateway forwards to a local stand-in for the provider (recorded OpenAI responses on
127.0.0.1:{upstream.server_port}), not to a real one; each request is metered into the demo ledger.
Tokens: {tokens} (admin, viewer, search-lead). Ledger: {db}
""", flush=True)
    started = time.time()
    while not stopping and all(c.poll() is None for c in children):
        if SECONDS and time.time() - started >= SECONDS:
            break
        time.sleep(0.2)
    for c in children:
        if c.poll() is None:
            c.send_signal(signal.SIGTERM)
    codes = []
    for c in children:
        try:
            codes.append(c.wait(timeout=30))
        except subprocess.TimeoutExpired:
            c.kill()
            codes.append(c.wait())
    upstream.shutdown()
    print("make demo: stopped", flush=True)
    return 0 if all(code == 0 for code in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
