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
            <span class={classes!("state", format!("state--{}", state.as_str()))}>
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
