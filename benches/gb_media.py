#!/usr/bin/env python3
"""GB/T 28181 live relay benchmark (issue 17): INVITE -> first PS packet,
CPU and RSS per relayed stream, and how many concurrent relays hold up.

Runs `tgw sim` (N cameras, real RTSP, H.264 sub stream 640x360 at 15 fps) and
the `gb_relay` example (tgw::gb28181::media::Relays without SIP) as child
processes; this script plays the platform: it sends offers, ACKs at once,
and receives the RTP over UDP on loopback. CPU and RSS are the gb_relay
process's only (from /proc), not the simulator's or this script's.

    cargo build -p tgw --bins --examples      # or --release, see BENCHMARKS.md
    python3 benches/gb_media.py [--bin-dir target/debug] [--relays 32] [--runs 40] [--seconds 20]

Prints one JSON line of figures, then one line for humans.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import threading
import time

CAMERA_PASSWORD = "bench-Passw0rd"


def offer(port, ssrc):
    return (
        "v=0\r\no=34020000002000000001 0 0 IN IP4 127.0.0.1\r\ns=Play\r\n"
        "c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=video {port} RTP/AVP 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n"
        f"y={ssrc:010d}\r\n"
    )


class Receiver(threading.Thread):
    """Counts RTP on one UDP port: first packet time, frames, sequence gaps."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.first = None
        self.first_event = threading.Event()
        self.frames = 0
        self.packets = 0
        self.bytes = 0
        self.lost = 0
        self.last_seq = None
        self.stop = False
        self.start()

    def run(self):
        while not self.stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if self.first is None:
                self.first = time.monotonic()
                self.first_event.set()
            seq = int.from_bytes(data[2:4], "big")
            if self.last_seq is not None:
                self.lost += (seq - self.last_seq - 1) & 0xFFFF
            self.last_seq = seq
            self.packets += 1
            self.bytes += len(data)
            if data[1] & 0x80:
                self.frames += 1

    def close(self):
        self.stop = True
        self.sock.close()


class Relay:
    def __init__(self, bin_dir, max_relays):
        self.p = subprocess.Popen(
            [os.path.join(bin_dir, "examples", "gb_relay"), str(max_relays), "31000", "31999", "10"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.replies = {}
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            v = json.loads(line)
            with self.cv:
                self.replies[v.get("call", "")] = v
                self.cv.notify_all()

    def send(self, v):
        self.p.stdin.write(json.dumps(v) + "\n")
        self.p.stdin.flush()

    def wait(self, call, limit=30):
        deadline = time.monotonic() + limit
        with self.cv:
            while call not in self.replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no reply for {call}")
                self.cv.wait(left)
            return self.replies.pop(call)

    def invite(self, call, cam, port, ssrc):
        self.send({"op": "invite", "call": call, "url": cam["rtsp"][1], "user": cam["username"],
                   "password": CAMERA_PASSWORD, "offer": offer(port, ssrc)})

    def cpu_seconds(self):
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def close(self):
        self.p.kill()
        self.p.wait()


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default="target/debug")
    ap.add_argument("--relays", type=int, default=32)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--seconds", type=int, default=20)
    a = ap.parse_args()

    wsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    wsd.bind(("127.0.0.1", 0))
    wsd_port = wsd.getsockname()[1]
    wsd.close()
    sim = subprocess.Popen(
        [os.path.join(a.bin_dir, "tgw"), "sim", "--cameras", str(a.relays), "--bind", "127.71.0.1",
         "--wsd-port", str(wsd_port), "--no-multicast", "--password", CAMERA_PASSWORD],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    cams = [d for d in json.loads(sim.stdout.readline())["devices"] if d["kind"] == "camera"]
    relay = Relay(a.bin_dir, a.relays)
    try:
        idle_rss = relay.rss_mib()
        # 1. INVITE -> first PS packet, one call at a time (a fresh RTSP session each).
        lat = []
        for i in range(a.runs):
            r = Receiver()
            call = f"l{i}"
            t0 = time.monotonic()
            relay.invite(call, cams[i % len(cams)], r.port, i + 1)
            rep = relay.wait(call)
            if not rep.get("ok"):
                raise RuntimeError(f"invite {call}: {rep}")
            relay.send({"op": "ack", "call": call})
            if not r.first_event.wait(10):
                raise RuntimeError(f"{call}: no RTP within 10 s")
            lat.append((r.first - t0) * 1000)
            relay.send({"op": "bye", "call": call})
            relay.wait(call)
            r.close()
        # 2. N concurrent sub-stream relays, each camera once.
        rx = [Receiver() for _ in cams]
        for i, (cam, r) in enumerate(zip(cams, rx)):
            relay.invite(f"c{i}", cam, r.port, 1000 + i)
        for i in range(len(cams)):
            rep = relay.wait(f"c{i}")
            if not rep.get("ok"):
                raise RuntimeError(f"invite c{i}: {rep}")
            relay.send({"op": "ack", "call": f"c{i}"})
            relay.wait(f"c{i}")
        time.sleep(5)  # warm-up: GOP bursts and RTSP start-up out of the window
        f0 = [r.frames for r in rx]
        l0 = [r.lost for r in rx]
        b0 = sum(r.bytes for r in rx)
        c0, w0 = relay.cpu_seconds(), time.monotonic()
        time.sleep(a.seconds)
        c1, w1 = relay.cpu_seconds(), time.monotonic()
        rss = relay.rss_mib()
        span = w1 - w0
        fps = [(r.frames - f) / span for r, f in zip(rx, f0)]
        kbps = (sum(r.bytes for r in rx) - b0) * 8 / 1000 / span / len(rx)
        lost = sum(r.lost - l for r, l in zip(rx, l0))
        cpu_pct = (c1 - c0) / span * 100
        out = {
            "bench": "gb28181-media",
            "build": os.path.basename(os.path.normpath(a.bin_dir)),
            "invite_to_first_packet_ms": {"p50": round(pct(lat, 50), 1), "p99": round(pct(lat, 99), 1),
                                          "max": round(max(lat), 1), "runs": len(lat)},
            "concurrent_relays": len(rx),
            "window_s": round(span, 1),
            "relay_cpu_pct_of_one_core": round(cpu_pct, 1),
            "cpu_pct_per_stream": round(cpu_pct / len(rx), 2),
            "rss_mib_idle": round(idle_rss, 1),
            "rss_mib": round(rss, 1),
            "rss_mib_per_stream": round((rss - idle_rss) / len(rx), 2),
            "fps_min": round(min(fps), 1),
            "fps_mean": round(statistics.mean(fps), 1),
            "rtp_lost": lost,
            "rtp_kbps_per_stream": round(kbps, 1),
        }
        print(json.dumps(out))
        print(f"{len(rx)} relays: first packet p50 {out['invite_to_first_packet_ms']['p50']} ms "
              f"p99 {out['invite_to_first_packet_ms']['p99']} ms; CPU {out['relay_cpu_pct_of_one_core']} % "
              f"of one core ({out['cpu_pct_per_stream']} %/stream), RSS {out['rss_mib']} MiB "
              f"({out['rss_mib_per_stream']} MiB/stream), fps min {out['fps_min']}, RTP lost {lost}")
        for r in rx:
            r.close()
    finally:
        relay.close()
        sim.kill()
        sim.wait()


if __name__ == "__main__":
    main()
