//! A WebSocket client for an agent running inside a lab namespace, started in the same
//! namespace (the agent listens on that namespace's loopback, which only it can reach):
//! `lab-client WS_URL check TARGET` or `lab-client WS_URL scan HOST PORTS`.
//!
//! Prints one JSON document: the request's report (`CheckReport` or `ScanReport`), or
//! `{"error": {"code": …, "message": …}}` when the agent refused the request.

use whyrefused_shared::{AgentMessage, CheckRequest, RequestId, ScanRequest, ScanStep, Step};
use whyrefused_tests::Client;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: lab-client WS_URL check TARGET | lab-client WS_URL scan HOST PORTS";
    let (url, kind) = (args.first().expect(usage), args.get(1).expect(usage));
    let mut client = Client::connect_url(url).await;
    let id = 1;
    match kind.as_str() {
        "check" => client.start_check(id, CheckRequest::new(args.get(2).expect(usage))).await,
        "scan" => {
            let request = ScanRequest::new(args.get(2).expect(usage), args.get(3).expect(usage));
            client.start_scan(id, request).await
        }
        other => panic!("unknown request {other:?}: {usage}"),
    }
    let mut check = whyrefused_shared::CheckReport::default();
    let mut scan = whyrefused_shared::ScanReport::default();
    let document = loop {
        match client.recv().await {
            AgentMessage::Event { id: RequestId(got), event, .. } if got == id => {
                check.apply(&event);
                if matches!(event.step, Step::Done { .. }) {
                    break serde_json::to_value(&check);
                }
            }
            AgentMessage::Scan { id: RequestId(got), event, .. } if got == id => {
                scan.apply(&event);
                if matches!(event.step, ScanStep::Done { .. }) {
                    break serde_json::to_value(&scan);
                }
            }
            AgentMessage::Error { code, message, .. } => {
                break Ok(serde_json::json!({ "error": { "code": code, "message": message } }));
            }
            _ => {}
        }
    };
    println!("{}", document.expect("reports encode"));
}
