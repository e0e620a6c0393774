//! A Trello board export (the JSON of Trello's "Print and export → Export
//! as JSON"): its open lists become columns in their order; every card
//! goes to its list's column with its description, labels (their names, or
//! colours when unnamed), due date and archived state (a card in an
//! archived list is archived too, in the first column). Its comments
//! become its comments, oldest first, each opening with its Trello author
//! and date (they are written as the importing user). Its checklists
//! become its checklists, in order, with their items ticked or not (the
//! first 20 lists of a card, 200 items of a list; titles and items made
//! one line and cut to their limits). The
//! card's first member is its assignee, by Trello username (a user of the
//! cluster by that name, or just the name).
//!
//! Only the fields read here are checked; Trello's many others are left
//! alone. A field of the wrong type is refused with its path.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::{shorten, Plan, PlannedCard, PlannedChecklist, PlannedColumn, Problem};
use crate::task::validate::{COMMENT_MAX, DESCRIPTION_MAX, LABELS_MAX, LABEL_MAX, TITLE_MAX};
use crate::time::Date;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Board {
    name: String,
    #[serde(default)]
    lists: Vec<List>,
    #[serde(default)]
    cards: Vec<Card>,
    #[serde(default)]
    checklists: Vec<Checklist>,
    #[serde(default)]
    actions: Vec<Action>,
    #[serde(default)]
    members: Vec<Member>,
}

#[derive(Deserialize)]
struct List {
    id: String,
    name: String,
    #[serde(default)]
    closed: bool,
    #[serde(default)]
    pos: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Card {
    id: String,
    name: String,
    #[serde(default)]
    desc: String,
    id_list: String,
    #[serde(default)]
    closed: bool,
    #[serde(default)]
    due: Option<String>,
    #[serde(default)]
    pos: f64,
    #[serde(default)]
    labels: Vec<Label>,
    #[serde(default)]
    id_members: Vec<String>,
}

#[derive(Deserialize)]
struct Label {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    color: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Checklist {
    id_card: String,
    name: String,
    #[serde(default)]
    pos: f64,
    #[serde(default)]
    check_items: Vec<CheckItem>,
}

#[derive(Deserialize)]
struct CheckItem {
    name: String,
    state: String,
    #[serde(default)]
    pos: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Action {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    member_creator: Option<Member>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    #[serde(default)]
    id: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    username: String,
}

/// `bytes` as a `T`, or where in the file the first problem is.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let value: Result<T, _> = serde_path_to_error::deserialize(&mut reader);
    match value {
        Ok(value) => {
            reader
                .end()
                .map_err(|e| Problem::new("the file", e.to_string()))?;
            Ok(value)
        }
        Err(e) => {
            let path = e.path().to_string();
            let at = if path == "." {
                "the file".to_string()
            } else {
                path
            };
            Err(Problem::new(at, e.into_inner().to_string()))
        }
    }
}

pub fn plan(bytes: &[u8]) -> Result<Plan, Problem> {
    let board: Board = parse(bytes)?;
    let mut lists: Vec<&List> = board.lists.iter().filter(|l| !l.closed).collect();
    lists.sort_by(|a, b| a.pos.total_cmp(&b.pos));
    let column_of: HashMap<&str, usize> = lists
        .iter()
        .enumerate()
        .map(|(i, l)| (l.id.as_str(), i))
        .collect();
    let members: HashMap<&str, &Member> =
        board.members.iter().map(|m| (m.id.as_str(), m)).collect();
    let mut checklists: HashMap<&str, Vec<&Checklist>> = HashMap::new();
    for checklist in &board.checklists {
        checklists
            .entry(checklist.id_card.as_str())
            .or_default()
            .push(checklist);
    }
    // Trello lists actions newest first.
    let mut comments: HashMap<&str, Vec<&Action>> = HashMap::new();
    for action in board.actions.iter().rev() {
        if action.kind != "commentCard" {
            continue;
        }
        if let Some(card) = action.data.pointer("/card/id").and_then(Value::as_str) {
            comments.entry(card).or_default().push(action);
        }
    }
    let mut cards: Vec<(usize, &Card)> = board.cards.iter().enumerate().collect();
    cards.sort_by(|a, b| a.1.pos.total_cmp(&b.1.pos));
    let mut plan = Plan {
        board_name: shorten(&board.name, 100),
        columns: lists
            .iter()
            .map(|l| PlannedColumn {
                name: shorten(&l.name, 60),
                wip_limit: None,
                color: None,
                archive_after_days: None,
            })
            .collect(),
        cards: Vec::with_capacity(cards.len()),
    };
    for (i, card) in cards {
        let at = format!("cards[{i}]");
        let (column, in_closed_list) = match column_of.get(card.id_list.as_str()) {
            Some(&column) => (column, false),
            None if board.lists.iter().any(|l| l.id == card.id_list) => (0, true),
            None => {
                return Err(Problem::new(
                    format!("{at}.idList"),
                    "names no list of the board",
                ))
            }
        };
        let mut planned = PlannedCard::titled(column, shorten(&card.name, TITLE_MAX));
        if planned.title.is_empty() {
            planned.title = "(untitled)".into();
        }
        planned.archived = card.closed || in_closed_list;
        planned.due_date = match card.due.as_deref() {
            None | Some("") => None,
            Some(due) => Some(
                due.get(..10)
                    .and_then(Date::parse)
                    .ok_or_else(|| Problem::new(format!("{at}.due"), "is not a date"))?,
            ),
        };
        let mut labels: Vec<String> = card
            .labels
            .iter()
            .filter_map(|l| {
                let name = l.name.as_deref().unwrap_or("").trim();
                let name = if name.is_empty() {
                    l.color.as_deref().unwrap_or("").trim()
                } else {
                    name
                };
                (!name.is_empty()).then(|| shorten(&strip_controls(name), LABEL_MAX))
            })
            .collect();
        labels.truncate(LABELS_MAX);
        planned.labels = labels;
        planned.assignee = card
            .id_members
            .first()
            .and_then(|id| members.get(id.as_str()))
            .map(|m| {
                if m.username.is_empty() {
                    m.full_name.clone()
                } else {
                    m.username.clone()
                }
            })
            .map(|name| shorten(&strip_controls(&name), 100))
            .filter(|name| !name.is_empty());
        planned.description = description(&card.desc);
        planned.checklists = planned_checklists(
            checklists
                .get(card.id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default(),
        );
        planned.comments = comments
            .get(card.id.as_str())
            .map(|list| list.iter().map(|a| comment(a)).collect())
            .unwrap_or_default();
        planned.check(&at)?;
        plan.cards.push(planned);
    }
    plan.check()?;
    Ok(plan)
}

fn strip_controls(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// The card's description, cut to what a description holds.
fn description(desc: &str) -> String {
    let out = desc.trim().to_string();
    if out.chars().count() <= DESCRIPTION_MAX {
        return out;
    }
    let note = "\n\n(cut on import: the rest is in Trello)";
    let mut cut: String = out
        .chars()
        .take(DESCRIPTION_MAX - note.chars().count())
        .collect();
    cut.push_str(note);
    cut
}

/// A card's Trello checklists as checklists, each in its `pos` order.
fn planned_checklists(lists: &[&Checklist]) -> Vec<PlannedChecklist> {
    let mut lists: Vec<&Checklist> = lists.to_vec();
    lists.sort_by(|a, b| a.pos.total_cmp(&b.pos));
    lists
        .into_iter()
        .map(|list| {
            let mut items: Vec<&CheckItem> = list.check_items.iter().collect();
            items.sort_by(|a, b| a.pos.total_cmp(&b.pos));
            PlannedChecklist::fitted(
                &list.name,
                items
                    .into_iter()
                    .map(|i| (i.name.clone(), i.state == "complete")),
            )
        })
        .collect()
}

/// A Trello comment as a comment here: its author and date first (it is
/// written as the importing user), control characters out, cut to fit.
fn comment(action: &Action) -> String {
    let who = action
        .member_creator
        .as_ref()
        .map(|m| {
            if m.full_name.is_empty() {
                m.username.as_str()
            } else {
                m.full_name.as_str()
            }
        })
        .unwrap_or("someone");
    let text = action
        .data
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("");
    let text: String = text
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect();
    let body = format!(
        "**{}** · {} (in Trello)\n\n{}",
        one_line(who),
        action.date.get(..10).unwrap_or(""),
        text.trim()
    );
    shorten(&body, COMMENT_MAX)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_type_or_a_deep_nesting_is_refused_with_its_path() {
        let wrong = br#"{"name": "B", "lists": [{"id": "l", "name": "L"}], "cards": [{"id": "c", "name": 7, "idList": "l"}]}"#;
        let problem = plan(wrong).unwrap_err();
        assert_eq!(problem.at, "cards[0].name", "{problem}");
        // Deep nesting where a value is kept: refused at serde_json's limit.
        let deep = format!(
            "{{\"name\": \"B\", \"actions\": [{{\"type\": \"x\", \"data\": {}{}}}]}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let problem = plan(deep.as_bytes()).unwrap_err();
        assert!(problem.message.contains("recursion limit"), "{problem}");
        assert!(problem.at.starts_with("actions[0].data"), "{problem}");
        // Where it is skipped: skipped without recursion (no stack overflow).
        let deep = format!(
            "{{\"name\": \"B\", \"x\": {}{}}}",
            "[".repeat(1_000_000),
            "]".repeat(1_000_000)
        );
        let problem = plan(deep.as_bytes()).unwrap_err();
        assert_eq!(problem.at, "columns", "{problem}");
        let problem = plan(b"{\"name\": \"B\"} trailing").unwrap_err();
        assert_eq!(problem.at, "the file", "{problem}");
        let problem = plan(br#"{"name": "B", "lists": [{"id": "l", "name": "L"}], "cards": [{"id": "c", "name": "x", "idList": "gone"}]}"#).unwrap_err();
        assert_eq!(problem.at, "cards[0].idList");
    }

    #[test]
    fn checklists_become_checklists_and_descriptions_are_cut_to_fit() {
        let long = "y".repeat(20_010);
        let text = description(&long);
        assert_eq!(text.chars().count(), DESCRIPTION_MAX);
        assert!(text.ends_with("(cut on import: the rest is in Trello)"));
        let item = |name: &str, state: &str, pos| CheckItem {
            name: name.into(),
            state: state.into(),
            pos,
        };
        let list = Checklist {
            id_card: "c".into(),
            name: "  ".into(),
            pos: 1.0,
            check_items: vec![
                item("second", "incomplete", 2.0),
                item("do\nit", "complete", 1.0),
                item("", "complete", 3.0),
                item(&"z".repeat(600), "incomplete", 4.0),
            ],
        };
        let planned = planned_checklists(&[&list]);
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].title, "Checklist");
        assert_eq!(planned[0].items[0], ("do it".to_string(), true));
        assert_eq!(planned[0].items[1], ("second".to_string(), false));
        assert_eq!(planned[0].items.len(), 3, "the empty one left out");
        assert_eq!(planned[0].items[2].0.chars().count(), 500);
    }
}
