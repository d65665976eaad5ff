"""A real WS-Discovery peer: python-WSDiscovery publishing an ONVIF
NetworkVideoTransmitter, for tests/tests/peers.rs.

usage: wsd_publish.py ADDRESS NAME

WSDiscovery 2.1.2's IPv6 networking thread dies after the first probe, so the
peer runs IPv4 only (the IPv6 thread class is replaced by one that reports
IPv6 as unsupported, which the library handles). It ignores loopback, so the
test runs it on a veth pair inside network namespaces it creates.
"""
import sys
import time

import wsdiscovery.threaded as threaded


class _NoIPv6:
    def __init__(self, *args, **kwargs):
        raise OSError("IPv6 disabled for this test peer")


threaded.NetworkingThreadIPv6 = _NoIPv6

from wsdiscovery import QName, Scope  # noqa: E402
from wsdiscovery.publishing import ThreadedWSPublishing  # noqa: E402

address, name = sys.argv[1], sys.argv[2]
nvt = QName("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter", "dn")
scopes = [
    Scope("onvif://www.onvif.org/name/" + name),
    Scope("onvif://www.onvif.org/hardware/WSDiscoveryPeer"),
    Scope("onvif://www.onvif.org/location/village/qingshan-dongcun"),
]
wsp = ThreadedWSPublishing()
wsp.start()
wsp.publishService(types=[nvt], scopes=scopes, xAddrs=["http://%s:8080/onvif/device_service" % address])
print("ready", flush=True)
try:
    while True:
        time.sleep(1)
finally:
    wsp.stop()
