//! Shape rules for task fields, checked by the api before anything is
//! proposed. A value that passes here can always be stored; whether the
//! command makes sense against the current state is decided at apply.

use super::{NewTask, TaskPatch};
pub use crate::invalid::Invalid;

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 20_000;
pub const COMMENT_MAX: usize = 10_000;
pub const ASSIGNEE_MAX: usize = 100;
pub const LABELS_MAX: usize = 20;
pub const LABEL_MAX: usize = 40;
pub const IDEMPOTENCY_KEY_MAX: usize = 200;
/// Positions beyond this lose the precision fractional ordering needs.
pub const POSITION_LIMIT: f64 = 1e15;

/// Trims and checks a new task in place.
pub fn new_task(task: &mut NewTask) -> Result<(), Invalid> {
    task.title = title(&task.title)?;
    description(&task.description)?;
    if let Some(position) = task.position {
        self::position(position)?;
    }
    task.assignee = match task.assignee.take() {
        Some(name) => assignee(&name)?,
        None => None,
    };
    task.labels = labels(&task.labels)?;
    Ok(())
}

/// Trims and checks a patch in place; an empty patch is refused.
pub fn patch(patch: &mut TaskPatch) -> Result<(), Invalid> {
    if patch.is_empty() {
        return Err(Invalid::new("body", "names no field to change"));
    }
    if let Some(text) = &patch.title {
        patch.title = Some(title(text)?);
    }
    if let Some(text) = &patch.description {
        description(text)?;
    }
    if let Some(value) = patch.position {
        position(value)?;
    }
    if let Some(Some(name)) = &patch.assignee {
        patch.assignee = Some(assignee(name)?);
    }
    if let Some(list) = &patch.labels {
        patch.labels = Some(labels(list)?);
    }
    Ok(())
}

fn title(text: &str) -> Result<String, Invalid> {
    let trimmed = text.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err(Invalid::new("title", "must not be empty"));
    }
    if chars > TITLE_MAX {
        return Err(Invalid::new(
            "title",
            format!("is {chars} characters; the limit is {TITLE_MAX}"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Invalid::new("title", "must not contain control characters"));
    }
    Ok(trimmed.to_string())
}

fn description(text: &str) -> Result<(), Invalid> {
    let chars = text.chars().count();
    if chars > DESCRIPTION_MAX {
        return Err(Invalid::new(
            "description",
            format!("is {chars} characters; the limit is {DESCRIPTION_MAX}"),
        ));
    }
    Ok(())
}

/// A comment's body, trimmed: 1 to [`COMMENT_MAX`] characters of Markdown,
/// without control characters other than line breaks and tabs (a NUL or
/// an escape sequence has no place in a note a person reads).
pub fn comment_body(text: &str) -> Result<String, Invalid> {
    let trimmed = text.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err(Invalid::new("body", "must not be empty"));
    }
    if chars > COMMENT_MAX {
        return Err(Invalid::new(
            "body",
            format!("is {chars} characters; the limit is {COMMENT_MAX}"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Invalid::new(
            "body",
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(trimmed.to_string())
}

fn position(value: f64) -> Result<(), Invalid> {
    if !value.is_finite() || value.abs() > POSITION_LIMIT {
        return Err(Invalid::new(
            "position",
            format!("must be a finite number between -{POSITION_LIMIT:e} and {POSITION_LIMIT:e}"),
        ));
    }
    Ok(())
}

/// An empty (after trimming) assignee means nobody.
fn assignee(name: &str) -> Result<Option<String>, Invalid> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > ASSIGNEE_MAX || trimmed.chars().any(char::is_control) {
        return Err(Invalid::new(
            "assignee",
            format!("must be at most {ASSIGNEE_MAX} characters, without control characters"),
        ));
    }
    Ok(Some(trimmed.to_string()))
}

fn labels(list: &[String]) -> Result<Vec<String>, Invalid> {
    if list.len() > LABELS_MAX {
        return Err(Invalid::new(
            "labels",
            format!("has {} labels; the limit is {LABELS_MAX}", list.len()),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for label in list {
        let trimmed = label.trim();
        let chars = trimmed.chars().count();
        if chars == 0 || chars > LABEL_MAX || trimmed.chars().any(char::is_control) {
            return Err(Invalid::new(
                "labels",
                format!(
                    "each label must be 1 to {LABEL_MAX} characters, without control characters"
                ),
            ));
        }
        out.push(trimmed.to_string());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// An `Idempotency-Key` is 1–200 visible ASCII characters.
pub fn idempotency_key(key: &str) -> Result<(), Invalid> {
    let ok = !key.is_empty()
        && key.len() <= IDEMPOTENCY_KEY_MAX
        && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            "Idempotency-Key",
            format!("must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Priority, Status, TaskId};

    fn draft(title: &str) -> NewTask {
        NewTask {
            id: TaskId::generate(),
            title: title.to_string(),
            description: String::new(),
            status: Status::Todo,
            position: None,
            priority: Priority::Medium,
            assignee: None,
            labels: vec![],
            due_date: None,
            board_id: None,
            column_id: None,
        }
    }

    #[test]
    fn titles_are_trimmed_and_bounded_in_characters_not_bytes() {
        let mut task = draft("  Write the report \n");
        new_task(&mut task).unwrap();
        assert_eq!(task.title, "Write the report");

        let mut task = draft(&"é".repeat(TITLE_MAX));
        assert!(new_task(&mut task).is_ok(), "200 two-byte characters fit");
        let mut task = draft(&"a".repeat(TITLE_MAX + 1));
        assert_eq!(new_task(&mut task).unwrap_err().field, "title");
        let mut task = draft("   ");
        assert_eq!(
            new_task(&mut task).unwrap_err().message,
            "must not be empty"
        );
    }

    #[test]
    fn positions_must_be_finite_and_bounded() {
        for bad in [f64::NAN, f64::INFINITY, 1e16, -1e16] {
            let mut task = draft("x");
            task.position = Some(bad);
            assert_eq!(new_task(&mut task).unwrap_err().field, "position", "{bad}");
        }
    }

    #[test]
    fn labels_are_trimmed_sorted_and_deduplicated() {
        let mut task = draft("x");
        task.labels = vec![" ops".into(), "docs".into(), "ops ".into()];
        new_task(&mut task).unwrap();
        assert_eq!(task.labels, vec!["docs", "ops"]);

        task.labels = vec!["".into()];
        assert_eq!(new_task(&mut task).unwrap_err().field, "labels");
        task.labels = (0..=LABELS_MAX).map(|i| format!("l{i}")).collect();
        assert_eq!(new_task(&mut task).unwrap_err().field, "labels");
    }

    #[test]
    fn a_blank_assignee_means_nobody() {
        let mut p = TaskPatch {
            assignee: Some(Some("  ".into())),
            ..TaskPatch::default()
        };
        patch(&mut p).unwrap();
        assert_eq!(p.assignee, Some(None));
    }

    #[test]
    fn an_empty_patch_is_refused() {
        assert_eq!(
            patch(&mut TaskPatch::default()).unwrap_err().to_string(),
            "body: names no field to change"
        );
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(idempotency_key("client-1/req-42").is_ok());
        assert!(idempotency_key("").is_err());
        assert!(idempotency_key("has space").is_err());
        assert!(idempotency_key(&"k".repeat(IDEMPOTENCY_KEY_MAX + 1)).is_err());
    }
}
