//! MANSCDP (GB/T 28181 §A) XML bodies: reading any `Query` / `Control` /
//! `Notify` / `Response`, and building the ones a lower platform sends
//! (Keepalive, paged Catalog, DeviceInfo, DeviceStatus, Alarm, catalog
//! NOTIFY). Bodies are GB2312 by default (decoded as GBK, its superset) and
//! UTF-8 where a platform wants it.

use crate::xml::{self, escape};

/// Cap on one MANSCDP body (a catalog page is a few KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// Cap on the items read from one `DeviceList`.
pub const MAX_ITEMS: usize = 1_000;

/// The SIP `Content-Type` of MANSCDP bodies.
pub const CONTENT_TYPE: &str = "Application/MANSCDP+xml";

/// Why a MANSCDP body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManscdpError {
    /// Empty or over [`MAX_BODY`].
    #[error("MANSCDP body of {0} bytes is empty or over the 64 KiB limit")]
    Size(usize),
    /// Not XML, or refused by the XML reader (DTD, too many nodes).
    #[error("MANSCDP body: {0}")]
    Xml(#[from] xml::XmlError),
    /// The root is not Query, Control, Notify or Response.
    #[error("MANSCDP root element <{0}> is none of Query, Control, Notify, Response")]
    Root(String),
    /// A required element is absent or empty.
    #[error("MANSCDP {cmd} without <{field}>")]
    Missing {
        /// The CmdType, or `?`.
        cmd: String,
        /// The element.
        field: &'static str,
    },
    /// SN is not a number.
    #[error("MANSCDP SN {0:?} is not a number")]
    Sn(String),
}

/// How MANSCDP bodies are encoded for one platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub enum Charset {
    /// GB2312 (the standard's default).
    #[default]
    #[serde(rename = "gb2312")]
    Gb2312,
    /// UTF-8.
    #[serde(rename = "utf-8")]
    Utf8,
}

impl Charset {
    /// The label in the XML declaration.
    pub fn label(self) -> &'static str {
        match self {
            Charset::Gb2312 => "GB2312",
            Charset::Utf8 => "UTF-8",
        }
    }

    /// Encodes a document (characters GB2312 lacks become numeric references).
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Charset::Utf8 => text.as_bytes().to_vec(),
            Charset::Gb2312 => encoding_rs::GBK.encode(text).0.into_owned(),
        }
    }
}

/// Decodes a body: by the encoding its XML declaration names, else UTF-8 when
/// it is valid UTF-8, else GBK (platforms that send GB2312 without saying so).
pub fn decode(body: &[u8]) -> Result<String, ManscdpError> {
    if body.is_empty() || body.len() > MAX_BODY {
        return Err(ManscdpError::Size(body.len()));
    }
    let head = &body[..body.len().min(120)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let declared_gb = head.starts_with("<?xml")
        && ["gb2312", "gbk", "gb18030"]
            .iter()
            .any(|e| head.split("?>").next().is_some_and(|d| d.contains(e)));
    if !declared_gb && let Ok(s) = std::str::from_utf8(body) {
        return Ok(s.to_string());
    }
    let enc = if head.contains("gb18030") {
        encoding_rs::GB18030
    } else {
        encoding_rs::GBK
    };
    Ok(enc.decode_without_bom_handling(body).0.into_owned())
}

/// The root element of a MANSCDP document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// A query (Catalog, DeviceInfo, DeviceStatus, ...).
    Query,
    /// A control command (PTZ, TeleBoot, ...).
    Control,
    /// A notification (Keepalive, Alarm, Catalog changes).
    Notify,
    /// An answer to a query.
    Response,
}

impl Root {
    fn parse(name: &str) -> Option<Root> {
        Some(match name {
            "Query" => Root::Query,
            "Control" => Root::Control,
            "Notify" => Root::Notify,
            "Response" => Root::Response,
            _ => return None,
        })
    }
}

/// One parsed MANSCDP document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manscdp {
    /// Query, Control, Notify or Response.
    pub root: Root,
    /// `CmdType` (`Catalog`, `Keepalive`, ...).
    pub cmd_type: String,
    /// `SN`, echoed in answers.
    pub sn: u32,
    /// `DeviceID` the document is about.
    pub device_id: String,
    /// Other top-level elements with text (`Status`, `SumNum`, `StartTime`...).
    pub fields: Vec<(String, String)>,
    /// `DeviceList`/`AlarmList` items: each a list of (element, text).
    pub items: Vec<Vec<(String, String)>>,
}

impl Manscdp {
    /// A top-level field's text.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a MANSCDP body (bytes as they came in the SIP message).
pub fn parse(body: &[u8]) -> Result<Manscdp, ManscdpError> {
    let text = decode(body)?;
    let text = xml::check(text.as_bytes(), MAX_BODY * 2)?;
    let doc = xml::parse(text)?;
    let root = doc.root_element();
    let kind =
        Root::parse(xml::local(root)).ok_or_else(|| ManscdpError::Root(xml::local(root).into()))?;
    let cmd_type =
        xml::child(root, "CmdType")
            .and_then(xml::text)
            .ok_or(ManscdpError::Missing {
                cmd: "?".into(),
                field: "CmdType",
            })?;
    let missing = |field| ManscdpError::Missing {
        cmd: cmd_type.clone(),
        field,
    };
    let sn_text = xml::child(root, "SN")
        .and_then(xml::text)
        .ok_or_else(|| missing("SN"))?;
    let sn = sn_text.parse().map_err(|_| ManscdpError::Sn(sn_text))?;
    // A Broadcast notify names its voice channel in TargetID, not DeviceID.
    let device_id = xml::child(root, "DeviceID")
        .or_else(|| xml::child(root, "TargetID").filter(|_| cmd_type == "Broadcast"))
        .and_then(xml::text)
        .ok_or_else(|| missing("DeviceID"))?;
    let mut fields = Vec::new();
    let mut items = Vec::new();
    for c in root.children().filter(|c| c.is_element()) {
        let name = xml::local(c);
        if matches!(name, "CmdType" | "SN" | "DeviceID") {
            continue;
        }
        let list: Vec<_> = xml::children(c, "Item").collect();
        if list.is_empty() {
            if let Some(t) = xml::text(c) {
                fields.push((name.to_string(), t));
            }
            continue;
        }
        for item in list.into_iter().take(MAX_ITEMS.saturating_sub(items.len())) {
            let kv = item
                .children()
                .filter(|e| e.is_element())
                .filter_map(|e| Some((xml::local(e).to_string(), xml::text(e)?)))
                .collect();
            items.push(kv);
        }
    }
    Ok(Manscdp {
        root: kind,
        cmd_type,
        sn,
        device_id,
        fields,
        items,
    })
}

fn head(root: &str, cmd: &str, sn: u32, device_id: &str, charset: Charset) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"{}\"?>\r\n<{root}>\r\n<CmdType>{cmd}</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n",
        charset.label(),
        escape(device_id)
    )
}

fn el(out: &mut String, name: &str, value: &str) {
    out.push_str(&format!("<{name}>{}</{name}>\r\n", escape(value)));
}

/// The Keepalive notify a lower platform sends on its timer.
pub fn keepalive(sn: u32, device_id: &str, charset: Charset) -> Vec<u8> {
    let mut s = head("Notify", "Keepalive", sn, device_id, charset);
    el(&mut s, "Status", "OK");
    s.push_str("</Notify>\r\n");
    charset.encode(&s)
}

/// What a catalog entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// 行政区划: the township's civil code itself.
    CivilCode,
    /// 业务分组 (type 215).
    BusinessGroup,
    /// 虚拟组织 (type 216): a village or a grid.
    VirtualOrg,
    /// A camera channel (type 131/132).
    Camera,
    /// A voice output channel (type 137): a horn the platform can broadcast to.
    VoiceOutput,
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogItem {
    /// Its 20-digit (or civil-code) id.
    pub device_id: String,
    /// What it is.
    pub kind: ItemKind,
    /// Name shown on the platform.
    pub name: String,
    /// Its parent's id (`ParentID`), if any.
    pub parent_id: Option<String>,
    /// The township's civil code.
    pub civil_code: String,
    /// The business group it belongs to (`BusinessGroupID`).
    pub business_group_id: Option<String>,
    /// Camera maker.
    pub manufacturer: Option<String>,
    /// Camera model.
    pub model: Option<String>,
    /// Where it is (free text).
    pub address: Option<String>,
    /// ON (online or degraded) or OFF.
    pub online: bool,
    /// Longitude, when known.
    pub longitude: Option<f64>,
    /// Latitude, when known.
    pub latitude: Option<f64>,
    /// For catalog NOTIFY: `ON`, `OFF`, `ADD`, `DEL`, `UPDATE`.
    pub event: Option<&'static str>,
}

fn write_item(s: &mut String, it: &CatalogItem) {
    s.push_str("<Item>\r\n");
    el(s, "DeviceID", &it.device_id);
    el(s, "Name", &it.name);
    if let Some(e) = it.event {
        el(s, "Event", e);
    }
    match it.kind {
        ItemKind::Camera | ItemKind::VoiceOutput => {
            el(s, "Manufacturer", it.manufacturer.as_deref().unwrap_or(""));
            el(s, "Model", it.model.as_deref().unwrap_or(""));
            el(s, "Owner", "Owner");
            el(s, "CivilCode", &it.civil_code);
            el(s, "Address", it.address.as_deref().unwrap_or(""));
            el(s, "Parental", "0");
            if let Some(p) = &it.parent_id {
                el(s, "ParentID", p);
            }
            if let Some(b) = &it.business_group_id {
                el(s, "BusinessGroupID", b);
            }
            el(s, "SafetyWay", "0");
            el(s, "RegisterWay", "1");
            el(s, "Secrecy", "0");
            el(s, "Status", if it.online { "ON" } else { "OFF" });
            if let (Some(lo), Some(la)) = (it.longitude, it.latitude) {
                el(s, "Longitude", &format!("{lo:.6}"));
                el(s, "Latitude", &format!("{la:.6}"));
            }
        }
        ItemKind::CivilCode => {}
        ItemKind::BusinessGroup | ItemKind::VirtualOrg => {
            if let Some(p) = &it.parent_id {
                el(s, "ParentID", p);
            }
            if let Some(b) = &it.business_group_id
                && it.kind == ItemKind::VirtualOrg
            {
                el(s, "BusinessGroupID", b);
            }
            el(s, "CivilCode", &it.civil_code);
        }
    }
    s.push_str("</Item>\r\n");
}

/// A Catalog answer in pages of `per_page` items (at least one page, also
/// for an empty catalog), each carrying the total `SumNum`.
pub fn catalog_pages(
    sn: u32,
    device_id: &str,
    items: &[CatalogItem],
    per_page: usize,
    charset: Charset,
) -> Vec<Vec<u8>> {
    let per_page = per_page.max(1);
    let mut chunks: Vec<&[CatalogItem]> = items.chunks(per_page).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    chunks
        .into_iter()
        .map(|page| {
            let mut s = head("Response", "Catalog", sn, device_id, charset);
            el(&mut s, "SumNum", &items.len().to_string());
            s.push_str(&format!("<DeviceList Num=\"{}\">\r\n", page.len()));
            for it in page {
                write_item(&mut s, it);
            }
            s.push_str("</DeviceList>\r\n</Response>\r\n");
            charset.encode(&s)
        })
        .collect()
}

/// A catalog change for a subscription's NOTIFY (each item with its `Event`).
pub fn catalog_notify(
    sn: u32,
    device_id: &str,
    items: &[CatalogItem],
    charset: Charset,
) -> Vec<u8> {
    let mut s = head("Notify", "Catalog", sn, device_id, charset);
    el(&mut s, "SumNum", &items.len().to_string());
    s.push_str(&format!("<DeviceList Num=\"{}\">\r\n", items.len()));
    for it in items {
        write_item(&mut s, it);
    }
    s.push_str("</DeviceList>\r\n</Notify>\r\n");
    charset.encode(&s)
}

/// The DeviceInfo answer about this gateway (or one channel).
#[derive(Debug, Clone)]
pub struct DeviceInfo<'a> {
    /// Device name.
    pub name: &'a str,
    /// Maker.
    pub manufacturer: &'a str,
    /// Model.
    pub model: &'a str,
    /// Firmware version.
    pub firmware: &'a str,
    /// Number of channels.
    pub channels: usize,
}

/// The DeviceInfo answer.
pub fn device_info(sn: u32, device_id: &str, info: &DeviceInfo<'_>, charset: Charset) -> Vec<u8> {
    let mut s = head("Response", "DeviceInfo", sn, device_id, charset);
    el(&mut s, "DeviceName", info.name);
    el(&mut s, "Result", "OK");
    el(&mut s, "Manufacturer", info.manufacturer);
    el(&mut s, "Model", info.model);
    el(&mut s, "Firmware", info.firmware);
    el(&mut s, "Channel", &info.channels.to_string());
    s.push_str("</Response>\r\n");
    charset.encode(&s)
}

/// The DeviceStatus answer: `online` says ONLINE/OFFLINE, `device_time` is
/// local time as `YYYY-MM-DDTHH:MM:SS`.
pub fn device_status(
    sn: u32,
    device_id: &str,
    online: bool,
    device_time: &str,
    charset: Charset,
) -> Vec<u8> {
    let mut s = head("Response", "DeviceStatus", sn, device_id, charset);
    el(&mut s, "Result", "OK");
    el(&mut s, "Online", if online { "ONLINE" } else { "OFFLINE" });
    el(&mut s, "Status", if online { "OK" } else { "ERROR" });
    el(&mut s, "Encode", "ON");
    el(&mut s, "Record", "OFF");
    el(&mut s, "DeviceTime", device_time);
    s.push_str("<Alarmstatus Num=\"0\">\r\n</Alarmstatus>\r\n</Response>\r\n");
    charset.encode(&s)
}

/// An alarm to report.
#[derive(Debug, Clone)]
pub struct Alarm<'a> {
    /// The channel it is about.
    pub channel_id: &'a str,
    /// 1 (first) to 4 (fourth) priority.
    pub priority: u8,
    /// AlarmMethod: 2 = device alarm, 5 = video alarm.
    pub method: u8,
    /// AlarmType within the method (device: 1 video loss, 2 tamper...; here
    /// also 1 for "offline"/"fault").
    pub alarm_type: u8,
    /// Local time `YYYY-MM-DDTHH:MM:SS`.
    pub time: &'a str,
    /// Free text.
    pub description: &'a str,
}

/// The Alarm notify.
pub fn alarm_notify(sn: u32, alarm: &Alarm<'_>, charset: Charset) -> Vec<u8> {
    let mut s = head("Notify", "Alarm", sn, alarm.channel_id, charset);
    el(&mut s, "AlarmPriority", &alarm.priority.to_string());
    el(&mut s, "AlarmMethod", &alarm.method.to_string());
    el(&mut s, "AlarmTime", alarm.time);
    el(&mut s, "AlarmDescription", alarm.description);
    s.push_str(&format!(
        "<Info>\r\n<AlarmType>{}</AlarmType>\r\n</Info>\r\n</Notify>\r\n",
        alarm.alarm_type
    ));
    charset.encode(&s)
}

#[cfg(test)]
#[path = "manscdp_tests.rs"]
mod tests;
