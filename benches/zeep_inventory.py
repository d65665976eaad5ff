#!/usr/bin/env python3
"""One camera's ONVIF inventory with onvif-zeep (the peer of `tgw probe
camera --no-rtsp`, issue 18.5): the same calls tgw makes, then prints the
device information, MAC, profiles and URIs as one JSON line.

    zeep_inventory.py XADDR USER PASSWORD WSDL_DIR

Needs onvif-zeep (scripts/install-peers puts it and its WSDL files into
target/peers/python; put that directory on PYTHONPATH).
"""
import json, sys
from urllib.parse import urlsplit

from onvif import ONVIFCamera

xaddr, user, password, wsdl = sys.argv[1:5]
u = urlsplit(xaddr)
# ONVIFCamera's constructor calls GetCapabilities (all categories) for the
# service addresses; adjust_time adds GetSystemDateAndTime (clock offset,
# as tgw measures it before the WS-UsernameToken digest).
cam = ONVIFCamera(u.hostname, u.port or 80, user, password, wsdl, adjust_time=True)
dev = cam.devicemgmt
info = dev.GetDeviceInformation()
ifaces = dev.GetNetworkInterfaces()
scopes = dev.GetScopes()
media = cam.create_media_service()
profiles = []
for p in media.GetProfiles():
    stream = media.GetStreamUri({
        "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
        "ProfileToken": p.token,
    })
    snap = media.GetSnapshotUri({"ProfileToken": p.token})
    profiles.append({"token": p.token, "stream_uri": stream.Uri, "snapshot_uri": snap.Uri})
mac = next((i.Info.HwAddress for i in ifaces if i.Enabled and i.Info is not None), None)
print(json.dumps({
    "manufacturer": info.Manufacturer,
    "model": info.Model,
    "mac": mac,
    "scopes": len(scopes),
    "profiles": profiles,
}))
