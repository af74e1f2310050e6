//! [`AttemptTable`]: one row per address: family, how the connect ended (with the ICMP error that
//! ended it, if any), and how long it took.

use whyrefused_shared::{Attempt, IcmpError};
use yew::prelude::*;

use crate::format;
use crate::state::{AddressRow, RowProgress};

#[derive(Properties, PartialEq)]
pub struct AttemptTableProps {
    /// The rows, in the resolver's order.
    pub rows: Vec<AddressRow>,
}

/// A table; on narrow screens each row becomes two lines (the address, then family, state, time).
#[function_component(AttemptTable)]
pub fn attempt_table(props: &AttemptTableProps) -> Html {
    html! {
        <table class="attempts">
            <caption>{ "TCP connects" }</caption>
            <thead>
                <tr>
                    <th scope="col" class="col-address">{ "Address" }</th>
                    <th scope="col" class="col-family">{ "Family" }</th>
                    <th scope="col" class="col-state">{ "State" }</th>
                    <th scope="col" class="col-time num">{ "Time" }</th>
                </tr>
            </thead>
            <tbody>
                { for props.rows.iter().map(row) }
            </tbody>
        </table>
    }
}

fn row(row: &AddressRow) -> Html {
    let address = row.address.to_string();
    let (state, cell, time) = match &row.progress {
        RowProgress::Finished(attempt) => {
            (attempt.state.as_str(), finished_state(attempt), format::millis(attempt.elapsed_us))
        }
        RowProgress::Connecting => ("pending", pending_state("connecting…", true), "—".to_owned()),
        RowProgress::Waiting => ("pending", pending_state("waiting…", true), "—".to_owned()),
        RowProgress::NotFinished => ("pending", pending_state("no answer", false), "—".to_owned()),
    };
    html! {
        <tr class="attempt-row" key={address.clone()} data-address={address.clone()} data-state={state}>
            <td class="address mono">{ address }</td>
            <td class="family">{ row.family.label() }</td>
            <td class="state-col">{ cell }</td>
            <td class="time num mono">{ time }</td>
        </tr>
    }
}

fn finished_state(attempt: &Attempt) -> Html {
    let state = attempt.state;
    html! {
        <span class="state-cell">
            <span class={classes!("state", format!("state--{}", state.as_str()), format::severity_class(state.severity()))}>
                { format::state_label(state) }
            </span>
            if let Some(errno) = &attempt.errno {
                <span class="errno mono" title={format!("errno {}", errno.code)}>{ &errno.name }</span>
            }
            if let Some(icmp) = &attempt.icmp {
                { icmp_detail(icmp) }
            }
        </span>
    }
}

/// The ICMP error under the state: what it means, its type and code, and who sent it.
fn icmp_detail(icmp: &IcmpError) -> Html {
    html! {
        <span class="icmp" data-local={icmp.from_local.then_some("true")}>
            <span class="icmp-tag">{ "ICMP" }</span>
            <span class="icmp-meaning">{ &icmp.meaning }</span>
            <span class="icmp-code mono">{ format!("type {}, code {}", icmp.icmp_type, icmp.code) }</span>
            <span class="icmp-from">
                { "from " }<span class="mono">{ icmp.from.to_string() }</span>
                if icmp.from_local {
                    <span class="icmp-local">{ "this host" }</span>
                }
            </span>
        </span>
    }
}

fn pending_state(label: &'static str, busy: bool) -> Html {
    html! {
        <span class="state state--pending">
            if busy {
                <span class="spinner" aria-hidden="true"></span>
            }
            { label }
        </span>
    }
}

#[cfg(test)]
mod tests {
    use whyrefused_shared::{ConnectState, Errno, Family, Timestamp};

    use super::*;
    use crate::components::render;

    fn rejected(from_local: bool) -> AddressRow {
        let address = "127.0.0.1".parse().unwrap();
        let attempt = Attempt {
            address,
            port: 80,
            family: Family::Ipv4,
            state: ConnectState::Refused,
            errno: Some(Errno { code: 111, name: "ECONNREFUSED".into() }),
            icmp: Some(IcmpError {
                icmp_type: 3,
                code: 3,
                meaning: "port unreachable".into(),
                from: "127.0.0.1".parse().unwrap(),
                from_local,
            }),
            elapsed_us: 90,
            elapsed_ms: 0.09,
            started_at: Timestamp(String::new()),
        };
        AddressRow { address, family: Family::Ipv4, progress: RowProgress::Finished(attempt) }
    }

    #[test]
    fn an_icmp_error_shows_its_meaning_type_code_and_sender() {
        let html = render::<AttemptTable>(AttemptTableProps { rows: vec![rejected(false)] });
        assert!(html.contains(r#"<span class="icmp">"#), "{html}");
        assert!(html.contains("port unreachable") && html.contains("type 3, code 3"), "{html}");
        assert!(html.contains("from <span class=\"mono\">127.0.0.1</span>"), "{html}");
        assert!(!html.contains("this host"), "{html}");
    }

    #[test]
    fn an_icmpv6_reject_shows_the_bare_address_the_real_errno_and_the_remote_sender() {
        let address = "fd13:1::2".parse().unwrap();
        let attempt = Attempt {
            address,
            port: 82,
            family: Family::Ipv6,
            state: ConnectState::HostUnreachable,
            errno: Some(Errno { code: 13, name: "EACCES".into() }),
            icmp: Some(IcmpError {
                icmp_type: 1,
                code: 1,
                meaning: "communication administratively prohibited".into(),
                from: address,
                from_local: false,
            }),
            elapsed_us: 600,
            elapsed_ms: 0.6,
            started_at: Timestamp(String::new()),
        };
        let row =
            AddressRow { address, family: Family::Ipv6, progress: RowProgress::Finished(attempt) };
        let html = render::<AttemptTable>(AttemptTableProps { rows: vec![row] });
        assert!(html.contains(r#"<td class="address mono">fd13:1::2</td>"#), "{html}");
        assert!(html.contains("host unreachable") && html.contains(">EACCES<"), "{html}");
        assert!(html.contains("type 1, code 1"), "{html}");
        assert!(html.contains("from <span class=\"mono\">fd13:1::2</span>"), "{html}");
        assert!(!html.contains("this host") && !html.contains("blocked locally"), "{html}");
    }

    #[test]
    fn an_icmp_error_from_this_host_says_so() {
        let html = render::<AttemptTable>(AttemptTableProps { rows: vec![rejected(true)] });
        assert!(html.contains(r#"data-local="true""#), "{html}");
        assert!(html.contains(r#"<span class="icmp-local">this host</span>"#), "{html}");
    }
}
