//! Camera health on the dashboards: the live hub (`crate::base::live`) is a
//! [`HealthSink`] of the poller, so states and transitions reach every SSE
//! client as they happen.

use crate::base::live::{LiveEvent, LiveHub, reasons_of};
use crate::cameras::poller::HealthSink;
use crate::store::{Device, fmt_time};
use tgw_core::health::{Health, Transition};

impl HealthSink for LiveHub {
    fn state(&self, device: &Device, health: &Health) {
        if self.subscribers() == 0 {
            return;
        }
        self.publish(LiveEvent::State {
            id: device.id.clone(),
            village: device.village.clone(),
            verdict: health.verdict.label().to_string(),
            reasons: reasons_of(health),
            rung: health.rung.as_str().to_string(),
        });
    }

    fn transition(&self, device: &Device, t: &Transition, health: &Health) {
        self.publish(LiveEvent::Transition {
            id: device.id.clone(),
            village: device.village.clone(),
            from: t.from.label().to_string(),
            to: t.to.label().to_string(),
            reasons: reasons_of(health),
            rung: t.rung_to.as_str().to_string(),
            at: fmt_time(t.at),
        });
    }
}
