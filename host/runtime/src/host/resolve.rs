//! Where a plugin's HTTP may land once a host name is resolved.
//!
//! The allow list names hosts, but a name is only as trustworthy as the DNS
//! answer behind it: a listed name, or one an attacker controls, can point
//! at loopback, the cluster network or the cloud metadata service. The HTTP
//! clients therefore resolve names through [`Guarded`], which drops every
//! address of a kind the plugin instance may not reach before a connection
//! is tried. A name left with no address is refused with [`Refused`], which
//! the HTTP import turns into a `denied` error naming the host and why.
//!
//! Literal addresses on the allow list are never resolved: the operator
//! named the address itself, so only the link-local and metadata check in
//! the allow-list match applies to them.
//!
//! When the process runs with a proxy configured (`HTTPS_PROXY` and the
//! like), the clients hand the name to the proxy, which resolves it; only
//! the proxy's own name goes through [`Guarded`] then.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What kind of network an address belongs to, as far as a plugin's reach
/// is concerned. Ordered from the most to the least reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Reach {
    Public,
    Loopback,
    /// RFC 1918 and IPv6 unique-local (fc00::/7).
    Private,
    /// Carrier-grade NAT, 100.64.0.0/10, which some clusters use for pods.
    SharedNat,
    /// 0.0.0.0/8 and `::`, which reach the local machine when dialled.
    Unspecified,
    LinkLocal,
    /// The cloud instance metadata services, which hand out credentials.
    Metadata,
}

impl Reach {
    /// Whether a plugin instance may connect to an address of this kind.
    /// Link-local, metadata and unspecified addresses stay out of reach even
    /// with private networks granted: no API a plugin needs lives there,
    /// and the metadata service gives away the node's credentials.
    pub(crate) fn reachable(self, private_networks: bool) -> bool {
        match self {
            Reach::Public => true,
            Reach::Loopback | Reach::Private | Reach::SharedNat => private_networks,
            Reach::Unspecified | Reach::LinkLocal | Reach::Metadata => false,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Reach::Public => "public",
            Reach::Loopback => "loopback",
            Reach::Private => "private",
            Reach::SharedNat => "carrier-grade NAT",
            Reach::Unspecified => "unspecified",
            Reach::LinkLocal => "link-local",
            Reach::Metadata => "cloud metadata",
        }
    }
}

const METADATA_V4: [Ipv4Addr; 2] = [
    // AWS, GCP, Azure, OpenStack and most others.
    Ipv4Addr::new(169, 254, 169, 254),
    // Alibaba Cloud.
    Ipv4Addr::new(100, 100, 100, 200),
];

/// AWS's IPv6 metadata endpoint.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// Classifies one address. IPv4 addresses wrapped in IPv6 (mapped, or
/// behind the well-known NAT64 prefix) are judged by the address they wrap,
/// since that is where the packets end up.
pub(crate) fn classify(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return classify_v4(Ipv4Addr::new(a, b, c, d));
            }
            if v6 == METADATA_V6 {
                Reach::Metadata
            } else if v6.is_unspecified() {
                Reach::Unspecified
            } else if v6.is_loopback() {
                Reach::Loopback
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Reach::LinkLocal
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Reach::Private
            } else {
                Reach::Public
            }
        }
    }
}

fn classify_v4(v4: Ipv4Addr) -> Reach {
    let [a, b, ..] = v4.octets();
    if METADATA_V4.contains(&v4) {
        Reach::Metadata
    } else if v4.is_link_local() {
        Reach::LinkLocal
    } else if v4.is_loopback() {
        Reach::Loopback
    } else if v4.is_private() {
        Reach::Private
    } else if a == 100 && (b & 0xc0) == 64 {
        Reach::SharedNat
    } else if a == 0 {
        Reach::Unspecified
    } else {
        Reach::Public
    }
}

/// A host name whose every address is out of the plugin instance's reach.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} resolves only to {kinds} addresses; {why}")]
pub(crate) struct Refused {
    host: String,
    kinds: String,
    why: &'static str,
}

impl Refused {
    fn new(host: &str, found: &BTreeSet<Reach>, private_networks: bool) -> Self {
        let labels: Vec<&str> = found.iter().map(|r| r.label()).collect();
        let kinds = match labels.as_slice() {
            [] => "no".to_string(),
            [one] => (*one).to_string(),
            [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        };
        let grantable = found.iter().any(|r| r.reachable(true));
        let why = if private_networks || !grantable {
            "link-local, cloud metadata and unspecified addresses are never reachable from a plugin"
        } else if found.iter().all(|r| r.reachable(true)) {
            "this plugin instance's grant does not allow private networks (grants.private_networks)"
        } else {
            "this plugin instance's grant does not allow private networks (grants.private_networks), and link-local, cloud metadata and unspecified addresses are never reachable"
        };
        Refused {
            host: host.to_string(),
            kinds,
            why,
        }
    }
}

/// The addresses of `host` the plugin may reach, or why there are none.
/// Addresses of other kinds are dropped rather than failing the name, so a
/// name with both a public and a private address still works.
pub(crate) fn screen(
    host: &str,
    found: impl IntoIterator<Item = SocketAddr>,
    private_networks: bool,
) -> Result<Vec<SocketAddr>, Refused> {
    let mut kept = Vec::new();
    let mut dropped = BTreeSet::new();
    for addr in found {
        let reach = classify(addr.ip());
        if reach.reachable(private_networks) {
            kept.push(addr);
        } else {
            dropped.insert(reach);
        }
    }
    if kept.is_empty() && !dropped.is_empty() {
        return Err(Refused::new(host, &dropped, private_networks));
    }
    if !dropped.is_empty() {
        tracing::debug!(
            host,
            kept = kept.len(),
            dropped = ?dropped,
            "Dropped addresses a plugin may not reach"
        );
    }
    Ok(kept)
}

/// The system resolver, screened by [`screen`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guarded {
    pub private_networks: bool,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let private_networks = self.private_networks;
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Port 0: the client puts in the URL's port, or the scheme's.
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept = screen(&host, found, private_networks)?;
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP clients behind the `http` import. A client resolves names one
/// way for all its requests, so plugin instances allowed private networks
/// get a client of their own.
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    strict: reqwest::Client,
    private: reqwest::Client,
}

impl Clients {
    pub(crate) fn new() -> Result<Self, reqwest::Error> {
        let client = |private_networks| {
            reqwest::Client::builder()
                // A redirect would leave the allow list unchecked.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("org-mesh/", env!("CARGO_PKG_VERSION")))
                .dns_resolver(Arc::new(Guarded { private_networks }))
                .build()
        };
        Ok(Clients {
            strict: client(false)?,
            private: client(true)?,
        })
    }

    pub(crate) fn get(&self, private_networks: bool) -> &reqwest::Client {
        if private_networks {
            &self.private
        } else {
            &self.strict
        }
    }
}

/// The refusal somewhere in `e`'s chain of causes, if the resolver refused.
pub(crate) fn refusal<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return Some(refused);
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(ip: &str) -> Reach {
        classify(ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::BROADCAST)))
    }

    #[test]
    fn addresses_are_classified_by_where_they_lead() {
        for (ip, want) in [
            ("8.8.8.8", Reach::Public),
            ("140.82.112.3", Reach::Public),
            ("2606:4700::1111", Reach::Public),
            ("127.0.0.1", Reach::Loopback),
            ("127.9.9.9", Reach::Loopback),
            ("::1", Reach::Loopback),
            ("10.1.2.3", Reach::Private),
            ("172.16.0.1", Reach::Private),
            ("172.31.255.255", Reach::Private),
            ("172.32.0.1", Reach::Public),
            ("192.168.1.1", Reach::Private),
            ("fc00::1", Reach::Private),
            ("fd12:3456::1", Reach::Private),
            ("100.64.0.1", Reach::SharedNat),
            ("100.127.255.255", Reach::SharedNat),
            ("100.128.0.1", Reach::Public),
            ("100.63.255.255", Reach::Public),
            ("0.0.0.0", Reach::Unspecified),
            ("0.1.2.3", Reach::Unspecified),
            ("::", Reach::Unspecified),
            ("169.254.1.1", Reach::LinkLocal),
            ("fe80::1", Reach::LinkLocal),
            ("febf::1", Reach::LinkLocal),
            ("169.254.169.254", Reach::Metadata),
            ("100.100.100.200", Reach::Metadata),
            ("fd00:ec2::254", Reach::Metadata),
            ("::ffff:127.0.0.1", Reach::Loopback),
            ("::ffff:169.254.169.254", Reach::Metadata),
            ("::ffff:10.0.0.1", Reach::Private),
            ("64:ff9b::a9fe:a9fe", Reach::Metadata),
            ("64:ff9b::808:808", Reach::Public),
        ] {
            assert_eq!(reach(ip), want, "{ip}");
        }
    }

    #[test]
    fn private_networks_open_loopback_private_and_cgnat_only() {
        for kind in [Reach::Loopback, Reach::Private, Reach::SharedNat] {
            assert!(!kind.reachable(false), "{kind:?}");
            assert!(kind.reachable(true), "{kind:?}");
        }
        for kind in [Reach::LinkLocal, Reach::Metadata, Reach::Unspecified] {
            assert!(!kind.reachable(false), "{kind:?}");
            assert!(!kind.reachable(true), "{kind:?}");
        }
        assert!(Reach::Public.reachable(false));
    }

    #[test]
    fn private_networks_is_off_unless_the_grant_says_so() {
        let parse =
            |yaml: &str| serde_saphyr::from_str::<crate::Grants>(yaml).map(|g| g.private_networks);
        assert!(matches!(parse("http_hosts: [gitlab.internal]"), Ok(false)));
        assert!(matches!(
            parse("http_hosts: [gitlab.internal]\nprivate_networks: true"),
            Ok(true)
        ));
    }

    fn addrs(ips: &[&str]) -> Vec<SocketAddr> {
        ips.iter()
            .filter_map(|ip| ip.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 443))
            .collect()
    }

    #[test]
    fn screening_drops_what_is_out_of_reach_and_names_it_when_nothing_is_left() {
        let mixed = addrs(&["10.0.0.7", "140.82.112.3"]);
        assert_eq!(
            screen("git.example", mixed.clone(), false),
            Ok(addrs(&["140.82.112.3"]))
        );
        assert_eq!(screen("git.example", mixed.clone(), true), Ok(mixed));

        let local = addrs(&["127.0.0.1", "::1"]);
        let refused = screen("localhost", local.clone(), false)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            refused.as_deref(),
            Some(
                "localhost resolves only to loopback addresses; this plugin instance's grant does not allow private networks (grants.private_networks)"
            )
        );
        assert_eq!(screen("localhost", local.clone(), true), Ok(local));

        let metadata = addrs(&["169.254.169.254", "fd00:ec2::254"]);
        let refused = screen("metadata.example", metadata, true)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            refused.as_deref(),
            Some(
                "metadata.example resolves only to cloud metadata addresses; link-local, cloud metadata and unspecified addresses are never reachable from a plugin"
            )
        );

        let both = addrs(&["10.0.0.1", "169.254.10.1"]);
        let refused = screen("both.example", both, false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            refused.starts_with("both.example resolves only to private and link-local addresses; this plugin instance's grant does not allow private networks"),
            "{refused}"
        );
    }
}
