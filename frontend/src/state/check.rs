//! What only a check's card asks of its [`Request`]: the rounds it plans, the connection its
//! waterfall is drawn from, and one row per address.

use std::net::IpAddr;

use whyrefused_shared::{AfterConnect, Attempt, CheckReport, Family, Finding};

use super::request::Request;

/// One check the user asked for, and everything known about it so far.
pub type Check = Request<CheckReport>;

impl Check {
    /// With retries: how many rounds the check runs (the first, then each retry); `None` for a
    /// check of one round.
    pub fn rounds_planned(&self) -> Option<u32> {
        self.request.retries.filter(|retries| *retries > 0).map(|retries| retries + 1)
    }

    /// What followed the first connection that opened (the phase waterfall is drawn from it).
    pub fn first_opened(&self) -> Option<&AfterConnect> {
        self.report.findings.iter().find_map(|finding| match finding {
            Finding::AfterConnect(after) => Some(after.as_ref()),
            _ => None,
        })
    }

    /// One row per address, in the resolver's order: finished attempts, connects in flight, and
    /// addresses not tried (yet). Attempts to addresses the resolution did not list come last.
    pub fn address_rows(&self) -> Vec<AddressRow> {
        let report = &self.report;
        let resolved = report.dns.as_ref().map(|dns| dns.addresses.as_slice()).unwrap_or(&[]);
        let mut addresses: Vec<IpAddr> = resolved.to_vec();
        let others = report
            .attempts
            .iter()
            .map(|attempt| attempt.address)
            .chain(report.pending.iter().map(|pending| pending.ip()));
        for address in others {
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        addresses.into_iter().map(|address| self.row_for(address)).collect()
    }

    fn row_for(&self, address: IpAddr) -> AddressRow {
        let report = &self.report;
        let progress = if let Some(attempt) = report.attempts.iter().find(|a| a.address == address)
        {
            RowProgress::Finished(attempt.clone())
        } else if !self.is_running() {
            RowProgress::NotFinished
        } else if report.pending.iter().any(|pending| pending.ip() == address) {
            RowProgress::Connecting
        } else {
            RowProgress::Waiting
        };
        AddressRow { address, family: Family::of(&address), progress }
    }
}

/// One line of a check's address table.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressRow {
    /// The address connected to.
    pub address: IpAddr,
    /// Its family.
    pub family: Family,
    /// How far the connect to it got.
    pub progress: RowProgress,
}

/// How far the connect to one address got.
#[derive(Debug, Clone, PartialEq)]
pub enum RowProgress {
    /// The attempt ended; here is how.
    Finished(Attempt),
    /// The connect started and has not ended yet.
    Connecting,
    /// The check runs but this address was not tried yet.
    Waiting,
    /// The check ended (cancelled, interrupted) before this address got an answer.
    NotFinished,
}
