//! The text read out: headline, description and instruction, each ended
//! with a full stop, trimmed to `max_text` on a sentence boundary.

use device_drivers::cap::Info;

fn is_cjk(c: char) -> bool {
    c as u32 >= 0x2E80
}

fn ends_sentence(c: char) -> bool {
    matches!(
        c,
        '。' | '！' | '？' | '；' | '!' | '?' | ';' | '\n' | '.' | '…'
    )
}

/// Headline, description and instruction, each ended with a full stop,
/// trimmed to `max` characters on a sentence boundary (see the module docs).
pub fn compose_text(info: &Info, max: usize) -> String {
    let mut text = String::new();
    let parts = [&info.headline, &info.description, &info.instruction];
    for p in parts.into_iter().flatten() {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(p);
        match p.chars().last() {
            Some(c) if ends_sentence(c) => {}
            Some(c) if is_cjk(c) => text.push('。'),
            _ => text.push('.'),
        }
    }
    if text.is_empty() {
        text = info.event.trim().to_string();
    }
    trim_to_sentence(&text, max)
}

/// Cuts `text` to at most `max` characters at a sentence end in the second
/// half of the allowance, else at a comma there, else hard.
pub fn trim_to_sentence(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_string();
    }
    let half = max / 2;
    let boundary = |pred: &dyn Fn(usize) -> bool| (half..max).rev().find(|&i| pred(i));
    let sentence = |i: usize| {
        let c = chars[i];
        // `.` ends a sentence only before whitespace and not after a digit
        // (not in `3.5`, nor a list number `1. `).
        ends_sentence(c)
            && (c != '.'
                || (chars.get(i + 1).is_some_and(|n| n.is_whitespace())
                    && i > 0
                    && !chars[i - 1].is_ascii_digit()))
    };
    let comma = |i: usize| matches!(chars[i], '，' | ',' | '、');
    let end = boundary(&sentence)
        .or_else(|| boundary(&comma))
        .map_or(max, |i| i + 1);
    chars[..end]
        .iter()
        .collect::<String>()
        .trim_end()
        .to_string()
}
