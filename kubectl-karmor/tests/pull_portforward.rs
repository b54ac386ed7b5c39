//! Port-forward through kube-rs's real client against a loopback API server that speaks the
//! protocol of `pods/portforward`: an HTTP upgrade to a WebSocket with the
//! `v5.channel.k8s.io`/`v4.channel.k8s.io` subprotocol, then binary frames whose first byte is
//! the channel (data `0`, error `1` for the first port), each channel opened by a frame
//! carrying the port number (little-endian u16). The server relays the data channel to a real
//! TCP socket on loopback, as the kubelet relays it into the pod.

mod common;

use std::time::Duration;

use common::api_server::{FakeApiServer, Forward};
use kubectl_karmor::cluster::portforward::{self, ForwardErrors, PortForwardError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A TCP echo server on loopback; returns its port.
async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the echo server");
    let port = listener.local_addr().expect("a local address").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn bytes_go_through_the_pods_port_and_back() {
    let target = echo_server().await;
    let api = FakeApiServer::start(Forward::To(target)).await;
    let errors = ForwardErrors::default();
    let mut stream =
        portforward::open(&api.client(), "karmor-system", "collector-a", 7946, &errors)
            .await
            .expect("the port-forward opens");

    // More than one WebSocket frame and more than kube's duplex buffer each way.
    let payload: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (mut rd, mut wr) = tokio::io::split(&mut stream);
    let sent = payload.clone();
    let (write, read) = tokio::join!(
        async move {
            wr.write_all(&sent).await?;
            wr.flush().await
        },
        async move {
            let mut back = vec![0u8; payload.len()];
            rd.read_exact(&mut back).await.map(|_| (back, payload))
        }
    );
    write.expect("writes go through");
    let (back, payload) = read.expect("the echo comes back");
    assert!(
        back == payload,
        "the echoed bytes differ from the sent ones"
    );
    assert_eq!(errors.last(), None);

    let requests = api.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        requests[0].path,
        "/api/v1/namespaces/karmor-system/pods/collector-a/portforward"
    );
    assert_eq!(requests[0].ports, vec![7946]);
    // kube 5 offers v5 first, then v4; this server picked v5 (the first it knows).
    assert_eq!(
        requests[0].protocols,
        vec![
            "v5.channel.k8s.io".to_string(),
            "v4.channel.k8s.io".to_string()
        ]
    );
}

#[tokio::test]
async fn the_v4_subprotocol_works_too() {
    let target = echo_server().await;
    let api = FakeApiServer::start_with_protocol(Forward::To(target), "v4.channel.k8s.io").await;
    let errors = ForwardErrors::default();
    let mut stream =
        portforward::open(&api.client(), "karmor-system", "collector-b", 7946, &errors)
            .await
            .expect("the port-forward opens");
    stream.write_all(b"ping").await.expect("write");
    let mut back = [0u8; 4];
    stream.read_exact(&mut back).await.expect("read");
    assert_eq!(&back, b"ping");
}

#[tokio::test]
async fn nothing_listening_in_the_pod_fails_with_the_kubelets_message() {
    // A port nobody listens on: bind, read the port, close.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    };
    let api = FakeApiServer::start(Forward::To(closed)).await;
    let (channel, errors) = portforward::channel(
        api.client(),
        "karmor-system",
        "collector-c",
        7946,
        Duration::from_secs(10),
    )
    .await
    .expect("the API server forwards");
    let err = karmor_proto::health(channel)
        .await
        .expect_err("no answer from a closed port");
    let text = portforward::describe(&err, &errors);
    assert!(
        text.contains("(port-forward: an error occurred forwarding 7946 -> 7946"),
        "{text}"
    );
    assert!(text.contains("to pod collector-c"), "{text}");
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
}

#[tokio::test]
async fn a_refused_upgrade_names_the_pod_and_the_api_servers_reason() {
    let api = FakeApiServer::start(Forward::Refuse(
        403,
        "pods \"collector-d\" is forbidden: User \"dev\" cannot create resource \"pods/portforward\"",
    ))
    .await;
    let err = portforward::open(
        &api.client(),
        "karmor-system",
        "collector-d",
        7946,
        &ForwardErrors::default(),
    )
    .await
    .expect_err("a refused upgrade is an error");
    let text = err.to_string();
    assert!(matches!(err, PortForwardError::Open { .. }), "{text}");
    assert!(
        text.contains("karmor-system/collector-d port 7946"),
        "{text}"
    );
    assert!(text.contains("cannot create resource"), "{text}");
}

#[tokio::test]
async fn a_refused_upgrade_fails_the_channel_before_any_call() {
    let api = FakeApiServer::start(Forward::Refuse(404, "pods \"collector-e\" not found")).await;
    let err = portforward::channel(
        api.client(),
        "karmor-system",
        "collector-e",
        7946,
        Duration::from_secs(10),
    )
    .await
    .expect_err("no channel to a pod the API server does not know");
    let text = err.to_string();
    assert!(matches!(err, PortForwardError::Connect { .. }), "{text}");
    assert!(
        text.contains("karmor-system/collector-e port 7946"),
        "{text}"
    );
    assert!(text.contains("pods \"collector-e\" not found"), "{text}");
}
