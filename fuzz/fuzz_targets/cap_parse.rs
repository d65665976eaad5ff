//! Fuzzes the CAP 1.2 parser `device_drivers::cap`: any bytes must give an
//! alert or an error naming why, never a panic, in time bounded by the
//! document cap (256 KiB) and the element caps.
#![no_main]

use device_drivers::cap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match cap::parse(data) {
        Ok(alert) => {
            // What the parser promises about every alert it returns.
            assert!(!alert.identifier.is_empty() && !alert.sender.is_empty());
            assert!(alert.infos.len() <= cap::MAX_INFOS);
            assert!(alert.references.len() <= cap::MAX_REFERENCES);
            let mut points = 0;
            for info in &alert.infos {
                assert!(!info.category.is_empty());
                assert!(info.areas.len() <= cap::MAX_AREAS);
                for area in &info.areas {
                    for poly in &area.polygons {
                        assert!(poly.len() >= 4 && poly.len() <= cap::MAX_POLYGON_POINTS);
                        assert_eq!(poly.first(), poly.last());
                        points += poly.len();
                    }
                    for ((lat, lon), r) in &area.circles {
                        assert!(lat.abs() <= 90.0 && lon.abs() <= 180.0);
                        assert!(*r >= 0.0 && *r <= cap::MAX_RADIUS_KM);
                    }
                }
            }
            assert!(points <= cap::MAX_POINTS);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
