#!/usr/bin/env python3
"""`tgw probe` against its peers (issue 18.5), side by side in one run:

- `tgw probe rtsp URL` vs `ffprobe -v error -show_streams URL` (RTSP
  metadata of one stream);
- `tgw probe camera XADDR --no-rtsp --json` vs onvif-zeep (`zeep_inventory.py`
  beside this script: the same ONVIF calls) for one camera's inventory.

One simulated camera (`tgw sim`, loopback). Each of RUNS rounds runs the
four commands one after another, so load changes hit all of them alike; one
untimed round first checks that both sides saw the same stream and the same
camera. Per command: wall time (spawn to exit) and CPU time (user + system
of the child and its threads, from wait4's rusage), averaged over the runs;
the ratios are peer / tgw of those means. Load average before and after.

    benches/probe_ratio.py [TGW_BIN] [RUNS]

TGW_BIN defaults to target/release/tgw, else target/debug/tgw. Needs
ffprobe and onvif-zeep with its WSDL files in target/peers/python
(`scripts/install-peers`); a missing peer skips its comparison.
"""
import json, os, resource, shutil, subprocess, sys, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
tgw = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "target/release/tgw")
if not os.access(tgw, os.X_OK):
    tgw = os.path.join(root, "target/debug/tgw")
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
pydir = os.path.join(root, "target/peers/python")
wsdl = os.path.join(pydir, "onvif-wsdl")
zeep_script = os.path.join(root, "benches/zeep_inventory.py")
user, password = "admin", "pw-probe"


def run(cmd, env=None):
    """Runs cmd; returns (wall s, cpu s, stdout)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = p.communicate()
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}): {err.decode(errors='replace')[-2000:]}")
    return wall, out


def timed(cmd, env=None):
    """run(), plus the child's CPU time (the change of RUSAGE_CHILDREN)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, out = run(cmd, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out


sim = subprocess.Popen([tgw, "sim", "--cameras", "1", "--bind", "127.89.0.1",
                        "--wsd-port", "13798", "--no-multicast",
                        "--password", password, "--username", user],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    cam = json.loads(sim.stdout.readline())["devices"][0]
    url = cam["rtsp"][0]
    xaddr = cam["xaddr"]
    auth_url = url.replace("rtsp://", f"rtsp://{user}:{password}@")
    cmds = {
        "tgw probe rtsp": [tgw, "probe", "rtsp", url, "--user", user, "--password", password],
        "tgw probe camera": [tgw, "probe", "camera", xaddr, "--user", user,
                             "--password", password, "--no-rtsp", "--json"],
    }
    env = None
    if shutil.which("ffprobe"):
        cmds["ffprobe"] = ["ffprobe", "-v", "error", "-show_streams", auth_url]
    else:
        print("ffprobe not found: RTSP comparison skipped", file=sys.stderr)
    if os.path.isdir(os.path.join(pydir, "onvif")) and os.path.isdir(wsdl):
        env = dict(os.environ, PYTHONPATH=pydir)
        cmds["onvif-zeep"] = [sys.executable, zeep_script, xaddr, user, password, wsdl]
    else:
        print("onvif-zeep not in target/peers/python: ONVIF comparison skipped", file=sys.stderr)

    # Untimed round: both sides see the same stream and the same camera.
    outs = {k: timed(c, env)[2].decode() for k, c in cmds.items()}
    assert "1280x720" in outs["tgw probe rtsp"], outs["tgw probe rtsp"]
    if "ffprobe" in outs:
        assert "width=1280" in outs["ffprobe"] and "height=720" in outs["ffprobe"], outs["ffprobe"]
    inv = json.loads(outs["tgw probe camera"])
    if "onvif-zeep" in outs:
        z = json.loads(outs["onvif-zeep"])
        assert z["manufacturer"] == inv["device"]["manufacturer"], (z, inv["device"])
        assert len(z["profiles"]) == len(inv["profiles"]), (z, inv["profiles"])

    load_before = os.getloadavg()
    totals = {k: [0.0, 0.0] for k in cmds}
    for _ in range(runs):
        for k, c in cmds.items():
            wall, cpu, _ = timed(c, env)
            totals[k][0] += wall
            totals[k][1] += cpu
    load_after = os.getloadavg()

    mean = {k: (w / runs, c / runs) for k, (w, c) in totals.items()}
    result = {"binary": tgw, "runs": runs,
              "loadavg_before": load_before, "loadavg_after": load_after}
    print(f"binary: {tgw}; {runs} rounds; load average before {load_before[0]:.2f} "
          f"{load_before[1]:.2f} {load_before[2]:.2f}, after {load_after[0]:.2f} "
          f"{load_after[1]:.2f} {load_after[2]:.2f}")
    for k, (w, c) in mean.items():
        result[k] = {"wall_ms": round(w * 1000, 2), "cpu_ms": round(c * 1000, 3)}
        print(f"{k:18} wall {w*1000:8.1f} ms, cpu {c*1000:8.2f} ms per run")
    for peer, ours in (("ffprobe", "tgw probe rtsp"), ("onvif-zeep", "tgw probe camera")):
        if peer in mean:
            wr = mean[peer][0] / mean[ours][0]
            cr = mean[peer][1] / max(mean[ours][1], 1e-6)
            result[f"{peer}/{ours}"] = {"wall_ratio": round(wr, 1), "cpu_ratio": round(cr, 1)}
            print(f"ratio {peer} / {ours}: wall {wr:.1f}x, cpu {cr:.1f}x")
    print(json.dumps(result))
finally:
    sim.terminate()
    sim.wait()
