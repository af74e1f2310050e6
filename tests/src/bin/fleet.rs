//! A fleet simulator: one process that joins AGENTS vantage points to a hub over real WebSocket
//! links, then fans one check out to all of them and reports what the fan-out costs.
//!
//! `fleet HUB_WS_URL TOKEN_FILE CLIENT_SECRET TARGET AGENTS HUB_PID [RUNS]`
//!
//! Each simulated agent takes the next line `name:secret` (or `name:secret:agent`) of TOKEN_FILE,
//! says hello with that secret and registers under that name, as `serve --join` would; it pings
//! every 5 s and answers the hub's checks with a REAL check: `whyrefused::check::run` of the
//! requested target, from this process (TARGET should be a closed loopback port). Then, as a
//! client with CLIENT_SECRET, it runs RUNS checks of TARGET `from: ["all"]` and prints, per run
//! and as medians: the wall time from request to `vantages_done`, the slowest vantage point's own
//! check time (its `done`'s elapsed), and their difference, the fan-out's overhead; then the
//! hub's resident memory (now and peak).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use whyrefused::check::{self, CheckPlan};
use whyrefused::policy::TargetPolicy;
use whyrefused_shared::{
    AgentMessage, CheckRequest, ClientMessage, PROTOCOL_VERSION, RequestId, Step,
};
use whyrefused_tests::Client;

/// How often a simulated agent pings the hub, as a real joined agent does.
const PING_INTERVAL: Duration = Duration::from_secs(5);

/// A simulated agent: joins as `name` with `secret`, tells `joined` once registered, then
/// answers the hub's checks until the link ends.
async fn agent(
    url: String,
    name: String,
    secret: String,
    joined: mpsc::Sender<Result<(), String>>,
) {
    let ready = run_agent(&url, &name, &secret, &joined).await;
    if let Err(error) = ready {
        let _ = joined.send(Err(format!("{name}: {error}"))).await;
    }
}

async fn run_agent(
    url: &str,
    name: &str,
    secret: &str,
    joined: &mpsc::Sender<Result<(), String>>,
) -> Result<(), String> {
    let (socket, _) = connect_async(url).await.map_err(|e| e.to_string())?;
    let (mut sink, mut stream) = socket.split();
    let text = |message: &ClientMessage| Message::text(serde_json::to_string(message).unwrap());
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        client: "fleet".into(),
        token: Some(secret.into()),
    };
    let register = ClientMessage::Register {
        name: name.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        hostname: format!("fleet-{name}"),
        addresses: Vec::new(),
        agent_id: None,
        forwards: false,
    };
    sink.send(text(&hello)).await.map_err(|e| e.to_string())?;
    sink.send(text(&register)).await.map_err(|e| e.to_string())?;
    loop {
        let Some(Ok(Message::Text(frame))) = stream.next().await else {
            return Err("the hub closed the link before registering it".into());
        };
        match serde_json::from_str::<AgentMessage>(&frame) {
            Ok(AgentMessage::Registered { .. }) => break,
            Ok(AgentMessage::Error { message, .. }) => return Err(message),
            _ => {}
        }
    }
    let _ = joined.send(Ok(())).await;

    // One writer owns the sink; the reader and every running check feed it.
    let (outgoing, mut to_send) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(message) = to_send.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
    });
    let mut ping = tokio::time::interval(PING_INTERVAL);
    let policy = Arc::new(TargetPolicy::unrestricted());
    loop {
        tokio::select! {
            _ = ping.tick() => { let _ = outgoing.send(Message::Ping(Vec::new().into())); }
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(frame))) => {
                    if let Ok(ClientMessage::Check { id, request, .. }) = serde_json::from_str(&frame) {
                        tokio::spawn(answer(id, request, policy.clone(), outgoing.clone()));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
        }
    }
    writer.abort();
    Ok(())
}

/// Runs the hub's check `id` for real and sends each of its events back.
async fn answer(
    id: RequestId,
    request: CheckRequest,
    policy: Arc<TargetPolicy>,
    outgoing: mpsc::UnboundedSender<Message>,
) {
    let Ok(plan) = CheckPlan::from_request(&request, policy, None) else { return };
    check::run(&plan, |event| {
        let message = AgentMessage::Event { id, vantage: None, event };
        let _ = outgoing.send(Message::text(serde_json::to_string(&message).unwrap()));
    })
    .await;
}

/// `name:secret` or `name:secret:agent` lines of a token file.
fn agent_tokens(path: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).expect("the token file is readable");
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            Some((fields.next()?.to_string(), fields.next()?.to_string()))
        })
        .collect()
}

/// One check from every vantage point: (wall, the slowest vantage point's own check, how many
/// vantage points completed).
async fn fan_out_once(client: &mut Client, id: u64, target: &str) -> (Duration, Duration, usize) {
    let from = Some(vec!["all".to_string()]);
    let request = CheckRequest::new(target);
    let start = Instant::now();
    client.send(&ClientMessage::Check { id: RequestId(id), request, from, origin: None }).await;
    let (mut slowest_us, mut completed) = (0, 0);
    loop {
        match client.recv_within(Duration::from_secs(60)).await {
            AgentMessage::Event { id: RequestId(got), event, .. } if got == id => {
                if let Step::Done { outcome, elapsed_us } = event.step {
                    slowest_us = slowest_us.max(elapsed_us);
                    completed += usize::from(outcome == whyrefused_shared::Outcome::Completed);
                }
            }
            AgentMessage::VantagesDone { id: RequestId(got), .. } if got == id => break,
            AgentMessage::Error { message, .. } => panic!("the hub refused the check: {message}"),
            _ => {}
        }
    }
    (start.elapsed(), Duration::from_micros(slowest_us), completed)
}

fn memory_kib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: fleet HUB_WS_URL TOKEN_FILE CLIENT_SECRET TARGET AGENTS HUB_PID [RUNS]";
    assert!(args.len() >= 6, "{usage}");
    let (url, token_file, client_secret, target) = (&args[0], &args[1], &args[2], &args[3]);
    let agents: usize = args[4].parse().expect(usage);
    let hub_pid = &args[5];
    let runs: u64 = args.get(6).and_then(|runs| runs.parse().ok()).unwrap_or(5);
    let tokens = agent_tokens(token_file);
    assert!(
        tokens.len() >= agents,
        "the token file has {} tokens for {agents} agents",
        tokens.len()
    );

    let (joined, mut registrations) = mpsc::channel(agents);
    let start = Instant::now();
    for (name, secret) in tokens.into_iter().take(agents) {
        tokio::spawn(agent(url.clone(), name, secret, joined.clone()));
    }
    for _ in 0..agents {
        if let Some(Err(error)) = registrations.recv().await {
            panic!("an agent could not join: {error}");
        }
    }
    println!(
        "fleet: {agents} simulated agents joined in {:.2} s (real links, one process)",
        start.elapsed().as_secs_f64()
    );
    println!(
        "fleet: each answers with a REAL check (whyrefused::check::run) of {target}, run in this process"
    );

    let mut client = Client::connect_url_with_token(url, Some(client_secret)).await;
    let (mut walls, mut slowest, mut overheads) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let (wall, own, completed) = fan_out_once(&mut client, run, target).await;
        assert_eq!(completed, agents + 1, "every vantage point (and the hub itself) completed");
        println!(
            "run {run}: wall {:.1} ms, slowest vantage point's own check {:.1} ms, overhead {:.1} ms",
            ms(wall),
            ms(own),
            ms(wall.saturating_sub(own))
        );
        walls.push(ms(wall));
        slowest.push(ms(own));
        overheads.push(ms(wall.saturating_sub(own)));
    }
    println!(
        "a check fanned out to {} vantage points (hub + {agents} simulated agents), median of {runs}: \
         wall {:.1} ms, slowest vantage point's own check {:.1} ms, overhead {:.1} ms (goal: under 500 ms); \
         hub RSS {:.1} MiB now, {:.1} MiB peak",
        agents + 1,
        median(walls),
        median(slowest),
        median(overheads),
        memory_kib(hub_pid, "VmRSS:") as f64 / 1024.0,
        memory_kib(hub_pid, "VmHWM:") as f64 / 1024.0,
    );
}
