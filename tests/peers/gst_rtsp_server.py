#!/usr/bin/python3
"""Real RTSP peer: GStreamer's RTSP server (gst-rtsp-server) on loopback.

Usage: /usr/bin/python3 gst_rtsp_server.py PORT FILE.mp4

Serves on 127.0.0.1:PORT
  /live  videotestsrc (live) -> x264enc, 640x480 at 15 fps, Main profile,
         a keyframe at least every 30 frames
  /file  FILE.mp4 (H.264 in MP4, e.g. made by ffmpeg) through qtdemux and
         h264parse, not re-encoded; played once, not looped
and prints "ready" on stdout once the server is attached. Runs until killed.
Neither factory is shared: each client session gets its own pipeline. (A
shared media that only ever saw DESCRIBE stays prepared after the client
leaves, and gst-rtsp-server 1.22 then answers later DESCRIBEs with 503 or
not at all.)

Needs Debian's python3-gi, gir1.2-gst-rtsp-server-1.0 and
gstreamer1.0-plugins-{base,good,ugly,bad}; run it with /usr/bin/python3 (the
GObject bindings are installed for Debian's interpreter only).
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

LIVE = (
    "( videotestsrc is-live=true "
    "! video/x-raw,width=640,height=480,framerate=15/1 "
    "! x264enc tune=zerolatency key-int-max=30 "
    "! video/x-h264,profile=main "
    "! rtph264pay name=pay0 pt=96 )"
)


def file_launch(path):
    # The location is quoted for gst-launch syntax; the test passes a temp path.
    quoted = '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return (
        "( filesrc location=" + quoted + " ! qtdemux ! h264parse "
        "! rtph264pay name=pay0 pt=96 )"
    )


def factory(launch):
    f = GstRtspServer.RTSPMediaFactory()
    f.set_launch(launch)
    f.set_shared(False)
    return f


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    port, path = argv[1], argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    mounts = server.get_mount_points()
    mounts.add_factory("/live", factory(LIVE))
    mounts.add_factory("/file", factory(file_launch(path)))
    if server.attach(None) == 0:
        sys.stderr.write("gst_rtsp_server: cannot listen on 127.0.0.1:%s\n" % port)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
