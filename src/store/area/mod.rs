//! The storage interface, one part per area of the data (meters, reads, billing, gateways,
//! cradles, review, quarantine, intervals): a new table touches one part. Each part has its queries
//! (`…Queries`, in read and write transactions) and its writes (`…Writes`).
//!
//! These traits are pure storage: an engine stores and finds what it is given and decides no
//! business rule. The rules every engine must keep the same way (the audit hash chain, the note
//! that a billed read changed, the recorder watermark that never goes down, the interval
//! de-duplication window, open-batch bookkeeping) live once above them, in
//! [`super::rules::Rules`], and take their timestamps from the caller.

mod billing;
mod cradles;
mod gateways;
mod intervals;
mod meters;
mod quarantine;
mod reads;
mod review;
mod wmbus;

pub use billing::{BillingQueries, BillingWrites};
pub use cradles::{CradleQueries, CradleWrites};
pub use gateways::{GatewayQueries, GatewayWrites};
pub use intervals::{DayWindow, IntervalQueries, IntervalWrites};
pub use meters::{MeterQueries, MeterWrites};
pub use quarantine::{QuarantineQueries, QuarantineWrites};
pub use reads::{HistoryQuery, ReadQueries, ReadWrites};
pub use review::{ReviewQueries, ReviewWrites};
pub use wmbus::{HeldTelegram, MAX_HELD, WmbusQueries, WmbusWrites};
