//! What the writers put in a task besides what the checkers model: a mix
//! of sizes and characters, so that faults meet the payloads users send.
//!
//! - **small** (80 %): a short title, no or a short plain description;
//! - **limit** (8 %): every field at its validation limit
//!   (`src/task/validate.rs`): a 200-character title, a 20,000-character
//!   description, a 100-character assignee, 20 labels of 40 characters;
//! - **awkward** (12 %): titles padded with quotes, backslashes and emoji;
//!   descriptions of 2,000–20,000 characters that are mostly backslashes,
//!   with quotes and 4-byte emoji — the worst case for JSON escaping, SQL
//!   escaping and UTF-8 width at once.
//!
//! A title keeps its unique prefix (it is the set check's element and the
//! register's value); padding never ends in whitespace, which the server
//! would trim.

use serde_json::{json, Map, Value};

use super::rng::Rng;

/// The server's limits (`src/task/validate.rs`), in characters.
pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 20_000;
pub const ASSIGNEE_MAX: usize = 100;
pub const LABELS_MAX: usize = 20;
pub const LABEL_MAX: usize = 40;

/// A write's size class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    Small,
    Limit,
    Awkward,
}

impl Size {
    /// Drawn with the mix's weights.
    pub fn draw(rng: &mut Rng) -> Size {
        match rng.below(100) {
            0..=79 => Size::Small,
            80..=87 => Size::Limit,
            _ => Size::Awkward,
        }
    }
}

/// `base` (unique) made into a title of this size.
pub fn title(rng: &mut Rng, size: Size, base: &str) -> String {
    let room = TITLE_MAX.saturating_sub(base.chars().count() + 1);
    match size {
        Size::Small => base.to_string(),
        Size::Limit => format!("{base} {}", plain(rng, room)),
        Size::Awkward => {
            let n = rng.between(1, room as u64) as usize;
            format!("{base} {}", awkward(rng, n))
        }
    }
}

/// The fields of a body besides the modelled ones (for a create, or for an
/// update when `update`: then a small write usually changes no other field).
pub fn fields(rng: &mut Rng, size: Size, update: bool) -> Map<String, Value> {
    let mut fields = Map::new();
    match size {
        Size::Small => {
            if !update || rng.chance(20) {
                let n = rng.below(200) as usize;
                fields.insert("description".into(), json!(prose(rng, n)));
            }
        }
        Size::Limit => {
            fields.insert("description".into(), json!(prose(rng, DESCRIPTION_MAX)));
            fields.insert("assignee".into(), json!(plain(rng, ASSIGNEE_MAX)));
            if !update {
                let labels: Vec<String> = (0..LABELS_MAX)
                    .map(|i| format!("{i:02}{}", plain(rng, LABEL_MAX - 2)))
                    .collect();
                fields.insert("labels".into(), json!(labels));
            }
        }
        Size::Awkward => {
            let n = rng.between(2_000, DESCRIPTION_MAX as u64) as usize;
            fields.insert("description".into(), json!(awkward(rng, n)));
            if rng.chance(50) {
                let n = rng.between(1, ASSIGNEE_MAX as u64) as usize;
                fields.insert("assignee".into(), json!(awkward(rng, n)));
            }
        }
    }
    fields
}

/// `chars` characters of words on one line, no whitespace at either end.
fn plain(rng: &mut Rng, chars: usize) -> String {
    words(rng, chars, false)
}

/// Like [`plain`], over several lines (a description).
fn prose(rng: &mut Rng, chars: usize) -> String {
    words(rng, chars, true)
}

fn words(rng: &mut Rng, chars: usize, lines: bool) -> String {
    const WORDS: [&str; 8] = [
        "fix", "report", "deploy", "review", "board", "notes", "ship", "it",
    ];
    let mut text = String::with_capacity(chars + 8);
    while text.len() < chars {
        text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        text.push(if lines && rng.chance(8) { '\n' } else { ' ' });
    }
    text.truncate(chars);
    while text.ends_with(char::is_whitespace) {
        text.pop();
        text.push('x');
    }
    text
}

/// `chars` characters, mostly backslashes, with both quotes and emoji;
/// never whitespace or control characters.
fn awkward(rng: &mut Rng, chars: usize) -> String {
    (0..chars)
        .map(|_| match rng.below(10) {
            0..=5 => '\\',
            6 => '"',
            7 => '\'',
            8 => '😀',
            _ => 'é',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_stays_inside_the_servers_limits() {
        let mut rng = Rng::new(5);
        for n in 0..2_000 {
            let size = Size::draw(&mut rng);
            let base = format!("w1-{n}-0123abcd");
            let title = title(&mut rng, size, &base);
            assert!(title.starts_with(&base));
            assert_eq!(title.trim(), title, "{size:?} title is trimmed");
            assert!(!title.chars().any(char::is_control));
            assert!(
                title.chars().count() <= TITLE_MAX,
                "{size:?}: {}",
                title.chars().count()
            );
            let fields = fields(&mut rng, size, n % 2 == 0);
            if let Some(d) = fields.get("description").and_then(Value::as_str) {
                assert!(d.chars().count() <= DESCRIPTION_MAX);
            }
            if let Some(a) = fields.get("assignee").and_then(Value::as_str) {
                assert!(a.chars().count() <= ASSIGNEE_MAX && a.trim() == a);
                assert!(!a.chars().any(char::is_control));
            }
            if let Some(labels) = fields.get("labels").and_then(Value::as_array) {
                assert!(labels.len() <= LABELS_MAX);
                assert!(labels
                    .iter()
                    .all(|l| l.as_str().is_some_and(|l| l.chars().count() <= LABEL_MAX)));
            }
        }
    }

    #[test]
    fn the_mix_is_mostly_small_with_some_at_the_limits_and_some_awkward() {
        let mut rng = Rng::new(9);
        let sizes: Vec<Size> = (0..10_000).map(|_| Size::draw(&mut rng)).collect();
        let share = |s: Size| sizes.iter().filter(|&&x| x == s).count();
        assert!((7_500..8_500).contains(&share(Size::Small)));
        assert!((500..1_100).contains(&share(Size::Limit)));
        assert!((900..1_500).contains(&share(Size::Awkward)));
    }
}
