//! The listener in front of axum: socket options, connections per client address, and the
//! deadlines hyper does not enforce here (it has no timer under `axum::serve`).
//!
//! Rules:
//! - Handshake deadline: a connection must get its first response byte (an HTTP answer or the
//!   WebSocket `101`) within `--handshake-timeout-ms` of being accepted, so a client that opens
//!   sockets and trickles headers (slowloris) cannot hold them. With TLS the TLS handshake is
//!   part of it: it must end within that time too, and the HTTP answer within what is left.
//! - TLS handshakes run in their own tasks, not in `accept`: one slow client must not hold up
//!   the connections behind it. A finished one comes back through a channel.
//! - Idle deadline: after that, a connection from which nothing arrives for
//!   `--idle-timeout-secs` is closed. Live WebSockets answer the server's pings well within it,
//!   so it only ends dead peers and idle keep-alive connections.
//! - At most `--max-connections-per-ip` open connections per peer address (0: no limit); one
//!   over it is answered `429` with the JSON error body and closed. Behind a load balancer the
//!   peer is the balancer: set 0 there (its per-client limits apply instead).
//! - Lingering close: a connection is not simply closed when the server is done with it. If
//!   the peer's data sat unread (a body over the limit, a frame far over the limit, frames sent
//!   after our close), the kernel would answer with a reset, which can destroy the answer still
//!   on its way (a 413, a close frame). So our side is shut down (FIN) and what still arrives is
//!   read and discarded until the peer closes, for at most [`LINGER`] and [`LINGER_BYTES`].

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use dashmap::DashMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Longest a closed connection is drained before it is closed for good.
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes read and discarded from a closed connection.
const LINGER_BYTES: usize = 32 * 1024 * 1024;

/// What the listener enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub handshake: Duration,
    pub idle: Duration,
    pub per_ip: usize,
    /// Kernel send buffer per connection (0: autotuning).
    pub send_buffer: usize,
}

pub struct GuardedListener {
    inner: TcpListener,
    limits: Limits,
    open: Arc<DashMap<IpAddr, usize>>,
    tls: Option<Handshakes>,
}

/// TLS handshakes in progress: each task sends its connection here once it is encrypted.
struct Handshakes {
    acceptor: TlsAcceptor,
    done_tx: mpsc::Sender<(GuardedStream, SocketAddr)>,
    done: mpsc::Receiver<(GuardedStream, SocketAddr)>,
}

impl GuardedListener {
    pub fn new(inner: TcpListener, limits: Limits, tls: Option<TlsAcceptor>) -> GuardedListener {
        GuardedListener {
            inner,
            limits,
            open: Arc::new(DashMap::new()),
            tls: tls.map(|acceptor| {
                let (done_tx, done) = mpsc::channel(1024);
                Handshakes {
                    acceptor,
                    done_tx,
                    done,
                }
            }),
        }
    }
}

/// Counts a connection against its address while it lives.
struct IpSlot {
    open: Arc<DashMap<IpAddr, usize>>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Some(mut n) = self.open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
        }
        self.open.remove_if(&self.ip, |_, n| *n == 0);
    }
}

/// The whole answer to a connection over the per-address limit.
fn too_many() -> Vec<u8> {
    let body = r#"{"error":{"code":"too_many_connections","message":"too many open connections from this address"}}"#;
    format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl axum::serve::Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GuardedStream, SocketAddr) {
        loop {
            let (tcp, addr) = match &mut self.tls {
                None => axum::serve::Listener::accept(&mut self.inner).await,
                Some(tls) => tokio::select! {
                    // The listener holds a sender, so the channel never closes.
                    Some(ready) = tls.done.recv() => return ready,
                    accepted = axum::serve::Listener::accept(&mut self.inner) => accepted,
                },
            };
            let accepted_at = Instant::now();
            // Frames are small and often sent back to back (an analysis, then its insight):
            // with Nagle the second waits for the peer's delayed ACK, ~40 ms.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
            // A peer that stops reading (a stalled dashboard) fills its socket's send buffer;
            // the kernel would grow that buffer to megabytes, so it is capped.
            if self.limits.send_buffer > 0
                && let Err(e) =
                    socket2::SockRef::from(&tcp).set_send_buffer_size(self.limits.send_buffer)
            {
                tracing::debug!(error = %e, "could not cap the socket send buffer");
            }
            let ip = addr.ip();
            let slot = if self.limits.per_ip > 0 {
                let mut n = self.open.entry(ip).or_insert(0);
                if *n >= self.limits.per_ip {
                    drop(n);
                    ::metrics::counter!(crate::metrics::CONNECTIONS_REFUSED, "why" => "per_ip")
                        .increment(1);
                    let acceptor = self.tls.as_ref().map(|t| t.acceptor.clone());
                    tokio::spawn(refuse(tcp, acceptor));
                    continue;
                }
                *n += 1;
                Some(IpSlot {
                    open: self.open.clone(),
                    ip,
                })
            } else {
                None
            };
            let limits = self.limits;
            let guarded = move |io: Conn| GuardedStream {
                io,
                _slot: slot,
                deadline: Box::pin(tokio::time::sleep_until(accepted_at + limits.handshake)),
                answered: false,
                idle: limits.idle,
                last_read: Instant::now(),
            };
            let Some(tls) = &self.tls else {
                return (guarded(Conn::Plain(tcp)), addr);
            };
            let (acceptor, done) = (tls.acceptor.clone(), tls.done_tx.clone());
            tokio::spawn(async move {
                let deadline = accepted_at + limits.handshake;
                match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = done
                            .send((guarded(Conn::Tls(Box::new(stream))), addr))
                            .await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => {
                        ::metrics::counter!(crate::metrics::CONNECTIONS_TIMED_OUT, "phase" => "tls_handshake")
                            .increment(1);
                    }
                }
            });
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// Answers `429` (over TLS when the listener speaks it) and closes.
async fn refuse(mut tcp: TcpStream, tls: Option<TlsAcceptor>) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        match tls {
            None => {
                let _ = tcp.write_all(&too_many()).await;
                let _ = tcp.shutdown().await;
            }
            Some(acceptor) => {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(&too_many()).await;
                    let _ = tls.shutdown().await;
                }
            }
        }
    })
    .await;
}

/// The connection under the guard: plain TCP, or TLS over it.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(tcp) => tcp,
            Conn::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(tcp) => tcp.is_write_vectored(),
            Conn::Tls(tls) => tls.is_write_vectored(),
        }
    }
}

/// An accepted connection with its deadlines and its place in the per-address count.
pub struct GuardedStream {
    io: Conn,
    _slot: Option<IpSlot>,
    deadline: Pin<Box<Sleep>>,
    /// Whether the server has written anything yet (the handshake is over then).
    answered: bool,
    idle: Duration,
    /// When data last arrived. The timer is moved only when it fires (to `last_read + idle`),
    /// not on every read: a busy socket reads thousands of times a second.
    last_read: Instant,
}

impl Drop for GuardedStream {
    fn drop(&mut self) {
        // A duplicate of the socket outlives this stream, so the close below (of our
        // descriptor) neither sends anything nor discards the peer's data; the linger does.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        match socket2::SockRef::from(self.io.tcp()).try_clone() {
            Ok(dup) => {
                runtime.spawn(linger(std::net::TcpStream::from(dup)));
            }
            Err(e) => tracing::debug!(error = %e, "could not keep the socket to drain it"),
        }
    }
}

/// Ends our side of a finished connection and discards what the peer still sends, until it
/// closes too (bounded), so that the kernel has no unread data to answer with a reset.
async fn linger(tcp: std::net::TcpStream) {
    if tcp.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(mut tcp) = TcpStream::from_std(tcp) else {
        return;
    };
    let _ = tokio::time::timeout(LINGER, async {
        let _ = tcp.shutdown().await;
        let mut buf = vec![0u8; 16 * 1024];
        let mut read = 0;
        while read < LINGER_BYTES {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}

impl GuardedStream {
    /// The first bytes written end the handshake: from then on the idle deadline applies.
    fn wrote(&mut self, r: &io::Result<usize>) {
        if !self.answered && matches!(r, Ok(n) if *n > 0) {
            self.answered = true;
            let next = Instant::now() + self.idle;
            self.deadline.as_mut().reset(next);
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.last_read = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => loop {
                ready!(self.deadline.as_mut().poll(cx));
                if self.answered {
                    let due = self.last_read + self.idle;
                    if due > Instant::now() {
                        // Data came since the timer was set: push it out and wait again.
                        self.deadline.as_mut().reset(due);
                        continue;
                    }
                }
                let what = if self.answered { "idle" } else { "handshake" };
                ::metrics::counter!(crate::metrics::CONNECTIONS_TIMED_OUT, "phase" => what)
                    .increment(1);
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{what} timeout"),
                )));
            },
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = ready!(Pin::new(&mut self.io).poll_write(cx, buf));
        self.wrote(&r);
        Poll::Ready(r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, bufs));
        self.wrote(&r);
        Poll::Ready(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
