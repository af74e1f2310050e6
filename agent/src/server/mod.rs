//! The agent server: the page at `/` and the WebSocket at `/ws`, from one origin, and the
//! Prometheus routes (`/probe`, `/metrics`, `/-/reload`), and the HTTP API of stored results
//! (`/api/results`, [`api`]) and of the agent's own watches (`/api/watches`, [`watch_api`]).
//!
//! [`router`] builds the routes (tests serve it on port 0); [`serve`] runs it until a shutdown
//! signal, then tells every session's running requests and waits briefly for them to finish.

pub mod admit;
pub mod api;
pub mod assets;
pub mod origin;
pub mod prometheus;
pub mod request_ids;
pub mod session;
pub mod tls;
pub mod watch_api;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_layer::Layer;
use tracing::{debug, info, warn};
use whyrefused_shared::{MAX_MESSAGE_BYTES, WS_PATH};

pub use crate::app::{AppState, Limits};
use crate::peer::SessionRefusal;
use tls::TlsListener;
use tokio_rustls::TlsAcceptor;

/// The largest WebSocket frame the transport takes. Messages above [`MAX_MESSAGE_BYTES`] but
/// under this get an error message and the session goes on; above it the socket is closed.
const TRANSPORT_LIMIT: usize = 16 * MAX_MESSAGE_BYTES;

/// How long sessions get to finish after a shutdown signal before the process exits anyway.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);

/// The address of a connection's peer, plain or TLS, as handlers extract it
/// (`ConnectInfo<Peer>`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Plain TCP connections, with `TCP_NODELAY`: events are small frames sent in bursts, and
/// without it Nagle's algorithm holds each burst's tail until the client's delayed ACK, about
/// 40 ms later.
pub struct PlainListener(pub TcpListener);

impl axum::serve::Listener for PlainListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => {
                    if let Err(error) = stream.set_nodelay(true) {
                        warn!(%error, "could not set TCP_NODELAY");
                    }
                    return (stream, peer);
                }
                Err(error) => {
                    // Out of descriptors and the like: wait a moment rather than spin.
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// The routes: the page's files and the WebSocket.
pub fn router(state: AppState) -> Router {
    assets::routes()
        .route(WS_PATH, get(upgrade))
        .merge(prometheus::routes())
        .merge(api::routes())
        .with_state(state)
}

async fn upgrade(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    State(state): State<AppState>,
) -> Response {
    if let Some(wait) = state.auth_blocked_for(peer.ip()) {
        warn!(%peer, "refused a WebSocket upgrade: too many failed authentications");
        let message = format!(
            "too many failed authentications from {}: try again in {} s",
            peer.ip(),
            wait.as_secs().max(1)
        );
        return (StatusCode::TOO_MANY_REQUESTS, message).into_response();
    }
    if let Err(refusal) = origin::check(&headers, state.tokens.is_some()) {
        warn!(%peer, ?refusal, "refused a WebSocket upgrade");
        return (StatusCode::FORBIDDEN, refusal.to_string()).into_response();
    }
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the agent is shutting down").into_response();
    }
    let ticket = match state.open_sessions.try_open(peer.ip(), state.limits.session_caps()) {
        Ok(ticket) => ticket,
        Err(refusal) => {
            warn!(%peer, %refusal, "refused a WebSocket upgrade");
            let status = match refusal {
                SessionRefusal::AgentFull(_) => StatusCode::SERVICE_UNAVAILABLE,
                SessionRefusal::PeerFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            };
            return (status, refusal.to_string()).into_response();
        }
    };
    let sessions = state.sessions.clone();
    ws.max_message_size(TRANSPORT_LIMIT).max_frame_size(TRANSPORT_LIMIT).on_upgrade(move |socket| {
        sessions.track_future(async move {
            session::run(socket, state, peer).await;
            drop(ticket);
        })
    })
}

/// Why the agent will not listen where it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to listen on {0}: it is not a loopback address, and an agent that makes \
         connections on request must not be open to the network without authentication. \
         Give it a --token-file (and TLS: --tls-self-signed or --tls-cert/--tls-key), or listen \
         on 127.0.0.1 or [::1] (the default is 127.0.0.1:7070)"
    )]
    NotLoopback(SocketAddr),
    #[error(
        "refusing to listen on {0} without TLS: its tokens would cross the network in clear. \
         Add --tls-self-signed (clients pin the printed fingerprint) or --tls-cert and --tls-key"
    )]
    PlainOnNetwork(SocketAddr),
    #[error("cannot listen on {address}: {source}")]
    Bind { address: SocketAddr, source: std::io::Error },
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
}

/// What protects an agent's listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    /// Clients must present a token.
    pub authenticated: bool,
    /// Connections are TLS.
    pub encrypted: bool,
}

/// Binds `address`. Beyond loopback, clients must authenticate, over TLS.
pub async fn bind(address: SocketAddr, guard: Guard) -> Result<TcpListener, ServeError> {
    if !address.ip().is_loopback() {
        if !guard.authenticated {
            return Err(ServeError::NotLoopback(address));
        }
        if !guard.encrypted {
            return Err(ServeError::PlainOnNetwork(address));
        }
    }
    TcpListener::bind(address).await.map_err(|source| ServeError::Bind { address, source })
}

/// Serves until `signal` completes, then shuts down gracefully: running requests are told, their
/// sockets closed, and the function returns once sessions end (or after a short deadline).
/// With `tls`, every connection is a TLS one (`https://` and `wss://`).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: AppState,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let shutdown = state.shutdown.clone();
    let sessions = state.sessions.clone();
    let header_timeout = state.limits.header_timeout;
    let app = router(state);
    let connections = TaskTracker::new();
    let server = match tls {
        Some(acceptor) => {
            let listener = TlsListener::new(listener, acceptor).map_err(ServeError::Serve)?;
            let accepting =
                accept(listener, app, header_timeout, shutdown.clone(), connections.clone());
            tokio::spawn(accepting)
        }
        None => {
            let listener = PlainListener(listener);
            let accepting =
                accept(listener, app, header_timeout, shutdown.clone(), connections.clone());
            tokio::spawn(accepting)
        }
    };
    tokio::select! {
        () = signal => info!("shutting down: telling running requests"),
        () = shutdown.cancelled() => {}
    }
    shutdown.cancel();
    sessions.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, sessions.wait()).await.is_err() {
        warn!("sessions did not finish in time; exiting anyway");
    }
    let _ = server.await;
    connections.close();
    let _ = tokio::time::timeout(SHUTDOWN_DEADLINE, connections.wait()).await;
    Ok(())
}

/// Accepts connections until `stop`, serving each on its own task with HTTP/1.1 (WebSocket
/// upgrades included) and a deadline on each request's headers, so a client that sends them a
/// byte at a time (slowloris), or nothing at all, is dropped instead of holding a socket forever.
/// (`axum::serve` gives hyper no timer, so hyper's own header timeout would never fire.)
async fn accept<L>(
    mut listener: L,
    app: Router,
    header_timeout: Duration,
    stop: CancellationToken,
    connections: TaskTracker,
) where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        // Handlers find the peer as axum's `ConnectInfo<Peer>`.
        let service =
            TowerToHyperService::new(Extension(ConnectInfo(Peer(peer))).layer(app.clone()));
        let connection = http.serve_connection(TokioIo::new(io), service).with_upgrades();
        let stop = stop.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = served {
                debug!(%peer, %error, "HTTP connection ended");
            }
        });
    }
}
