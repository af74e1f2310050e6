//! The configured nameservers asked directly, beside the system resolver: each server's response
//! code for A and AAAA (NXDOMAIN, NODATA, SERVFAIL, REFUSED, or silence), the CNAME chain its
//! answer followed, and the addresses `/etc/hosts` gives the name, which override DNS.
//!
//! `getaddrinfo` folds all of that into one error code; asking each server in
//! `/etc/resolv.conf` says which server answered what.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use futures::future::join_all;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use whyrefused_shared::{
    DnsDetail, DnsRcode, DnsStatus, NameserverAnswer, Resolution, ResolveMethod,
};

use crate::clock;

/// Where the system resolver's configuration lives.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Where the system resolver's static names live.
pub const HOSTS_FILE: &str = "/etc/hosts";

/// The longest wait for one nameserver's answer (`resolv.conf`'s `timeout` when shorter).
pub const MAX_QUERY_DEADLINE: Duration = Duration::from_secs(2);

/// The largest DNS message read over UDP (EDNS-sized, though no EDNS is sent).
const MAX_UDP_MESSAGE: usize = 4096;

/// Whether `name` may be asked of DNS at all: `localhost` and names under it are answered by
/// the host itself and must never leave it (RFC 6761), and the numeric IPv4 forms the system
/// resolver reads as an address (`2130706433`, `0xa9fea9fe`, `127.1`) are never looked up.
pub fn asks_dns(name: &str) -> bool {
    let lowercase = name.trim_end_matches('.').to_ascii_lowercase();
    lowercase != "localhost" && !lowercase.ends_with(".localhost") && numeric_ipv4(name).is_none()
}

/// The address a numeric IPv4 form names, as `inet_aton` (and so `getaddrinfo`) reads it: one
/// to four parts, each decimal, octal (`0` first) or hex (`0x` first), the last filling the
/// bytes left (`10.1` is 10.0.0.1, `2130706433` is 127.0.0.1).
pub fn numeric_ipv4(text: &str) -> Option<std::net::Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let values: Vec<u32> = parts.iter().map(|part| number(part)).collect::<Option<_>>()?;
    let (last, leading) = values.split_last()?;
    if leading.iter().any(|value| *value > 0xff) {
        return None;
    }
    let last_bits = 8 * (4 - leading.len() as u32);
    if u64::from(*last) >= 1u64 << last_bits {
        return None;
    }
    let high =
        leading.iter().enumerate().fold(0u32, |sum, (i, v)| sum | (v << (24 - 8 * i as u32)));
    Some(std::net::Ipv4Addr::from(high | last))
}

/// One part of a numeric IPv4 form.
fn number(part: &str) -> Option<u32> {
    let (digits, radix) = match part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
        None => (part, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// Asks every nameserver the system resolver is configured with about `name`, for A and AAAA
/// at once, and reads `/etc/hosts` for it. `None` when the name must not be asked of DNS.
pub async fn dns_detail(name: &str) -> Option<DnsDetail> {
    if !asks_dns(name) {
        return None;
    }
    let config = tokio::fs::read(RESOLV_CONF)
        .await
        .ok()
        .and_then(|text| resolv_conf::Config::parse(text).ok())
        .unwrap_or_default();
    let hosts = tokio::fs::read_to_string(HOSTS_FILE).await.unwrap_or_default();
    Some(ask_all(name, &config, &hosts).await)
}

/// Asks the servers in `config` about `name` (qualified the way the system resolver would).
async fn ask_all(name: &str, config: &resolv_conf::Config, hosts: &str) -> DnsDetail {
    let qualified = qualify(name, config);
    let deadline = MAX_QUERY_DEADLINE.min(Duration::from_secs(u64::from(config.timeout.max(1))));
    let servers: Vec<SocketAddr> = config
        .get_nameservers_or_local()
        .iter()
        .map(|server| SocketAddr::new(IpAddr::from(server), 53))
        .collect();
    let questions = servers.iter().flat_map(|server| {
        [RecordType::A, RecordType::AAAA].map(|record| ask(*server, &qualified, record, deadline))
    });
    let answers = join_all(questions).await;
    let hosts_file = hosts_file_addresses(hosts, &[name, &qualified]);
    DnsDetail { name: qualified, answers, hosts_file, system: None }
}

/// A DNS server a request names (`--resolver`): asked directly instead of the system resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolver {
    /// Its address and port.
    pub address: SocketAddr,
    /// Whether it is asked over TLS (DNS over TLS, RFC 7858), its certificate checked against
    /// this host's trusted authorities for its IP address.
    pub tls: bool,
}

impl Resolver {
    /// Parses `IP[:PORT]` (port 53) or `tls://IP[:PORT]` (port 853); an IPv6 address with a
    /// port in brackets.
    pub fn parse(text: &str) -> Result<Resolver, String> {
        let text = text.trim();
        let (tls, rest) = match text.strip_prefix("tls://") {
            Some(rest) => (true, rest.trim_end_matches('/')),
            None => (false, text.strip_prefix("udp://").unwrap_or(text)),
        };
        let default_port = if tls { 853 } else { 53 };
        let address = match (rest.parse::<SocketAddr>(), rest.parse::<IpAddr>()) {
            (Ok(address), _) => address,
            (_, Ok(ip)) => SocketAddr::new(ip, default_port),
            _ => {
                return Err(format!(
                    "resolver '{text}' is not IP[:PORT] or tls://IP[:PORT] (such as 127.0.0.1:5353 \
                     or tls://[2001:db8::53]:853): name the server by its address"
                ));
            }
        };
        if address.port() == 0 {
            return Err(format!("resolver '{text}': port 0 is no server's"));
        }
        Ok(Resolver { address, tls })
    }
}

impl std::fmt::Display for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.tls {
            true => write!(f, "tls://{}", self.address),
            false => write!(f, "{}", self.address),
        }
    }
}

/// Asks each resolver about `name` (qualified as the system resolver would), for A and AAAA
/// at once; the caller has checked every address against its policy.
pub async fn ask_resolvers(name: &str, resolvers: &[Resolver]) -> (String, Vec<NameserverAnswer>) {
    let config = tokio::fs::read(RESOLV_CONF)
        .await
        .ok()
        .and_then(|text| resolv_conf::Config::parse(text).ok())
        .unwrap_or_default();
    let qualified = qualify(name, &config);
    let questions = resolvers.iter().flat_map(|resolver| {
        [RecordType::A, RecordType::AAAA].map(|record| {
            ask_over(resolver.address, &qualified, record, MAX_QUERY_DEADLINE, resolver.tls)
        })
    });
    (qualified.clone(), join_all(questions).await)
}

/// The resolution the resolvers' answers give, in the resolvers' order: the first with
/// addresses gives them (IPv4 first, as its A and AAAA answers came); with none, the most
/// telling failure (every one NXDOMAIN is NXDOMAIN, every one silent a timeout).
pub fn resolution_from(host: &str, answers: &[NameserverAnswer], elapsed_us: u64) -> Resolution {
    let mut servers: Vec<SocketAddr> = Vec::new();
    for answer in answers {
        if !servers.contains(&answer.server) {
            servers.push(answer.server);
        }
    }
    let with_addresses = servers.iter().find_map(|server| {
        let addresses: Vec<IpAddr> = answers
            .iter()
            .filter(|a| a.server == *server)
            .flat_map(|a| a.addresses.iter().copied())
            .collect();
        (!addresses.is_empty()).then_some(addresses)
    });
    let (status, addresses, detail) = match with_addresses {
        Some(addresses) => (DnsStatus::Ok, addresses, None),
        None => {
            let all =
                |rcode: DnsRcode| !answers.is_empty() && answers.iter().all(|a| a.rcode == rcode);
            let status = if all(DnsRcode::NxDomain) {
                DnsStatus::Nxdomain
            } else if all(DnsRcode::NoError) {
                DnsStatus::NoAddress
            } else if all(DnsRcode::Timeout) {
                DnsStatus::Timeout
            } else {
                DnsStatus::Error
            };
            let said: Vec<String> = answers
                .iter()
                .map(|a| format!("{} {}: {:?}", a.server, a.record, a.rcode))
                .collect();
            (status, Vec::new(), Some(format!("the resolvers answered {}", said.join(", "))))
        }
    };
    Resolution {
        host: host.to_string(),
        method: ResolveMethod::Resolver,
        status,
        addresses,
        detail,
        elapsed_us,
    }
}

/// The name a search-list resolver asks first: as written when it has at least `ndots` dots
/// (or no search list applies), else with the first search domain appended.
pub fn qualify(name: &str, config: &resolv_conf::Config) -> String {
    let name = name.trim_end_matches('.');
    let dots = name.matches('.').count();
    let first_domain = config.get_last_search_or_domain().next();
    match first_domain {
        Some(domain) if dots < config.ndots as usize => {
            format!("{name}.{}", domain.trim_end_matches('.'))
        }
        _ => name.to_string(),
    }
}

/// One question to one server, classified.
async fn ask(
    server: SocketAddr,
    name: &str,
    record: RecordType,
    deadline: Duration,
) -> NameserverAnswer {
    ask_over(server, name, record, deadline, false).await
}

/// One question to one server, over UDP (TCP when truncated) or over TLS, classified.
async fn ask_over(
    server: SocketAddr,
    name: &str,
    record: RecordType,
    deadline: Duration,
    tls: bool,
) -> NameserverAnswer {
    let start = Instant::now();
    let exchanged = async {
        match tls {
            true => exchange_over_tls(server, name, record).await,
            false => exchange(server, name, record).await,
        }
    };
    let outcome = match tokio::time::timeout(deadline, exchanged).await {
        Ok(Ok(response)) => Reply::Response(Box::new(response)),
        Ok(Err(error)) => Reply::Failed(describe_failure(&error)),
        Err(_) => Reply::Silent(deadline),
    };
    let mut answer = NameserverAnswer {
        server,
        record: record.to_string(),
        rcode: DnsRcode::Error,
        addresses: Vec::new(),
        cnames: Vec::new(),
        detail: None,
        elapsed_us: clock::micros(start.elapsed()),
        tls,
    };
    match outcome {
        Reply::Response(response) => read_response(&response, name, &mut answer),
        Reply::Failed(why) => answer.detail = Some(why),
        Reply::Silent(deadline) => {
            answer.rcode = DnsRcode::Timeout;
            answer.detail = Some(format!("no answer within {} ms", deadline.as_millis()));
        }
    }
    answer
}

/// How one exchange ended.
enum Reply {
    Response(Box<Message>),
    Failed(String),
    Silent(Duration),
}

/// Fills `answer` from a response: its code, the CNAME chain from `name`, and the addresses at
/// the chain's end.
fn read_response(response: &Message, name: &str, answer: &mut NameserverAnswer) {
    let code = response.metadata.response_code;
    answer.rcode = match code {
        ResponseCode::NoError => DnsRcode::NoError,
        ResponseCode::NXDomain => DnsRcode::NxDomain,
        ResponseCode::ServFail => DnsRcode::ServFail,
        ResponseCode::Refused => DnsRcode::Refused,
        _ => DnsRcode::Error,
    };
    if answer.rcode == DnsRcode::Error {
        answer.detail = Some(format!("response code {code}"));
    }
    let mut current = name.trim_end_matches('.').to_ascii_lowercase();
    for record in &response.answers {
        let owner = record.name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
        match &record.data {
            RData::CNAME(target) if owner == current => {
                current = target.0.to_ascii().trim_end_matches('.').to_ascii_lowercase();
                answer.cnames.push(current.clone());
            }
            RData::A(a) if owner == current => answer.addresses.push(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) if owner == current => answer.addresses.push(IpAddr::V6(aaaa.0)),
            _ => {}
        }
    }
}

/// A query over UDP, repeated over TCP when the answer was truncated.
async fn exchange(
    server: SocketAddr,
    name: &str,
    record: RecordType,
) -> Result<Message, ExchangeError> {
    let query = query_bytes(name, record)?;
    let response = over_udp(server, &query.bytes).await?;
    let response = match response.metadata.truncation {
        true => over_tcp(server, &query.bytes).await?,
        false => response,
    };
    if response.metadata.id != query.id {
        return Err(ExchangeError::Mismatch);
    }
    Ok(response)
}

/// A query over TLS (RFC 7858): the server's certificate must be valid for its IP address.
async fn exchange_over_tls(
    server: SocketAddr,
    name: &str,
    record: RecordType,
) -> Result<Message, ExchangeError> {
    let query = query_bytes(name, record)?;
    let roots = super::tls::trusted_roots().await;
    let config = rustls::ClientConfig::builder_with_provider(super::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ExchangeError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let server_name = rustls::pki_types::ServerName::IpAddress(server.ip().into());
    let tcp = TcpStream::connect(server).await?;
    let mut stream =
        connector.connect(server_name, tcp).await.map_err(|e| ExchangeError::Tls(e.to_string()))?;
    let response = over_stream(&mut stream, &query.bytes).await?;
    if response.metadata.id != query.id {
        return Err(ExchangeError::Mismatch);
    }
    Ok(response)
}

/// An encoded question and its id.
struct Query {
    id: u16,
    bytes: Vec<u8>,
}

fn query_bytes(name: &str, record: RecordType) -> Result<Query, ExchangeError> {
    let mut fqdn = Name::from_str(name).map_err(|e| ExchangeError::Name(e.to_string()))?;
    fqdn.set_fqdn(true);
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(hickory_proto::op::Query::query(fqdn, record));
    let bytes = message.to_vec().map_err(|e| ExchangeError::Name(e.to_string()))?;
    Ok(Query { id: message.metadata.id, bytes })
}

async fn over_udp(server: SocketAddr, query: &[u8]) -> Result<Message, ExchangeError> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("a valid address"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("a valid address"),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buffer = vec![0; MAX_UDP_MESSAGE];
    let length = socket.recv(&mut buffer).await?;
    Message::from_vec(&buffer[..length]).map_err(|e| ExchangeError::Malformed(e.to_string()))
}

async fn over_tcp(server: SocketAddr, query: &[u8]) -> Result<Message, ExchangeError> {
    let mut stream = TcpStream::connect(server).await?;
    over_stream(&mut stream, query).await
}

/// One length-prefixed query and answer over a stream (TCP, or TLS over it).
async fn over_stream<S>(stream: &mut S, query: &[u8]) -> Result<Message, ExchangeError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let length =
        u16::try_from(query.len()).map_err(|_| ExchangeError::Malformed("query".into()))?;
    stream.write_all(&length.to_be_bytes()).await?;
    stream.write_all(query).await?;
    stream.flush().await?;
    let length = stream.read_u16().await?;
    let mut buffer = vec![0; usize::from(length)];
    stream.read_exact(&mut buffer).await?;
    Message::from_vec(&buffer).map_err(|e| ExchangeError::Malformed(e.to_string()))
}

/// Why an exchange gave no response.
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the name cannot be asked: {0}")]
    Name(String),
    #[error("a malformed response: {0}")]
    Malformed(String),
    #[error("a response to another question")]
    Mismatch,
    #[error("the TLS handshake failed: {0}")]
    Tls(String),
}

fn describe_failure(error: &ExchangeError) -> String {
    match error {
        ExchangeError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "port 53 refused: no nameserver runs there".to_string()
        }
        ExchangeError::Io(io) if io.raw_os_error() == Some(nix::libc::ENETUNREACH) => {
            "no route to the nameserver".to_string()
        }
        other => other.to_string(),
    }
}

/// The addresses this host's `/etc/hosts` gives `name` (none when it is not there or the file
/// cannot be read).
pub async fn hosts_file_entries(name: &str) -> Vec<IpAddr> {
    let hosts = tokio::fs::read_to_string(HOSTS_FILE).await.unwrap_or_default();
    hosts_file_addresses(&hosts, &[name])
}

/// The addresses `/etc/hosts` (given as `text`) lists for any of `names`, in file order.
pub fn hosts_file_addresses(text: &str, names: &[&str]) -> Vec<IpAddr> {
    let wanted: Vec<String> =
        names.iter().map(|name| name.trim_end_matches('.').to_ascii_lowercase()).collect();
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let Some(Ok(address)) = fields.next().map(IpAddr::from_str) else { continue };
        let named = fields.any(|alias| wanted.contains(&alias.to_ascii_lowercase()));
        if named && !found.contains(&address) {
            found.push(address);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, CNAME};

    fn config(text: &str) -> resolv_conf::Config {
        resolv_conf::Config::parse(text).unwrap()
    }

    #[test]
    fn localhost_names_never_reach_dns() {
        assert!(!asks_dns("localhost"));
        assert!(!asks_dns("LOCALHOST."));
        assert!(!asks_dns("app.localhost"));
        assert!(asks_dns("db.internal"));
        assert!(!asks_dns("2130706433") && !asks_dns("0xa9fea9fe") && !asks_dns("127.1"));
        assert!(asks_dns("0xdb.internal") && asks_dns("4294967296"));
    }

    #[test]
    fn numeric_ipv4_forms_read_as_inet_aton_reads_them() {
        let read = |text: &str| numeric_ipv4(text).map(|ip| ip.to_string());
        assert_eq!(read("2130706433").as_deref(), Some("127.0.0.1"));
        assert_eq!(read("0xa9fea9fe").as_deref(), Some("169.254.169.254"));
        assert_eq!(read("0XA9FEA9FE").as_deref(), Some("169.254.169.254"));
        assert_eq!(read("0251.0376.0251.0376").as_deref(), Some("169.254.169.254"));
        assert_eq!(read("127.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(read("10.0.258").as_deref(), Some("10.0.1.2"));
        assert_eq!(read("0").as_deref(), Some("0.0.0.0"));
        for not_an_address in ["4294967296", "256.1.1.1", "1.2.3.4.5", "0x", "09", "1..2", "db"] {
            assert_eq!(read(not_an_address), None, "{not_an_address}");
        }
    }

    #[test]
    fn short_names_take_the_first_search_domain_like_the_system_resolver() {
        let search = config("nameserver 10.0.0.53\nsearch corp.example lab.example\n");
        assert_eq!(qualify("db", &search), "db.corp.example");
        assert_eq!(qualify("db.internal.", &search), "db.internal");
        let ndots = config("nameserver 10.0.0.53\nsearch corp.example\noptions ndots:3\n");
        assert_eq!(qualify("a.b", &ndots), "a.b.corp.example");
        assert_eq!(qualify("db", &config("nameserver 10.0.0.53\n")), "db");
    }

    #[test]
    fn hosts_file_entries_are_found_by_any_alias_without_comments() {
        let hosts = "127.0.0.1 localhost\n10.0.0.9 db.internal db # old address\n\
                     # 10.0.0.7 db\n::1 localhost ip6-localhost\nnot-an-ip db\n";
        let found = hosts_file_addresses(hosts, &["DB", "db.corp"]);
        assert_eq!(found, vec!["10.0.0.9".parse::<IpAddr>().unwrap()]);
        assert!(hosts_file_addresses(hosts, &["web"]).is_empty());
    }

    fn response(code: ResponseCode, records: Vec<Record>) -> Message {
        let mut message = Message::response(7, hickory_proto::op::OpCode::Query);
        message.metadata.response_code = code;
        message.add_answers(records);
        message
    }

    fn blank_answer() -> NameserverAnswer {
        NameserverAnswer {
            server: "10.0.0.53:53".parse().unwrap(),
            record: "A".into(),
            rcode: DnsRcode::Error,
            addresses: Vec::new(),
            cnames: Vec::new(),
            detail: None,
            elapsed_us: 0,
            tls: false,
        }
    }

    #[test]
    fn the_cname_chain_is_followed_to_its_addresses() {
        let www = Name::from_str("www.example.com.").unwrap();
        let cdn = Name::from_str("cdn.example.net.").unwrap();
        let records = vec![
            Record::from_rdata(www, 60, RData::CNAME(CNAME(cdn.clone()))),
            Record::from_rdata(cdn, 60, RData::A(A::new(192, 0, 2, 7))),
        ];
        let mut answer = blank_answer();
        read_response(&response(ResponseCode::NoError, records), "www.example.com", &mut answer);
        assert_eq!(answer.rcode, DnsRcode::NoError);
        assert_eq!(answer.cnames, vec!["cdn.example.net"]);
        assert_eq!(answer.addresses, vec!["192.0.2.7".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn response_codes_are_told_apart() {
        for (code, expected) in [
            (ResponseCode::NXDomain, DnsRcode::NxDomain),
            (ResponseCode::ServFail, DnsRcode::ServFail),
            (ResponseCode::Refused, DnsRcode::Refused),
            (ResponseCode::NoError, DnsRcode::NoError),
        ] {
            let mut answer = blank_answer();
            read_response(&response(code, Vec::new()), "x.example", &mut answer);
            assert_eq!(answer.rcode, expected);
            assert!(answer.addresses.is_empty());
        }
    }

    #[tokio::test]
    async fn a_server_with_nothing_on_port_53_is_refused_and_named() {
        // 127.0.0.1:53 has no nameserver here; the ICMP port unreachable comes back at once.
        let detail =
            ask_all("db.internal", &config("nameserver 127.0.0.1\n"), "10.0.0.9 db.internal\n")
                .await;
        assert_eq!(detail.answers.len(), 2);
        for answer in &detail.answers {
            assert_eq!(answer.server, "127.0.0.1:53".parse().unwrap());
            assert_eq!(answer.rcode, DnsRcode::Error, "{answer:?}");
            assert!(answer.detail.as_deref().unwrap().contains("refused"), "{answer:?}");
        }
        assert_eq!(detail.hosts_file, vec!["10.0.0.9".parse::<IpAddr>().unwrap()]);
    }
}
