//! The messages of the control socket, both ways, and the requests.
//!
//! A connection: the client sends [`ToDaemon::Hello`] with its [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION);
//! the daemon answers [`ToClient::Welcome`] (who it takes the caller to be, and their role) or
//! [`ToClient::Refused`] and closes. Then requests, one at a time:
//! - [`Request::Command`] (a CLI store command): when it reads a file, the daemon answers
//!   [`ToClient::SendUpload`] and the client sends the file's bytes in [`ToDaemon::Upload`]
//!   chunks and [`ToDaemon::UploadEnd`]; then the daemon streams [`ToClient::Stdout`] and
//!   [`ToClient::Stderr`] as the command prints, a produced file as [`ToClient::File`] chunks
//!   and [`ToClient::FileEnd`] (the client writes it and answers [`ToDaemon::FileWritten`] or
//!   [`ToDaemon::FileFailed`]), and ends with [`ToClient::Done`] and the exit code.
//! - the review screen's requests: one [`ToClient::Reply`].
//! - a request the caller's role does not allow, or with control characters in its text:
//!   [`ToClient::Refused`]; the connection stays usable.
//!
//! A violation of the protocol (a bad frame, a message out of turn, a time limit) gets
//! [`ToClient::Error`] and the connection is closed.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::commands::Command;
use crate::model::ReadId;
use crate::model::interval::DayKey;
use crate::review::{
    Action, ActionOutcome, ApprovalItem, DayAction, DayDetail, DayOutcome, EstimatePreview, QueueFilter, QueueView,
    ReadDetail,
};

/// Bytes of a file chunk or of output, base64 in the JSON frame.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Chunk(pub Vec<u8>);

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chunk({} bytes)", self.0.len())
    }
}

impl Serialize for Chunk {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Chunk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Chunk)
            .map_err(serde::de::Error::custom)
    }
}

/// Bytes of a file per chunk: base64 makes a frame 4/3 of it, well inside
/// [`MAX_FRAME`](super::frame::MAX_FRAME).
pub const CHUNK: usize = 256 * 1024;

/// What a user may do (roles nest: a supervisor is also a clerk, an admin also a supervisor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Clerk,
    Supervisor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Clerk, Role::Supervisor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clerk => "clerk",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// "a clerk", "an admin".
    pub fn with_article(self) -> &'static str {
        match self {
            Role::Clerk => "a clerk",
            Role::Supervisor => "a supervisor",
            Role::Admin => "an admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// A store command of the CLI (`meterd reads list`, …): its output is streamed back.
    Command(Command),
    /// The review queue (`ReviewBackend::queue`).
    ReviewQueue { filter: QueueFilter },
    /// The adjustments awaiting a supervisor's approval (`ReviewBackend::approvals`).
    ReviewApprovals,
    /// One read with everything a clerk looks at.
    ReviewDetail { read_id: ReadId },
    /// What an estimate would set, without changing anything.
    ReviewPreview { read_id: ReadId },
    /// A clerk action (approve and decline of an adjustment: a supervisor's); the clerk is the
    /// caller (never a name the client sends).
    ReviewAct {
        read_id: ReadId,
        seen_rev: Option<u64>,
        action: Action,
    },
    /// Re-read the configuration file (what SIGHUP does).
    Reload,
    /// One interval day with everything a clerk looks at (its chart's data).
    ReviewDay { key: DayKey },
    /// A clerk action on an interval day; the clerk is the caller.
    ReviewDayAct {
        key: DayKey,
        seen_rev: Option<u64>,
        action: DayAction,
    },
}

impl Request {
    /// The request as a command line would name it, for logs and refusals.
    pub fn name(&self) -> String {
        match self {
            Request::Command(c) => c.name(),
            Request::ReviewQueue { .. } => "review queue".into(),
            Request::ReviewApprovals => "review approvals".into(),
            Request::ReviewDetail { .. } => "review show".into(),
            Request::ReviewPreview { .. } => "review estimate --dry-run".into(),
            Request::ReviewAct { action, .. } => format!("review {}", action.audit_action().as_str()),
            Request::Reload => "reload".into(),
            Request::ReviewDay { .. } => "review day".into(),
            Request::ReviewDayAct { action, .. } => format!("review {}-day", action.audit_action().as_str()),
        }
    }

    /// The least role allowed to make the request.
    pub fn role(&self) -> Role {
        match self {
            Request::Command(c) => c.role(),
            Request::ReviewAct { action, .. } if action.needs_supervisor() => Role::Supervisor,
            Request::ReviewDayAct { action, .. } if action.needs_supervisor() => Role::Supervisor,
            Request::ReviewQueue { .. }
            | Request::ReviewApprovals
            | Request::ReviewDetail { .. }
            | Request::ReviewPreview { .. }
            | Request::ReviewAct { .. }
            | Request::ReviewDay { .. }
            | Request::ReviewDayAct { .. } => Role::Clerk,
            Request::Reload => Role::Admin,
        }
    }
}

/// The answer to a review request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Queue(Box<QueueView>),
    Approvals(Vec<ApprovalItem>),
    Detail(Box<ReadDetail>),
    Preview(Box<EstimatePreview>),
    Acted(Box<ActionOutcome>),
    /// The request was done; a line for the user.
    Done {
        message: String,
    },
    /// The review function refused or failed.
    Failed {
        kind: FailureKind,
        message: String,
    },
    Day(Box<DayDetail>),
    DayActed(Box<DayOutcome>),
}

/// Why a review request failed, so the client can rebuild the [`ReviewError`](crate::review::ReviewError).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Someone changed the read since the clerk loaded it.
    Conflict,
    /// The action does not apply to the read as it is.
    Refused,
    NotFound,
    /// The store failed; the daemon's log has more.
    Internal,
}

/// Client → daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToDaemon {
    /// The first message: the protocol version the client speaks (this message's shape never
    /// changes, so any version can be told apart).
    Hello {
        protocol: u32,
        client: String,
    },
    /// One request; `on_behalf_of`: an admin acting for another user.
    Request {
        request: Request,
        on_behalf_of: Option<String>,
    },
    /// A chunk of the file the request reads (after [`ToClient::SendUpload`]).
    Upload {
        data: Chunk,
    },
    UploadEnd,
    /// The file the daemon sent was written (durably) by the client.
    FileWritten,
    /// The client could not write it; `message` says why.
    FileFailed {
        message: String,
    },
}

/// Daemon → client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToClient {
    /// The handshake succeeded: who the daemon takes the caller to be.
    Welcome {
        protocol: u32,
        server: String,
        user: String,
        uid: u32,
        role: Role,
    },
    /// The handshake or one request was refused (role, protocol version, text); `message`
    /// names the user and what would admit them.
    Refused {
        message: String,
    },
    /// Send the file the request reads now.
    SendUpload,
    Stdout {
        data: Chunk,
    },
    Stderr {
        data: Chunk,
    },
    /// A chunk of a file the command produced, for the client to write.
    File {
        data: Chunk,
    },
    FileEnd,
    /// The command finished with this exit code.
    Done {
        exit_code: i32,
    },
    Reply {
        reply: Reply,
    },
    /// The client broke the protocol (or a limit); the connection is closed after it.
    Error {
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_as_base64() {
        let m = ToClient::File {
            data: Chunk(vec![0, 1, 2, 255]),
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, r#"{"type":"file","data":"AAEC/w=="}"#);
        assert_eq!(serde_json::from_str::<ToClient>(&text).unwrap(), m);
    }

    #[test]
    fn a_full_chunk_fits_a_frame() {
        let m = ToDaemon::Upload {
            data: Chunk(vec![0xff; CHUNK]),
        };
        assert!(super::super::frame::encode(&m).is_ok());
    }

    /// Four eyes on interval days too: approving or declining an edit is a supervisor's;
    /// the other day actions a clerk's.
    #[test]
    fn approving_a_day_needs_a_supervisor() {
        use crate::review::DayAction;
        let key = crate::model::interval::DayKey {
            meter_id: "E-1".into(),
            channel: "E1".into(),
            date: jiff::civil::date(2026, 11, 3),
        };
        let act = |action| Request::ReviewDayAct {
            key: key.clone(),
            seen_rev: Some(1),
            action,
        };
        let reason = String::new;
        assert_eq!(act(DayAction::Approve { reason: reason() }).role(), Role::Supervisor);
        assert_eq!(act(DayAction::Decline { reason: reason() }).role(), Role::Supervisor);
        assert_eq!(act(DayAction::Accept { reason: reason() }).role(), Role::Clerk);
        assert_eq!(act(DayAction::Reject { reason: reason() }).role(), Role::Clerk);
    }

    #[test]
    fn roles_nest() {
        assert!(Role::Admin > Role::Supervisor && Role::Supervisor > Role::Clerk);
    }
}
