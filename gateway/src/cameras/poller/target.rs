//! What the poller polls: a camera's ONVIF address, login, streams and
//! snapshot URI, read from the store (and its stored inventory) when the
//! camera's task starts and again on a change (inventory, login, village),
//! and kept in memory between: a check never re-reads or re-parses it.

use device_drivers::cred_scope::CredentialScope;
use device_drivers::onvif_client::{CameraInventory, Credentials};
use device_drivers::wsd;

use crate::config::CameraAccess;

use crate::store::{Device, DeviceState, Store};
use tgw_core::health::Expected;

/// What the poller needs to know about a camera, re-read on a change so
/// credential and inventory changes apply without a restart.
#[derive(Debug, Clone)]
pub struct Target {
    /// The device row, without its inventory JSON (parsed into the fields
    /// below, then dropped: it is the bulk of a row).
    pub device: Device,
    /// Whether an inventory is stored (streaming checks need one).
    pub has_inventory: bool,
    /// Why the last inventory failed (error kind), if it did.
    pub inventory_error: Option<String>,
    /// ONVIF device service.
    pub xaddr: String,
    /// Login, if any.
    pub creds: Option<Credentials>,
    /// Where the login may go for snapshots and streams: see [`scope`].
    pub scope: CredentialScope,
    /// Stream to DESCRIBE (main profile).
    pub describe_uri: Option<String>,
    /// Stream to sample (sub profile by default).
    pub sample_uri: Option<String>,
    /// What the sampled profile promises.
    pub expected: Expected,
    /// Snapshot URI.
    pub snapshot_uri: Option<String>,
}

/// Where camera `id`'s login may be sent for snapshots and streams: the host
/// of its ONVIF address `xaddr`, the address it was adopted at, and the
/// `extra_hosts` of its `[[health.camera_access]]` entry; Basic over plain
/// HTTP only with that entry's `plain_basic`.
pub fn scope(
    access: &[CameraAccess],
    id: &str,
    xaddr: &str,
    address: Option<&str>,
) -> CredentialScope {
    let mut s = CredentialScope::new().allow_host(xaddr);
    if let Some(a) = address {
        s = s.allow_host(a);
    }
    for a in access.iter().filter(|a| a.device == id) {
        for h in &a.extra_hosts {
            s = s.allow_host(h);
        }
        if a.plain_basic {
            s = s.allow_plain_basic(true);
        }
    }
    s
}

/// Builds a target from the store, or `None` when the camera is not
/// (or no longer) polled. `access` is `[[health.camera_access]]`.
pub fn target(
    store: &Store,
    id: &str,
    sub_stream: bool,
    access: &[CameraAccess],
) -> Option<Target> {
    let mut device = store.device(id).ok()??;
    if device.state != DeviceState::Adopted {
        return None;
    }
    let from = device.address.as_deref().and_then(|a| a.parse().ok());
    let xaddr = wsd::preferred_xaddr(&device.xaddrs, from)?;
    let creds = store
        .login_for(id)
        .ok()
        .flatten()
        .map(|l| Credentials::new(l.username, l.password.expose()));
    let stored = device.inventory.take();
    let has_inventory = stored.is_some();
    let inv: Option<CameraInventory> = stored.and_then(|v| serde_json::from_value(v).ok());
    let (mut describe_uri, mut sample_uri, mut snapshot_uri, mut expected) =
        (None, None, None, Expected::default());
    if let Some(inv) = &inv {
        let with_stream: Vec<_> = inv
            .profiles
            .iter()
            .filter(|p| p.stream_uri.is_some())
            .collect();
        let area = |p: &&device_drivers::onvif_client::ProfileInventory| {
            p.profile
                .video
                .as_ref()
                .map_or(u64::MAX, |v| u64::from(v.width) * u64::from(v.height))
        };
        let main = with_stream
            .iter()
            .max_by_key(|p| area(p).min(u64::MAX - 1))
            .copied();
        let sub = with_stream.iter().min_by_key(|p| area(p)).copied();
        let sampled = if sub_stream { sub } else { main };
        describe_uri = main.and_then(|p| p.stream_uri.clone());
        sample_uri = sampled.and_then(|p| p.stream_uri.clone());
        snapshot_uri = inv.profiles.iter().find_map(|p| p.snapshot_uri.clone());
        if let Some(v) = sampled.and_then(|p| p.profile.video.as_ref()) {
            expected = Expected {
                fps: v.fps.map(f64::from),
                bitrate_kbps: v.bitrate_kbps.map(f64::from),
                codec: Some(v.encoding.clone()),
            };
        }
    }
    let scope = scope(access, id, &xaddr, device.address.as_deref());
    let inventory_error = device.probe_error_kind.clone();
    Some(Target {
        device,
        has_inventory,
        inventory_error,
        xaddr,
        creds,
        scope,
        describe_uri,
        sample_uri,
        expected,
        snapshot_uri,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn scope_is_the_cameras_hosts_plus_what_a_technician_allowed_for_it() {
        let access = vec![
            CameraAccess {
                device: "cam-1".into(),
                extra_hosts: vec!["192.168.10.5".into()],
                plain_basic: true,
            },
            CameraAccess {
                device: "cam-2".into(),
                extra_hosts: vec!["192.168.10.9".into()],
                plain_basic: false,
            },
        ];
        let xaddr = "http://192.168.1.64:8000/onvif/device_service";
        let s = scope(&access, "cam-1", xaddr, Some("192.168.1.65"));
        for ok in [
            "http://192.168.1.64/a",
            "http://192.168.1.65/a",
            "http://192.168.10.5/a",
        ] {
            assert!(s.host_allowed(&url(ok)), "{ok}");
        }
        assert!(!s.host_allowed(&url("http://192.168.10.9/a")));
        assert!(
            s.check(
                &url("http://192.168.1.64/a"),
                device_drivers::cred_scope::Scheme::Basic
            )
            .is_ok()
        );
        // Another camera's entry does not apply; the default is strict.
        let other = scope(&access, "cam-3", xaddr, None);
        assert!(!other.host_allowed(&url("http://192.168.10.5/a")));
        assert!(!other.host_allowed(&url("http://192.168.1.65/a")));
        assert!(
            other
                .check(
                    &url("http://192.168.1.64/a"),
                    device_drivers::cred_scope::Scheme::Basic
                )
                .is_err()
        );
    }
}
