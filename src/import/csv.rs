//! A CSV of cards (RFC 4180, UTF-8): one row per card under a header
//! naming its columns, in any order and any case. `title` is required;
//! `description`, `column` (the column's name: columns are made in the
//! order their names first appear; without it every card goes to "To do"),
//! `priority`, `assignee`, `labels` (joined by `; `, `\` escaping),
//! `due_date` (YYYY-MM-DD) and `archived` (true/false) are read; `id`,
//! `column_id`, `position`, `created_at`, `updated_at` and `version` (what
//! an export adds) are ignored. Any other header is refused, so a typo
//! does not drop a column silently. The leading `'` an export puts in
//! front of a cell a spreadsheet would run is taken off.

use super::{Plan, PlannedCard, PlannedColumn, Problem};
use crate::task::Priority;
use crate::time::Date;

const READ: [&str; 8] = [
    "title",
    "description",
    "column",
    "priority",
    "assignee",
    "labels",
    "due_date",
    "archived",
];
const IGNORED: [&str; 6] = [
    "id",
    "column_id",
    "position",
    "created_at",
    "updated_at",
    "version",
];
/// Cells a row may have, at most.
const MAX_CELLS: usize = 64;

pub fn plan(text: &str, board_name: &str) -> Result<Plan, Problem> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let records = records(text)?;
    let Some((_, header)) = records.first() else {
        return Err(Problem::new(
            "line 1",
            "the file is empty (a header is needed)",
        ));
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_lowercase()).collect();
    for (i, name) in header.iter().enumerate() {
        if !READ.contains(&name.as_str()) && !IGNORED.contains(&name.as_str()) {
            return Err(Problem::new(
                "line 1",
                format!(
                    "unknown column `{}` (the header may name {})",
                    super::shorten(name, 40),
                    READ.join(", ")
                ),
            ));
        }
        if header[..i].contains(name) {
            return Err(Problem::new(
                "line 1",
                format!("column `{name}` is named twice"),
            ));
        }
    }
    let at = |name: &str| header.iter().position(|h| h == name);
    let Some(title) = at("title") else {
        return Err(Problem::new("line 1", "the header has no `title` column"));
    };
    let (description, column, priority, assignee, labels, due, archived) = (
        at("description"),
        at("column"),
        at("priority"),
        at("assignee"),
        at("labels"),
        at("due_date"),
        at("archived"),
    );
    let mut plan = Plan {
        board_name: board_name.to_string(),
        columns: Vec::new(),
        cards: Vec::new(),
    };
    for (line, row) in &records[1..] {
        let here = |name: &str| format!("line {line}, column {name}");
        if row.len() != header.len() {
            return Err(Problem::new(
                format!("line {line}"),
                format!("{} cells; the header has {}", row.len(), header.len()),
            ));
        }
        let cell = |i: Option<usize>| i.map(|i| unguard(&row[i])).unwrap_or_default();
        let column_name = match column {
            Some(i) if !row[i].trim().is_empty() => unguard(&row[i]).trim().to_string(),
            _ => "To do".to_string(),
        };
        let column = match plan.columns.iter().position(|c| c.name == column_name) {
            Some(i) => i,
            None => {
                plan.columns.push(PlannedColumn {
                    name: column_name,
                    wip_limit: None,
                    color: None,
                    archive_after_days: None,
                });
                plan.columns.len() - 1
            }
        };
        let mut card = PlannedCard::titled(column, unguard(&row[title]));
        card.description = cell(description);
        let text = cell(priority);
        if !text.trim().is_empty() {
            card.priority = text
                .trim()
                .to_lowercase()
                .parse::<Priority>()
                .map_err(|_| {
                    Problem::new(here("priority"), "must be low, medium, high or urgent")
                })?;
        }
        let text = cell(assignee);
        card.assignee = (!text.trim().is_empty()).then_some(text);
        card.labels = split_labels(&cell(labels));
        let text = cell(due);
        if !text.trim().is_empty() {
            card.due_date = Some(
                Date::parse(text.trim())
                    .ok_or_else(|| Problem::new(here("due_date"), "must be a date, YYYY-MM-DD"))?,
            );
        }
        card.archived = match cell(archived).trim().to_lowercase().as_str() {
            "" | "false" | "no" | "0" => false,
            "true" | "yes" | "1" => true,
            _ => return Err(Problem::new(here("archived"), "must be true or false")),
        };
        card.check(&format!("line {line}"))?;
        plan.cards.push(card);
    }
    plan.check()?;
    Ok(plan)
}

/// Labels as one cell: joined by `; `, a `\` or `;` in one escaped with `\`.
pub fn join_labels(labels: &[String]) -> String {
    labels
        .iter()
        .map(|l| l.replace('\\', "\\\\").replace(';', "\\;"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether a spreadsheet would take `text` for a formula once its leading
/// `'`s are gone (so the `'` an export adds is told from one of the text).
pub fn formula_like(text: &str) -> bool {
    text.trim_start_matches('\'')
        .starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// A cell without the `'` an export put in front of a formula.
fn unguard(cell: &str) -> String {
    match cell.strip_prefix('\'') {
        Some(rest) if formula_like(cell) => rest.to_string(),
        _ => cell.to_string(),
    }
}

/// Labels joined by `;`, a `\` escaping the next character.
fn split_labels(text: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let mut label = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => label.extend(chars.next()),
            ';' => labels.push(std::mem::take(&mut label)),
            c => label.push(c),
        }
    }
    labels.push(label);
    labels
        .into_iter()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The records of `text` with the line each starts on.
fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>, Problem> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut cell = String::new();
    let mut line = 1;
    let mut start = 1;
    let mut quoted = false;
    let mut quote_line = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() => {
                quoted = true;
                quote_line = line;
            }
            (false, ',') => {
                record.push(std::mem::take(&mut cell));
                if record.len() >= MAX_CELLS {
                    return Err(Problem::new(
                        format!("line {start}"),
                        format!("more than {MAX_CELLS} cells"),
                    ));
                }
            }
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut cell));
                // A blank line is no card.
                if !(record.len() == 1 && record[0].is_empty()) {
                    records.push((start, std::mem::take(&mut record)));
                }
                record.clear();
                start = line;
            }
            (false, c) => cell.push(c),
        }
    }
    if quoted {
        return Err(Problem::new(
            format!("line {quote_line}"),
            "a quoted cell is never closed",
        ));
    }
    if !cell.is_empty() || !record.is_empty() {
        record.push(cell);
        records.push((start, record));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_cells_with_commas_quotes_and_line_breaks_keep_their_line() {
        let text = "title,description\r\n\"a, \"\"b\"\"\",\"x\ny\"\n\nplain,\n";
        let records = records(text).unwrap();
        assert_eq!(records[0], (1, vec!["title".into(), "description".into()]));
        assert_eq!(records[1], (2, vec!["a, \"b\"".into(), "x\ny".into()]));
        assert_eq!(records[2], (5, vec!["plain".into(), String::new()]));
    }

    #[test]
    fn the_first_problem_is_named_by_its_line() {
        let bad = [
            ("title,prio\nx,1\n", "line 1"),
            ("description\nx\n", "line 1"),
            (
                "title,priority\nok,low\nx,soon\n",
                "line 3, column priority",
            ),
            ("title,due_date\nx,31/12/2026\n", "line 2, column due_date"),
            ("title,archived\nx,maybe\n", "line 2, column archived"),
            ("title,column\nx\n", "line 2"),
            ("title\n\"open\n", "line 2"),
            ("title\n\n", "columns"),
        ];
        for (text, at) in bad {
            let problem = plan(text, "B").err();
            assert!(
                problem.as_ref().is_some_and(|p| p.at.starts_with(at)),
                "{text:?}: {problem:?}"
            );
        }
        let long = format!("title\n{}\n", "x".repeat(201));
        assert_eq!(plan(&long, "B").unwrap_err().at, "line 2.title");
    }

    #[test]
    fn labels_join_with_their_separator_escaped_and_split_back() {
        let labels = vec!["a;b".to_string(), "c\\".to_string(), "d".to_string()];
        assert_eq!(join_labels(&labels), "a\\;b; c\\\\; d");
        assert_eq!(split_labels(&join_labels(&labels)), labels);
    }

    #[test]
    fn an_exports_cells_read_back_as_they_were() {
        let text = "id,title,description,column,labels,archived\n\
                    1,\"'=cmd|' /C calc'!A0\",\"''=x\",Doing,\"a\\;b; c\\\\; '-x\",true\n";
        let plan = plan(text, "B").unwrap();
        let card = &plan.cards[0];
        assert_eq!(card.title, "=cmd|' /C calc'!A0");
        assert_eq!(card.description, "'=x");
        assert_eq!(card.labels, ["'-x", "a;b", "c\\"]);
        assert!(card.archived);
        assert_eq!(plan.columns[0].name, "Doing");
    }
}
