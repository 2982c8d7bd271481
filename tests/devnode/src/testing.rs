//! Starting a development node inside a test process, on a free loopback port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::Node;

/// A development node serving on `127.0.0.1` from a background thread; stops when dropped.
pub struct TestNode {
    addr: SocketAddr,
    node: Arc<Node>,
    master_key: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestNode {
    /// Start a node on a free port, with an optional master key.
    pub fn start(master_key: Option<&str>) -> Self {
        Self::start_with_delay(master_key, Duration::ZERO)
    }

    /// Start a node whose tasks each stay `processing` for `delay`.
    pub fn start_with_delay(master_key: Option<&str>, delay: Duration) -> Self {
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), master_key, delay)
    }

    /// Start a node on `addr` (port 0 for a free one). Given the address of a node that was
    /// dropped, this is that node restarted empty on its port, as after a lost disk.
    pub fn start_at(addr: SocketAddr, master_key: Option<&str>, delay: Duration) -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let key = master_key.map(String::from);
        let node = Node::new(key.clone(), delay);
        let thread_node = Arc::clone(&node);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime for the test node");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the address");
                addr_tx.send(listener.local_addr().expect("bound address")).expect("test waits");
                let shutdown = async {
                    let _ = stop_rx.await;
                };
                crate::serve_node(listener, thread_node, shutdown).await.expect("serve");
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).expect("the node starts");
        Self { addr, node, master_key: key, stop: Some(stop_tx), thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn master_key(&self) -> Option<&str> {
        self.master_key.as_deref()
    }

    /// Make every request to this node, `/health` included, wait `delay` before answering
    /// (`Duration::ZERO` to stop).
    pub fn set_response_delay(&self, delay: Duration) {
        self.node.set_response_delay(delay);
    }

    /// The W3C trace headers (`traceparent`, `tracestate`) of the latest requests this node
    /// received that carried one, oldest first. The node does nothing else with them, as
    /// Meilisearch ignores them.
    pub fn received_traces(&self) -> Vec<crate::state::ReceivedTrace> {
        self.node.received_traces()
    }

    /// Make this node's searches wait `delay` before answering (`Duration::ZERO` to stop).
    pub fn set_search_delay(&self, delay: Duration) {
        self.node.set_search_delay(delay);
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
