//! Non-INVITE client transactions over UDP (RFC 3261 §17.1.2) for the
//! requests we send to a platform (MESSAGE answers, catalog pages, NOTIFYs),
//! with a send window: at most `window` requests outstanding, the rest wait
//! in order. Pure: bytes and `now` in, bytes to send and timeouts out.
//!
//! Timer E: resend after T1 (500 ms), doubling up to T2 (4 s); after a
//! provisional answer, every T2. Timer F: give up 64*T1 (32 s) after the first
//! send. TCP needs none of this; use it for UDP only.

use std::collections::VecDeque;
use std::time::Duration;

use crate::sip::{Request, Response};

/// RFC 3261 T1: first retransmit interval.
pub const T1: Duration = Duration::from_millis(500);
/// RFC 3261 T2: retransmit interval cap.
pub const T2: Duration = Duration::from_secs(4);
/// RFC 3261 Timer F: transaction timeout.
pub const TIMER_F: Duration = Duration::from_millis(64 * 500);
/// Requests waiting for the window beyond this are refused.
pub const MAX_QUEUED: usize = 4096;

/// The transaction key of a request: Call-ID, CSeq number and method.
pub fn key_of_request(r: &Request) -> Option<String> {
    let (n, m) = r.cseq()?;
    Some(key(r.headers.get("Call-ID")?, n, m))
}

/// The transaction key a response answers.
pub fn key_of_response(r: &Response) -> Option<String> {
    let (n, m) = r.cseq()?;
    Some(key(r.headers.get("Call-ID")?, n, m))
}

fn key(call_id: &str, n: u32, method: &str) -> String {
    format!("{} {n} {}", call_id.trim(), method.to_ascii_uppercase())
}

/// What [`Table::add`] did with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// Send these bytes now.
    Send(Vec<u8>),
    /// The window is full: it goes when an earlier one is answered.
    Queued,
    /// The queue is full ([`MAX_QUEUED`]): dropped.
    Full,
}

/// What [`Table::on_tick`] and [`Table::on_response`] ask for.
#[derive(Debug, PartialEq, Eq)]
pub enum TxnOut<L = String> {
    /// Send (a retransmission or a request the window now admits).
    Send(Vec<u8>),
    /// Unanswered for Timer F: given up. `label` is what the caller gave to `add`.
    TimedOut { key: String, label: L },
}

#[derive(Debug)]
struct Pending<L> {
    key: String,
    label: L,
    bytes: Vec<u8>,
}

#[derive(Debug)]
struct Live<L> {
    p: Pending<L>,
    deadline_f: Duration,
    next_send: Duration,
    interval: Duration,
}

/// One platform's outstanding requests; `L` labels each (for the caller: where to, which SN).
#[derive(Debug)]
pub struct Table<L = String> {
    window: usize,
    live: Vec<Live<L>>,
    queue: VecDeque<Pending<L>>,
}

impl<L> Table<L> {
    /// A table admitting `window` (at least 1) outstanding requests.
    pub fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
            live: Vec::new(),
            queue: VecDeque::new(),
        }
    }

    /// Requests sent and not answered yet.
    pub fn outstanding(&self) -> usize {
        self.live.len()
    }

    /// Requests waiting for the window.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Starts a transaction for `bytes` keyed `key` (see [`key_of_request`]).
    pub fn add(&mut self, key: String, bytes: Vec<u8>, label: L, now: Duration) -> Added {
        let p = Pending { key, label, bytes };
        if self.live.len() < self.window && self.queue.is_empty() {
            Added::Send(self.start(p, now))
        } else if self.queue.len() >= MAX_QUEUED {
            Added::Full
        } else {
            self.queue.push_back(p);
            Added::Queued
        }
    }

    fn start(&mut self, p: Pending<L>, now: Duration) -> Vec<u8> {
        let bytes = p.bytes.clone();
        self.live.push(Live {
            p,
            deadline_f: now + TIMER_F,
            next_send: now + T1,
            interval: T1,
        });
        bytes
    }

    fn fill(&mut self, now: Duration, out: &mut Vec<TxnOut<L>>) {
        while self.live.len() < self.window {
            let Some(p) = self.queue.pop_front() else {
                break;
            };
            out.push(TxnOut::Send(self.start(p, now)));
        }
    }

    /// A response with `key` and `status` came: a final one ends the
    /// transaction (and admits the next); a provisional one slows resends to T2.
    /// Returns true when the key was ours.
    pub fn on_response(&mut self, key: &str, status: u16, now: Duration) -> (bool, Vec<TxnOut<L>>) {
        let mut out = Vec::new();
        let Some(k) = self.live.iter().position(|l| l.p.key == key) else {
            return (false, out);
        };
        if status < 200 {
            let l = &mut self.live[k];
            l.interval = T2;
            l.next_send = now + T2;
        } else {
            self.live.remove(k);
            self.fill(now, &mut out);
        }
        (true, out)
    }

    /// Resends what is due, gives up on what passed Timer F.
    pub fn on_tick(&mut self, now: Duration) -> Vec<TxnOut<L>> {
        let mut out = Vec::new();
        let mut k = 0;
        while k < self.live.len() {
            if now >= self.live[k].deadline_f {
                let l = self.live.remove(k);
                out.push(TxnOut::TimedOut {
                    key: l.p.key,
                    label: l.p.label,
                });
                continue;
            }
            let l = &mut self.live[k];
            if now >= l.next_send {
                out.push(TxnOut::Send(l.p.bytes.clone()));
                l.interval = (l.interval * 2).min(T2);
                l.next_send = now + l.interval;
            }
            k += 1;
        }
        self.fill(now, &mut out);
        out
    }

    /// The label given to `add` for the live transaction `key`.
    pub fn label_of(&self, key: &str) -> Option<&L> {
        self.live
            .iter()
            .find(|l| l.p.key == key)
            .map(|l| &l.p.label)
    }

    /// When [`Table::on_tick`] has work next.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.live
            .iter()
            .map(|l| l.next_send.min(l.deadline_f))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn sends(out: &[TxnOut]) -> usize {
        out.iter().filter(|o| matches!(o, TxnOut::Send(_))).count()
    }

    /// Unanswered: resent at 0.5, 1.5, 3.5, 7.5, 11.5, … s (T1 doubling to T2), given up at 32 s once.
    #[test]
    fn retransmit_schedule_and_timeout() {
        let mut t = Table::<String>::new(8);
        assert_eq!(
            t.add("a".into(), b"REQ".to_vec(), "Catalog SN 7".into(), ms(0)),
            Added::Send(b"REQ".to_vec())
        );
        let mut at = Vec::new();
        let mut timed_out = Vec::new();
        let mut now = ms(0);
        while now <= ms(40_000) {
            for o in t.on_tick(now) {
                match o {
                    TxnOut::Send(b) => {
                        assert_eq!(b, b"REQ");
                        at.push(now.as_millis());
                    }
                    TxnOut::TimedOut { key, label } => {
                        timed_out.push((now.as_millis(), key, label))
                    }
                }
            }
            now += ms(100);
        }
        assert_eq!(
            at,
            vec![
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        assert_eq!(
            timed_out,
            vec![(32_000, "a".to_string(), "Catalog SN 7".to_string())]
        );
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.next_deadline(), None);
    }

    /// A 200 ends it: no resend after; a 100 Trying slows resends to every T2.
    #[test]
    fn final_response_stops_provisional_slows() {
        let mut t = Table::<String>::new(8);
        t.add("a".into(), b"A".to_vec(), String::new(), ms(0));
        t.add("b".into(), b"B".to_vec(), String::new(), ms(0));
        assert!(t.on_response("a", 200, ms(100)).0);
        assert!(!t.on_response("zzz", 200, ms(100)).0);
        assert!(t.on_response("b", 100, ms(100)).0);
        assert_eq!(t.next_deadline(), Some(ms(4100)));
        assert!(t.on_tick(ms(4000)).is_empty());
        assert_eq!(t.on_tick(ms(4100)), vec![TxnOut::Send(b"B".to_vec())]);
        assert!(t.on_response("b", 486, ms(4200)).0);
        assert_eq!(t.outstanding(), 0);
        assert!(t.on_tick(ms(60_000)).is_empty());
    }

    /// Window 2: the third waits until one is answered (or times out), in order.
    #[test]
    fn window_admits_next_on_answer_or_timeout() {
        let mut t = Table::<String>::new(2);
        assert!(matches!(
            t.add("1".into(), b"1".to_vec(), String::new(), ms(0)),
            Added::Send(_)
        ));
        assert!(matches!(
            t.add("2".into(), b"2".to_vec(), String::new(), ms(0)),
            Added::Send(_)
        ));
        assert_eq!(
            t.add("3".into(), b"3".to_vec(), String::new(), ms(0)),
            Added::Queued
        );
        assert_eq!(
            t.add("4".into(), b"4".to_vec(), String::new(), ms(0)),
            Added::Queued
        );
        assert_eq!((t.outstanding(), t.queued()), (2, 2));
        let (ours, out) = t.on_response("2", 200, ms(10));
        assert!(ours);
        assert_eq!(out, vec![TxnOut::Send(b"3".to_vec())]);
        // "1" and "3" time out; "4" goes out on the tick that drops them.
        let out = t.on_tick(ms(32_000));
        assert!(out.contains(&TxnOut::TimedOut {
            key: "1".into(),
            label: String::new()
        }));
        assert!(out.contains(&TxnOut::Send(b"4".to_vec())));
        assert_eq!(sends(&out), 2, "resend of 3 and first send of 4: {out:?}");
        assert_eq!((t.outstanding(), t.queued()), (2, 0));
    }

    /// Past MAX_QUEUED waiting, a request is refused, not buffered forever.
    #[test]
    fn full_queue_refuses() {
        let mut t = Table::<String>::new(1);
        t.add("0".into(), Vec::new(), String::new(), ms(0));
        for n in 0..MAX_QUEUED {
            assert_eq!(
                t.add(format!("q{n}"), Vec::new(), String::new(), ms(0)),
                Added::Queued
            );
        }
        assert_eq!(
            t.add("x".into(), Vec::new(), String::new(), ms(0)),
            Added::Full
        );
    }

    /// Keys match between a request and its response, method case aside.
    #[test]
    fn keys_match_request_and_response() {
        let req = crate::sip::parse(
            b"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: c1@x\r\nCSeq: 20 MESSAGE\r\nContent-Length: 0\r\n\r\n",
        );
        let resp = crate::sip::parse(
            b"SIP/2.0 200 OK\r\nCall-ID: c1@x\r\nCSeq: 20 message\r\nContent-Length: 0\r\n\r\n",
        );
        let (Ok(crate::sip::Message::Request(q)), Ok(crate::sip::Message::Response(r))) =
            (req, resp)
        else {
            panic!("fixtures parse");
        };
        assert_eq!(key_of_request(&q), key_of_response(&r));
        assert!(key_of_request(&q).is_some());
    }
}
