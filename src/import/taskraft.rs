//! A board this cluster exported (`GET /api/boards/{id}/export`, format
//! `taskraft-board` version 1): its name, its columns in their order with
//! their WIP limits, colours and auto-archive, and every card in its column
//! in its order, archived ones archived, with its comments (written as
//! the importing user) and its checklists (ticked items ticked). Ids,
//! versions and times are the new board's own.

use serde::Deserialize;

use super::{Plan, PlannedCard, PlannedColumn, Problem};
use crate::task::{ColumnId, Priority};
use crate::time::Date;

#[derive(Deserialize)]
struct File {
    format: String,
    version: u32,
    board: Board,
    columns: Vec<Column>,
    cards: Vec<Card>,
}

#[derive(Deserialize)]
struct Board {
    name: String,
}

#[derive(Deserialize)]
struct Column {
    id: ColumnId,
    name: String,
    position: f64,
    #[serde(default)]
    wip_limit: Option<u32>,
    #[serde(default)]
    color: Option<String>,
    #[serde(default)]
    archive_after_days: Option<u32>,
}

#[derive(Deserialize)]
struct Card {
    title: String,
    #[serde(default)]
    description: String,
    column_id: ColumnId,
    position: f64,
    priority: Priority,
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    due_date: Option<Date>,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    comments: Vec<Comment>,
    #[serde(default)]
    checklists: Vec<ChecklistFile>,
}

#[derive(Deserialize)]
struct ChecklistFile {
    title: String,
    #[serde(default)]
    items: Vec<ItemFile>,
}

#[derive(Deserialize)]
struct ItemFile {
    text: String,
    #[serde(default)]
    done: bool,
}

#[derive(Deserialize)]
struct Comment {
    body: String,
}

pub fn plan(bytes: &[u8]) -> Result<Plan, Problem> {
    let file: File = super::trello::parse(bytes)?;
    if file.format != "taskraft-board" || file.version != 1 {
        return Err(Problem::new(
            "format",
            "is not a taskraft-board version 1 export",
        ));
    }
    let mut columns: Vec<(usize, &Column)> = file.columns.iter().enumerate().collect();
    columns.sort_by(|a, b| a.1.position.total_cmp(&b.1.position));
    let mut cards: Vec<(usize, &Card)> = file.cards.iter().enumerate().collect();
    cards.sort_by(|a, b| {
        (a.1.archived, a.1.position)
            .partial_cmp(&(b.1.archived, b.1.position))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut plan = Plan {
        board_name: file.board.name.clone(),
        columns: columns
            .iter()
            .map(|(_, c)| PlannedColumn {
                name: c.name.clone(),
                wip_limit: c.wip_limit,
                color: c.color.clone(),
                archive_after_days: c.archive_after_days,
            })
            .collect(),
        cards: Vec::with_capacity(cards.len()),
    };
    for (i, card) in cards {
        let at = format!("cards[{i}]");
        let column = columns
            .iter()
            .position(|(_, c)| c.id == card.column_id)
            .ok_or_else(|| {
                Problem::new(format!("{at}.column_id"), "names no column of the file")
            })?;
        let mut planned = PlannedCard {
            column,
            title: card.title.clone(),
            description: card.description.clone(),
            priority: card.priority,
            assignee: card.assignee.clone(),
            labels: card.labels.clone(),
            due_date: card.due_date,
            archived: card.archived,
            comments: card.comments.iter().map(|c| c.body.clone()).collect(),
            checklists: card
                .checklists
                .iter()
                .map(|l| {
                    super::PlannedChecklist::fitted(
                        &l.title,
                        l.items.iter().map(|i| (i.text.clone(), i.done)),
                    )
                })
                .collect(),
        };
        planned.check(&at)?;
        plan.cards.push(planned);
    }
    plan.check()?;
    Ok(plan)
}
