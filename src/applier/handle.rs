//! The typed front of the applier: what the server, the api and the hub
//! call instead of sending it messages.

use actix::prelude::*;

use super::{
    Applier, ApplierStatus, Attach, CatchupSources, GetApplierStatus, Published, Subscribe,
};
use crate::raft::{Applied, Committed};

/// The applier could not be asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplierError {
    /// Its actor has stopped (the node is shutting down).
    #[error("the applier has stopped")]
    Stopped,
    /// Its mailbox did not take the message in time.
    #[error("the applier did not answer in time")]
    Unresponsive,
}

impl From<MailboxError> for ApplierError {
    fn from(e: MailboxError) -> Self {
        match e {
            MailboxError::Closed => ApplierError::Stopped,
            MailboxError::Timeout => ApplierError::Unresponsive,
        }
    }
}

/// How the rest of the node reaches the applier.
#[derive(Clone)]
pub struct ApplierHandle {
    addr: Addr<Applier>,
}

impl ApplierHandle {
    /// Starts the applier on the current arbiter.
    pub fn start(applier: Applier) -> ApplierHandle {
        ApplierHandle {
            addr: applier.start(),
        }
    }

    /// Where the Raft node reports how far the log is committed.
    pub fn committed_recipient(&self) -> Recipient<Committed> {
        self.addr.clone().recipient()
    }

    /// Connects the applier to the Raft node (where it reports what it
    /// applied) and to the peers it may catch up from; it starts applying.
    pub fn attach(&self, raft: Recipient<Applied>, sources: CatchupSources) {
        self.addr.do_send(Attach { raft, sources });
    }

    /// How far the applier has got, and whether it is failing.
    pub async fn status(&self) -> Result<ApplierStatus, ApplierError> {
        Ok(self.addr.send(GetApplierStatus).await?)
    }

    /// Delivers every batch of events MySQL commits from now on to
    /// `subscriber`; returns once the applier has registered it, so no
    /// batch committed after this call is missed.
    pub async fn subscribe(&self, subscriber: Recipient<Published>) -> Result<(), ApplierError> {
        Ok(self.addr.send(Subscribe(subscriber)).await?)
    }
}
