"""Starting an `aifinops gateway` process for the end-to-end tests."""
import subprocess


def start_gateway(aifinops, config, env):
    """Starts `aifinops gateway --config CONFIG` and waits for its "listening on" line.
    Returns the process (stdout and stderr piped, as text) and the port it listens on; raises
    with the gateway's own error when it does not start."""
    proc = subprocess.Popen([aifinops, "gateway", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.wait(timeout=30)
        raise AssertionError("gateway did not start: " + line + proc.stderr.read())
    return proc, int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
