//! A fake KubeArmor relay (real tonic on loopback) that streams the 18 events of KubeArmor's
//! documentation (`shared/kubearmor/events/doc-events.jsonl`) as a relay replays its buffer.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use karmor_proto::kubearmor::{message_from_json, FeedMessage};
use karmor_proto::proto::feeder::log_service_server::{LogService, LogServiceServer};
use karmor_proto::proto::feeder::{
    Alert, Log, Message, NonceMessage, ReplyMessage, RequestMessage,
};
use karmor_proto::tonic::{self, Request, Response, Status};
use serde_json::Value;

/// The documentation's events, one JSON object a line.
pub const DOC_EVENTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/kubearmor/events/doc-events.jsonl"
);

pub fn doc_lines() -> Vec<Value> {
    std::fs::read_to_string(DOC_EVENTS)
        .expect("the documentation's events")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

pub type Out<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// A fake KubeArmor relay. On its first `cut_times` calls each stream stops with UNAVAILABLE
/// after `cut_after` messages; every call sends from the start (a relay replaying its buffer).
#[derive(Clone)]
pub struct FakeRelay {
    logs: Vec<Log>,
    alerts: Vec<Alert>,
    cut_after: usize,
    cut_times: usize,
    /// Streams opened so far (logs and alerts count apart).
    pub calls: Arc<AtomicUsize>,
    filters: Arc<Mutex<Vec<String>>>,
}

fn replay<T: Clone + Send + 'static>(items: &[T], cut: Option<usize>) -> Out<T> {
    let items: Vec<Result<T, Status>> = items.iter().cloned().map(Ok).collect();
    match cut {
        Some(n) => Box::pin(futures::stream::iter(items.into_iter().take(n)).chain(
            futures::stream::once(async { Err(Status::unavailable("cut by the test")) }),
        )),
        // After the events, stay open like a relay with nothing new to say.
        None => Box::pin(futures::stream::iter(items).chain(futures::stream::pending())),
    }
}

impl FakeRelay {
    pub fn new(cut_after: usize, cut_times: usize) -> Self {
        let (mut logs, mut alerts) = (Vec::new(), Vec::new());
        for v in doc_lines() {
            match message_from_json(&v) {
                FeedMessage::Log(l) => logs.push(l),
                FeedMessage::Alert(a) => alerts.push(a),
            }
        }
        FakeRelay {
            logs,
            alerts,
            cut_after,
            cut_times,
            calls: Arc::default(),
            filters: Arc::default(),
        }
    }

    fn record(&self, what: String) -> Option<usize> {
        self.filters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(what);
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        // Two calls (logs, alerts) per connection.
        (n / 2 < self.cut_times).then_some(self.cut_after)
    }

    pub fn filters(&self) -> Vec<String> {
        let mut f = self
            .filters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        f.sort();
        f.dedup();
        f
    }

    /// Serves on 127.0.0.1 until the test's runtime ends.
    pub async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake relay");
        let addr = listener.local_addr().expect("an address");
        let incoming = futures::stream::unfold(listener, |l| async move {
            let conn = l.accept().await.map(|(tcp, _)| tcp);
            Some((conn, l))
        });
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(LogServiceServer::new(self.clone()))
                .serve_with_incoming(incoming),
        );
        addr
    }
}

#[tonic::async_trait]
impl LogService for FakeRelay {
    async fn health_check(
        &self,
        r: Request<NonceMessage>,
    ) -> Result<Response<ReplyMessage>, Status> {
        Ok(Response::new(ReplyMessage {
            retval: r.into_inner().nonce,
        }))
    }

    type WatchMessagesStream = Out<Message>;

    async fn watch_messages(
        &self,
        _r: Request<RequestMessage>,
    ) -> Result<Response<Out<Message>>, Status> {
        Ok(Response::new(Box::pin(futures::stream::pending())))
    }

    type WatchAlertsStream = Out<Alert>;

    async fn watch_alerts(
        &self,
        r: Request<RequestMessage>,
    ) -> Result<Response<Out<Alert>>, Status> {
        let cut = self.record(format!("alerts:{}", r.get_ref().filter));
        Ok(Response::new(replay(&self.alerts, cut)))
    }

    type WatchLogsStream = Out<Log>;

    async fn watch_logs(&self, r: Request<RequestMessage>) -> Result<Response<Out<Log>>, Status> {
        let cut = self.record(format!("logs:{}", r.get_ref().filter));
        Ok(Response::new(replay(&self.logs, cut)))
    }
}
