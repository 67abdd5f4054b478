//! A shard's routing tables, consulted for every datagram: which local peer
//! (or which other shard) owns a remote address, and which local peer owns
//! an ICE ufrag. Generic over the peer handle so the `demux` benchmark can
//! measure these exact lookups.

use std::collections::HashMap;

use crate::sfu::PeerAddr;

/// Where datagrams from one remote address go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<K> {
    /// A peer on this shard.
    Local(K),
    /// A peer on shard `n`: hand the datagram over.
    Remote(usize),
}

/// The tables.
#[derive(Debug)]
pub struct Routes<K> {
    by_addr: HashMap<PeerAddr, Route<K>>,
    by_ufrag: HashMap<String, K>,
}

impl<K> Default for Routes<K> {
    fn default() -> Self {
        Self {
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
        }
    }
}

impl<K: Copy + PartialEq> Routes<K> {
    /// Where datagrams from `addr` go, if known (the per-datagram lookup).
    pub fn route(&self, addr: &PeerAddr) -> Option<Route<K>> {
        self.by_addr.get(addr).copied()
    }

    /// `addr` belongs to local peer `key` (its STUN authenticated here).
    pub fn pin(&mut self, addr: PeerAddr, key: K) {
        self.by_addr.insert(addr, Route::Local(key));
    }

    /// `addr` belongs to a peer on shard `owner`, unless a local peer has it.
    pub fn route_to_shard(&mut self, addr: PeerAddr, owner: usize) {
        if !matches!(self.by_addr.get(&addr), Some(Route::Local(_))) {
            self.by_addr.insert(addr, Route::Remote(owner));
        }
    }

    /// Forgets a route to shard `owner` (its peer ended); a newer route stays.
    pub fn unroute(&mut self, addr: &PeerAddr, owner: usize) {
        if self.by_addr.get(addr) == Some(&Route::Remote(owner)) {
            self.by_addr.remove(addr);
        }
    }

    /// Forgets `addr` whatever it routed to.
    pub fn forget(&mut self, addr: &PeerAddr) {
        self.by_addr.remove(addr);
    }

    /// The local peer whose ufrag is `ufrag` (the first STUN of an address).
    pub fn by_ufrag(&self, ufrag: &[u8]) -> Option<K> {
        let ufrag = std::str::from_utf8(ufrag).ok()?;
        self.by_ufrag.get(ufrag).copied()
    }

    /// Local peer `key` answers to `ufrag` from now on.
    pub fn name(&mut self, ufrag: String, key: K) {
        self.by_ufrag.insert(ufrag, key);
    }

    /// Every address route (for consistency checks; not a hot path).
    pub fn addrs(&self) -> impl Iterator<Item = (&PeerAddr, &Route<K>)> {
        self.by_addr.iter()
    }

    /// Every ufrag and the peer it names (for consistency checks).
    pub fn ufrags(&self) -> impl Iterator<Item = (&str, &K)> {
        self.by_ufrag.iter().map(|(u, k)| (u.as_str(), k))
    }

    /// Forgets `ufrag` if it still names `key`.
    pub fn unname(&mut self, ufrag: &str, key: K) {
        if self.by_ufrag.get(ufrag) == Some(&key) {
            self.by_ufrag.remove(ufrag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_routes_win_over_remote_and_unroute_names_its_owner() {
        let addr = PeerAddr::udp("127.0.0.1:1000".parse().unwrap());
        let mut routes: Routes<u32> = Routes::default();
        routes.route_to_shard(addr, 1);
        assert_eq!(routes.route(&addr), Some(Route::Remote(1)));
        routes.unroute(&addr, 2);
        assert_eq!(
            routes.route(&addr),
            Some(Route::Remote(1)),
            "another owner's unroute"
        );
        routes.pin(addr, 7);
        routes.route_to_shard(addr, 1);
        assert_eq!(
            routes.route(&addr),
            Some(Route::Local(7)),
            "a local peer keeps its address"
        );
        routes.unroute(&addr, 1);
        assert_eq!(routes.route(&addr), Some(Route::Local(7)));
        routes.forget(&addr);
        assert_eq!(routes.route(&addr), None);
    }

    #[test]
    fn ufrags_name_peers_until_renamed() {
        let mut routes: Routes<u32> = Routes::default();
        routes.name("abc".into(), 1);
        assert_eq!(routes.by_ufrag(b"abc"), Some(1));
        assert_eq!(routes.by_ufrag(b"\xff\xfe"), None);
        routes.unname("abc", 2);
        assert_eq!(
            routes.by_ufrag(b"abc"),
            Some(1),
            "only its own name is removed"
        );
        routes.unname("abc", 1);
        assert_eq!(routes.by_ufrag(b"abc"), None);
    }
}
