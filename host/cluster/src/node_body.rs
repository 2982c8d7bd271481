//! The body of a request to a node: one buffer, or parts sent one after the other (a batch
//! assembled from slices of a client's body is sent without copying them together).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A request body with its content type.
#[derive(Debug, Clone)]
pub struct NodeBody {
    /// The `Content-Type` header.
    pub content_type: &'static str,
    parts: Arc<[Bytes]>,
    len: usize,
}

impl NodeBody {
    /// A JSON body.
    pub fn json(bytes: impl Into<Bytes>) -> Self {
        NodeBody::new("application/json", bytes)
    }

    /// A body of `content_type`.
    pub fn new(content_type: &'static str, bytes: impl Into<Bytes>) -> Self {
        NodeBody::from_parts(content_type, vec![bytes.into()])
    }

    /// A body made of `parts`, in order.
    pub fn from_parts(content_type: &'static str, parts: Vec<Bytes>) -> Self {
        let len = parts.iter().map(Bytes::len).sum();
        NodeBody { content_type, parts: parts.into(), len }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole body in one buffer (copied when it has several parts).
    pub fn to_bytes(&self) -> Bytes {
        match &*self.parts {
            [one] => one.clone(),
            parts => {
                let mut whole = Vec::with_capacity(self.len);
                for part in parts {
                    whole.extend_from_slice(part);
                }
                Bytes::from(whole)
            }
        }
    }

    /// What hyper sends: the parts, one frame each, with the total length known (so the
    /// request has a `Content-Length`, not chunked encoding).
    pub(crate) fn into_sent(self) -> PartsBody {
        PartsBody::new(self.parts)
    }

    /// An empty body to send.
    pub(crate) fn none() -> PartsBody {
        PartsBody::default()
    }
}

/// A request body sent as its parts, in order, with its length known (so it goes with a
/// `Content-Length`): one buffer, or slices of a larger body sent without copying them together.
#[derive(Debug, Default)]
pub(crate) struct PartsBody {
    parts: Arc<[Bytes]>,
    next: usize,
    remaining: u64,
}

impl PartsBody {
    fn new(parts: impl Into<Arc<[Bytes]>>) -> Self {
        let parts = parts.into();
        let remaining = parts.iter().map(|p| p.len() as u64).sum();
        PartsBody { parts, next: 0, remaining }
    }
}

impl Body for PartsBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let body = &mut *self;
        while let Some(part) = body.parts.get(body.next).cloned() {
            body.next += 1;
            if !part.is_empty() {
                body.remaining -= part.len() as u64;
                return Poll::Ready(Some(Ok(Frame::data(part))));
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    #[tokio::test]
    async fn parts_are_sent_in_order_with_their_length() {
        let body = NodeBody::from_parts(
            "application/json",
            vec![
                Bytes::from_static(b"[{\"a\":"),
                Bytes::from_static(b"1}"),
                Bytes::from_static(b"]"),
            ],
        );
        assert_eq!(body.len(), 9);
        assert_eq!(body.to_bytes(), Bytes::from_static(b"[{\"a\":1}]"));
        let sent = body.into_sent();
        assert_eq!(sent.size_hint().exact(), Some(9));
        let collected = sent.collect().await.expect("infallible").to_bytes();
        assert_eq!(collected, Bytes::from_static(b"[{\"a\":1}]"));
    }

    #[tokio::test]
    async fn empty_parts_are_skipped_and_frames_come_in_order() {
        let mut body = PartsBody::new(vec![
            Bytes::from_static(b"[1,"),
            Bytes::new(),
            Bytes::from_static(b"2]"),
        ]);
        assert_eq!(body.size_hint().exact(), Some(5));
        let first = body.frame().await.expect("a frame").expect("data");
        assert_eq!(first.into_data().expect("data"), Bytes::from_static(b"[1,"));
        let rest = body.collect().await.expect("the rest").to_bytes();
        assert_eq!(rest, Bytes::from_static(b"2]"));
        assert!(PartsBody::default().is_end_stream());
    }
}
