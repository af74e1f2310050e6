//! One SOCKS5 exchange (RFC 1928, with RFC 1929's user name and password): the greeting, the
//! authentication when the proxy asks for it, and `CONNECT` to the target, whose one-byte reply
//! says whether the proxy reached it and, if not, why (refused, unreachable, not allowed).
//! Nothing is decided here; the credentials are sent, never kept or shown.

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Where the proxy is asked to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An address (a `socks5://` proxy: the client resolves the name itself).
    Address(SocketAddr),
    /// A name the proxy resolves (`socks5h://`), at most 255 bytes.
    Name(String, u16),
}

/// How the exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocksOutcome {
    /// The proxy's reply to `CONNECT`: 0 is success, anything else its reason (see [`reply_words`]).
    Reply(u8),
    /// The proxy wants a user name and password and none were given, or it took none of the
    /// methods offered.
    NoAcceptableMethod,
    /// The proxy refused the user name and password.
    AuthFailed,
    /// The exchange broke off: what went wrong.
    Broken(String),
}

/// The SOCKS5 reply codes, in words (RFC 1928, section 6).
pub fn reply_words(code: u8) -> &'static str {
    match code {
        0 => "succeeded",
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "an unassigned reply code",
    }
}

/// The greeting, authentication and `CONNECT` on an open stream to the proxy.
pub async fn connect<S>(
    stream: &mut S,
    destination: &Destination,
    credentials: Option<(&str, &str)>,
) -> SocksOutcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match exchange(stream, destination, credentials).await {
        Ok(outcome) => outcome,
        Err(error) => SocksOutcome::Broken(error.to_string()),
    }
}

async fn exchange<S>(
    stream: &mut S,
    destination: &Destination,
    credentials: Option<(&str, &str)>,
) -> std::io::Result<SocksOutcome>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // No authentication, or (with credentials) user name and password.
    let greeting: &[u8] = match credentials {
        Some(_) => &[5, 2, 0, 2],
        None => &[5, 1, 0],
    };
    stream.write_all(greeting).await?;
    let mut chosen = [0u8; 2];
    stream.read_exact(&mut chosen).await?;
    if chosen[0] != 5 {
        return Ok(SocksOutcome::Broken(format!(
            "the proxy's answer is not SOCKS5 (version byte {})",
            chosen[0]
        )));
    }
    match (chosen[1], credentials) {
        (0, _) => {}
        (2, Some((user, password))) => {
            if !authenticate(stream, user, password).await? {
                return Ok(SocksOutcome::AuthFailed);
            }
        }
        _ => return Ok(SocksOutcome::NoAcceptableMethod),
    }
    stream.write_all(&connect_request(destination)).await?;
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).await?;
    Ok(SocksOutcome::Reply(reply[1]))
}

/// RFC 1929: version 1, the user name and the password, each at most 255 bytes.
async fn authenticate<S>(stream: &mut S, user: &str, password: &str) -> std::io::Result<bool>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (user, password) = (clipped(user.as_bytes()), clipped(password.as_bytes()));
    let mut message = vec![1, user.len() as u8];
    message.extend_from_slice(user);
    message.push(password.len() as u8);
    message.extend_from_slice(password);
    stream.write_all(&message).await?;
    let mut status = [0u8; 2];
    stream.read_exact(&mut status).await?;
    Ok(status[1] == 0)
}

fn clipped(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len().min(255)]
}

/// `CONNECT` to an IPv4 or IPv6 address or a name.
fn connect_request(destination: &Destination) -> Vec<u8> {
    let mut request = vec![5, 1, 0];
    let port = match destination {
        Destination::Address(address) => {
            match address.ip() {
                IpAddr::V4(ip) => {
                    request.push(1);
                    request.extend_from_slice(&ip.octets());
                }
                IpAddr::V6(ip) => {
                    request.push(4);
                    request.extend_from_slice(&ip.octets());
                }
            }
            address.port()
        }
        Destination::Name(name, port) => {
            let name = clipped(name.as_bytes());
            request.push(3);
            request.push(name.len() as u8);
            request.extend_from_slice(name);
            *port
        }
    };
    request.extend_from_slice(&port.to_be_bytes());
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_requests_carry_the_address_or_the_name_and_the_port() {
        let v4 = connect_request(&Destination::Address("10.0.0.5:5432".parse().unwrap()));
        assert_eq!(v4, [5, 1, 0, 1, 10, 0, 0, 5, 0x15, 0x38]);
        let v6 = connect_request(&Destination::Address("[::1]:443".parse().unwrap()));
        assert_eq!(&v6[..4], [5, 1, 0, 4]);
        assert_eq!(v6.len(), 4 + 16 + 2);
        let name = connect_request(&Destination::Name("db".into(), 80));
        assert_eq!(name, [5, 1, 0, 3, 2, b'd', b'b', 0, 80]);
    }

    #[tokio::test]
    async fn a_refused_user_and_a_refused_connect_are_told_apart() {
        // The proxy picks user name and password, then refuses them.
        let (mut client, mut proxy) = tokio::io::duplex(256);
        let server = tokio::spawn(async move {
            let mut greeting = [0u8; 4];
            proxy.read_exact(&mut greeting).await.unwrap();
            assert_eq!(greeting, [5, 2, 0, 2], "offers none and user/password");
            proxy.write_all(&[5, 2]).await.unwrap();
            let mut auth = [0u8; 1 + 1 + 5 + 1 + 6];
            proxy.read_exact(&mut auth).await.unwrap();
            assert_eq!(&auth[2..7], b"alice");
            proxy.write_all(&[1, 1]).await.unwrap();
        });
        let to = Destination::Name("db".into(), 5432);
        let outcome = connect(&mut client, &to, Some(("alice", "secret"))).await;
        assert_eq!(outcome, SocksOutcome::AuthFailed);
        server.await.unwrap();

        // No credentials; the proxy reaches nothing there: "connection refused".
        let (mut client, mut proxy) = tokio::io::duplex(256);
        let server = tokio::spawn(async move {
            let mut greeting = [0u8; 3];
            proxy.read_exact(&mut greeting).await.unwrap();
            proxy.write_all(&[5, 0]).await.unwrap();
            let mut request = [0u8; 10];
            proxy.read_exact(&mut request).await.unwrap();
            proxy.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await.unwrap();
        });
        let to = Destination::Address("10.0.0.5:5432".parse().unwrap());
        assert_eq!(connect(&mut client, &to, None).await, SocksOutcome::Reply(5));
        assert_eq!(reply_words(5), "connection refused");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn an_http_server_is_not_taken_for_a_socks_proxy() {
        let (mut client, mut proxy) = tokio::io::duplex(256);
        tokio::spawn(async move {
            let mut greeting = [0u8; 3];
            proxy.read_exact(&mut greeting).await.unwrap();
            proxy.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await.unwrap();
        });
        let to = Destination::Name("db".into(), 80);
        match connect(&mut client, &to, None).await {
            SocksOutcome::Broken(why) => assert!(why.contains("not SOCKS5"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
