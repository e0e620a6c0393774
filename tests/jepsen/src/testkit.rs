//! Shorthands for writing histories by hand in tests: one line an operation,
//! with its process, window and outcome.

use crate::history::{
    Failure, History, ListedTask, Op, OpId, Outcome, ProcessId, Status, TaskView, Time, Value,
};

/// A history under construction.
#[derive(Default)]
pub struct Script {
    pub history: History,
}

impl Script {
    pub fn new() -> Script {
        Script::default()
    }

    fn record(&mut self, p: u64, op: Op, window: (Time, Time), outcome: Outcome) -> OpId {
        let id = self.history.invoke(ProcessId(p), op, window.0);
        self.history
            .complete(id, outcome, window.1)
            .expect("the id was just invoked");
        id
    }

    pub fn ok(&mut self, p: u64, op: Op, window: (Time, Time), value: Value) -> OpId {
        self.record(p, op, window, Outcome::Ok(value))
    }

    pub fn fail(&mut self, p: u64, op: Op, window: (Time, Time), failure: Failure) -> OpId {
        self.record(p, op, window, Outcome::Fail(failure))
    }

    pub fn info(&mut self, p: u64, op: Op, window: (Time, Time)) -> OpId {
        self.record(p, op, window, Outcome::Info("timeout".into()))
    }

    pub fn pending(&mut self, p: u64, op: Op, invoke: Time) -> OpId {
        self.history.invoke(ProcessId(p), op, invoke)
    }
}

pub fn create(id: &str, title: &str) -> Op {
    Op::Create {
        id: id.into(),
        title: title.into(),
        status: Status::Todo,
        key: None,
    }
}

pub fn create_keyed(id: &str, title: &str, key: &str) -> Op {
    Op::Create {
        id: id.into(),
        title: title.into(),
        status: Status::Todo,
        key: Some(key.into()),
    }
}

pub fn retitle(id: &str, if_match: Option<u64>, title: &str) -> Op {
    Op::Update {
        id: id.into(),
        if_match,
        title: Some(title.into()),
        status: None,
    }
}

pub fn move_to(id: &str, if_match: Option<u64>, status: Status) -> Op {
    Op::Update {
        id: id.into(),
        if_match,
        title: None,
        status: Some(status),
    }
}

pub fn delete(id: &str, if_match: Option<u64>) -> Op {
    Op::Delete {
        id: id.into(),
        if_match,
    }
}

pub fn read(id: &str) -> Op {
    Op::Read { id: id.into() }
}

pub fn view(version: u64, title: &str, status: Status) -> TaskView {
    TaskView {
        version,
        title: title.into(),
        status,
    }
}

/// An ok value: the task at `version` with `title`, in `todo`.
pub fn task(version: u64, title: &str) -> Value {
    Value::Task(view(version, title, Status::Todo))
}

pub fn listed(id: &str, version: u64, title: &str, status: Status) -> ListedTask {
    ListedTask {
        id: id.into(),
        version,
        title: title.into(),
        status,
    }
}

pub fn tasks(list: Vec<ListedTask>) -> Value {
    Value::Tasks { tasks: list }
}

pub fn mismatch(version: u64, title: &str) -> Failure {
    Failure::VersionMismatch {
        current: view(version, title, Status::Todo),
    }
}
