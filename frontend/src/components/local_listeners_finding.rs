//! [`LocalListenersFinding`]: the agent host's listening sockets on the asked port.

use whyrefused_shared::{Listener, LocalListeners};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct LocalListenersFindingProps {
    /// The probe's result.
    pub found: LocalListeners,
}

/// A small table: bind address, pid and process; or a line saying nothing listens.
#[function_component(LocalListenersFinding)]
pub fn local_listeners_finding(props: &LocalListenersFindingProps) -> Html {
    let found = &props.found;
    if found.listeners.is_empty() {
        return html! {
            <p class="finding-line">{ format!("Nothing on this host listens on port {}.", found.port) }</p>
        };
    }
    let hidden = found.owners_hidden.as_ref().map(|why| {
        html! { <p class="finding-line">{ format!("Processes not shown: {why}.") }</p> }
    });
    html! {
        <>
        <table class="mini-table">
            <thead>
                <tr>
                    <th scope="col">{ "Bound to" }</th>
                    <th scope="col" class="num">{ "pid" }</th>
                    <th scope="col">{ "Process" }</th>
                </tr>
            </thead>
            <tbody>
                { for found.listeners.iter().map(row) }
            </tbody>
        </table>
        { for hidden }
        </>
    }
}

fn row(listener: &Listener) -> Html {
    let unknown = || "—".to_owned();
    html! {
        <tr>
            <td class="mono">{ listener.address.to_string() }</td>
            <td class="mono num">{ listener.pid.map_or_else(unknown, |pid| pid.to_string()) }</td>
            <td class="mono">{ listener.process.clone().unwrap_or_else(unknown) }</td>
        </tr>
    }
}
