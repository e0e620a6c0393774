//! Notifications: a user's bell, derived from the log.
//!
//! A notification is an event of its own (`notification_added`), decided
//! by the applier on every node from the entry that caused it, so the
//! `notifications` table is a fold of the events like `comments` is, and
//! catch-up, restore and rebuild reproduce it without deciding anything
//! again. Two things make one:
//!
//! - a mention: a comment's body, or a card's description, that names
//!   `@username` it did not name before the change (an edit that keeps a
//!   mention does not ring again). The name must be a user's who can see
//!   the card's board, and not the author's own; unknown names are text.
//! - a due reminder: a leader sweep proposes `due_remind` for a card whose
//!   due date is today or tomorrow (UTC); the applier refuses a second one
//!   for the same card and due date, so a new leader's sweep rings nobody
//!   twice.
//!
//! Marking read (`notifications_read`) is a command of the user's and an
//! event of its own too, so the read state folds the same way.
//!
//! Not here: e-mail or anything else that leaves the cluster, mentions of
//! groups (`@here`), and notifications of other changes (assignments).

use serde::{Deserialize, Serialize};

use super::comment::CommentId;
use super::{BoardId, TaskId};
use crate::time::Date;

/// At most this many users are notified by one change; the rest of a
/// long list of names is text.
pub const MENTIONS_MAX: usize = 20;

/// The excerpt a notification carries, in characters.
pub const EXCERPT_MAX: usize = 140;

/// Why a user is notified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Mention,
    Due,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Mention => "mention",
            NotificationKind::Due => "due",
        }
    }
}

/// One notification as its event carries it; its id is the event's seq.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// The user notified (their id).
    pub user_id: String,
    pub kind: NotificationKind,
    pub board_id: BoardId,
    pub task_id: TaskId,
    /// For a mention in a comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<CommentId>,
    /// For a due reminder: the due date it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<Date>,
    /// The text around the mention, or the card's title.
    pub excerpt: String,
}

/// Which of a user's notifications a `notifications_read` marks read:
/// those up to a seq, and those listed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadMark {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upto: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<u64>,
}

impl ReadMark {
    /// Whether the notification `id` of `user_id` is marked by this.
    pub fn covers(&self, user_id: &str, id: u64) -> bool {
        user_id == self.user_id && (self.upto.is_some_and(|u| id <= u) || self.ids.contains(&id))
    }
}

/// What a notification event carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum NotificationChange {
    Added(Notice),
    Read(ReadMark),
}

impl NotificationChange {
    /// The only user who may see the event.
    pub fn user_id(&self) -> &str {
        match self {
            NotificationChange::Added(notice) => &notice.user_id,
            NotificationChange::Read(mark) => &mark.user_id,
        }
    }
}

/// A byte that may be part of a username (`crate::accounts::validate`).
fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// The names `text` mentions, lower-cased, in order of first appearance,
/// without repeats. A mention is `@` not preceded by a name byte (so an
/// e-mail address `a@b.c` is none), followed by name bytes; trailing dots
/// and dashes are punctuation (`@ana.` at a sentence's end is `ana`).
pub fn mentioned(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'@' || (i > 0 && (name_byte(bytes[i - 1]) || bytes[i - 1] == b'@')) {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while end < bytes.len() && name_byte(bytes[end]) {
            end += 1;
        }
        let mut name_end = end;
        while name_end > start && matches!(bytes[name_end - 1], b'.' | b'-') {
            name_end -= 1;
        }
        if name_end > start && name_end - start <= 64 {
            let name = text[start..name_end].to_ascii_lowercase();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        i = end.max(i + 1);
    }
    names
}

/// The names `after` mentions that `before` did not, at most
/// [`MENTIONS_MAX`].
pub fn new_mentions(before: &str, after: &str) -> Vec<String> {
    let old = mentioned(before);
    mentioned(after)
        .into_iter()
        .filter(|name| !old.contains(name))
        .take(MENTIONS_MAX)
        .collect()
}

/// Up to [`EXCERPT_MAX`] characters of `text` around the first mention of
/// `name` (from its line's start when that fits), whitespace collapsed.
pub fn excerpt(text: &str, name: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let at = lower.find(&format!("@{name}")).unwrap_or(0);
    let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
    let before: Vec<char> = text[line_start..at].chars().collect();
    let skip = before.len().saturating_sub(EXCERPT_MAX / 2);
    let mut out: String = before[skip..].iter().collect();
    out.push_str(&text[at..]);
    let collapsed: Vec<&str> = out.split_whitespace().collect();
    let joined = collapsed.join(" ");
    let mut chars = joined.chars();
    let cut: String = chars.by_ref().take(EXCERPT_MAX).collect();
    if chars.next().is_some() {
        format!("{}…", cut.trim_end())
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mention_is_at_then_a_username_at_a_word_boundary() {
        assert_eq!(
            mentioned("hi @Ana and @bob_2, see @c.d-e"),
            ["ana", "bob_2", "c.d-e"]
        );
        assert_eq!(mentioned("(@ana)"), ["ana"]);
        assert_eq!(mentioned("@ana: done"), ["ana"]);
    }

    #[test]
    fn an_email_address_or_a_lone_at_is_no_mention() {
        assert!(mentioned("mail ana@example.com").is_empty());
        assert!(mentioned("@ alone, @@ana, and @").is_empty());
    }

    #[test]
    fn trailing_punctuation_is_not_part_of_the_name() {
        assert_eq!(mentioned("thanks @ana. And @bob-"), ["ana", "bob"]);
    }

    #[test]
    fn a_name_mentioned_twice_counts_once() {
        assert_eq!(mentioned("@ana @ANA @ana"), ["ana"]);
    }

    #[test]
    fn only_names_the_change_adds_are_new() {
        assert_eq!(new_mentions("@ana please", "@ana and @bob please"), ["bob"]);
        assert!(new_mentions("@ana", "@Ana, again").is_empty());
        assert_eq!(new_mentions("", "@ana"), ["ana"]);
    }

    #[test]
    fn at_most_twenty_names_are_taken_from_one_change() {
        let text: String = (0..30).map(|i| format!("@u{i} ")).collect();
        let names = new_mentions("", &text);
        assert_eq!(names.len(), MENTIONS_MAX);
        assert_eq!(names[0], "u0");
    }

    #[test]
    fn the_excerpt_is_short_and_around_the_mention() {
        let long = format!("{} @ana look {}", "x".repeat(300), "y".repeat(300));
        let e = excerpt(&long, "ana");
        assert!(e.chars().count() <= EXCERPT_MAX + 1, "{e}");
        assert!(e.contains("@ana look"), "{e}");
        assert_eq!(
            excerpt("first line\n  hey   @ana  ok", "ana"),
            "hey @ana ok"
        );
    }

    #[test]
    fn a_read_mark_covers_its_users_ids_up_to_and_listed() {
        let mark = ReadMark {
            user_id: "u".into(),
            upto: Some(5),
            ids: vec![9],
        };
        assert!(mark.covers("u", 5) && mark.covers("u", 9));
        assert!(!mark.covers("u", 6) && !mark.covers("v", 1));
    }
}
