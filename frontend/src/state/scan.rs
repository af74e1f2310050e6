//! What only a scan's card asks of its [`Request`]: the host and port spec as the agent echoed
//! them, or as they were asked until then.

use whyrefused_shared::ScanReport;

use super::request::Request;

/// One port scan the user asked for, and everything known about it so far.
pub type Scan = Request<ScanReport>;

impl Scan {
    /// The report the agent's echo of the request comes from: the scan's own, or with `from`
    /// the first part that started.
    fn echo(&self) -> Option<&ScanReport> {
        std::iter::once(&self.report)
            .chain(self.vantages.iter().map(|part| &part.report))
            .map(AsRef::as_ref)
            .find(|report| report.started_at.is_some())
    }

    /// The host as the agent echoed it, or as it was asked until then.
    pub fn target(&self) -> &str {
        self.echo().map_or(&self.request.target, |report| &report.target)
    }

    /// The port spec as the agent understood it, or as it was asked (the default when none was).
    pub fn ports(&self) -> &str {
        if let Some(report) = self.echo() {
            &report.ports
        } else {
            self.request.ports.as_deref().unwrap_or(whyrefused_shared::DEFAULT_PORT_SPEC)
        }
    }
}
