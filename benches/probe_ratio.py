#!/usr/bin/env python3
"""`tgw probe rtsp` vs `ffprobe -show_streams` (issue 18.5): N runs of each
against one simulated camera (`tgw sim`, loopback), child CPU time
(user+sys, from getrusage) and wall time per run, and the ratios.

    benches/probe_ratio.py [TGW_BIN] [RUNS]

TGW_BIN defaults to target/release/tgw, else target/debug/tgw.
"""
import json, os, resource, subprocess, sys, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
tgw = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "target/release/tgw")
if not os.access(tgw, os.X_OK):
    tgw = os.path.join(root, "target/debug/tgw")
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20

sim = subprocess.Popen([tgw, "sim", "--cameras", "1", "--bind", "127.89.0.1",
                        "--wsd-port", "13798", "--no-multicast",
                        "--password", "pw-probe", "--username", "admin"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    cam = json.loads(sim.stdout.readline())["devices"][0]
    url = cam["rtsp"][0]
    auth_url = url.replace("rtsp://", "rtsp://admin:pw-probe@")

    def measure(cmd):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        for _ in range(runs):
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            assert r.returncode == 0, cmd
        wall = (time.monotonic() - t0) / runs
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) / runs
        return wall, cpu

    t = measure([tgw, "probe", "rtsp", url, "--user", "admin", "--password", "pw-probe"])
    f = measure(["ffprobe", "-v", "error", "-show_streams", auth_url])
    print(f"binary: {tgw}; {runs} runs each")
    print(f"tgw probe rtsp:        wall {t[0]*1000:.1f} ms, cpu {t[1]*1000:.2f} ms per run")
    print(f"ffprobe -show_streams: wall {f[0]*1000:.1f} ms, cpu {f[1]*1000:.2f} ms per run")
    print(f"ratio (ffprobe / tgw): wall {f[0]/t[0]:.1f}x, cpu {f[1]/max(t[1],1e-6):.1f}x")
finally:
    sim.terminate()
    sim.wait()
