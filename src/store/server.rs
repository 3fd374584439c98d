//! The message-passing store: a seller process owns the count and answers
//! requests over pipes, so no buyer ever touches the count and no lock exists.
//!
//! Requests share one pipe: a 4-byte word, so each write is atomic (below
//! `PIPE_BUF`) and requests from many buyers never interleave. Each buyer has
//! its own reply pipe carrying one 8-byte count per request.
//!
//! The queue store uses these very pipes and this very seller: its buyers
//! only take the segment's mutex around each request write, the lock that
//! makes a pipe a queue (see `Buyer::ask_seller`).

use std::io;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::process::{self, Pipe};

use super::StoreError;

const SEARCH: u32 = 0;
const BUY: u32 = 1;

/// The pipes of a server sale, created before anything forks.
pub(crate) struct SellerPipes {
    requests: Pipe,
    replies: Vec<Pipe>,
}

/// A buyer's end of the conversation.
pub(crate) struct ServerClient {
    worker: u32,
    request_fd: i32,
    reply_fd: i32,
}

/// What the seller answered to a purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sale {
    /// Sold; the count before the sale.
    Sold(i64),
    /// Nothing left; the count seen.
    SoldOut(i64),
}

impl SellerPipes {
    /// Opens the request pipe and one reply pipe per buyer.
    pub(crate) fn new(workers: usize) -> io::Result<SellerPipes> {
        // 1000 buyers need 2000 pipe ends, past the usual soft limit.
        process::raise_fd_limit(2 * workers + 64);
        Ok(SellerPipes {
            requests: Pipe::new()?,
            replies: (0..workers)
                .map(|_| Pipe::new())
                .collect::<io::Result<_>>()?,
        })
    }

    /// Buyer `worker`'s client (valid in the forked buyer).
    pub(crate) fn client(&self, worker: usize) -> ServerClient {
        ServerClient {
            worker: worker as u32,
            request_fd: self.requests.write,
            reply_fd: self.replies[worker].read,
        }
    }

    /// The seller's loop, run in the forked seller process: answers until
    /// every buyer has closed its end, publishing the count in `published`
    /// so the live view can show it.
    pub(crate) fn serve(&self, mut count: i64, published: &AtomicI64) -> io::Result<i64> {
        // Our own copy of the write end would keep the pipe open forever.
        // SAFETY: this runs in the forked seller, which uses only the read
        // ends and ends with `_exit`: its copy of the pipes is never dropped.
        unsafe { process::close_raw(self.requests.write) };
        published.store(count, Ordering::Relaxed);
        let mut buf = [0u8; 4096];
        let mut have = 0;
        loop {
            let n = process::read_fd(self.requests.read, &mut buf[have..])?;
            if n == 0 {
                return Ok(count);
            }
            have += n;
            let whole = have - have % 4;
            for word in buf[..whole].chunks_exact(4) {
                let word = u32::from_ne_bytes(word.try_into().expect("chunks of 4"));
                let (worker, op) = ((word >> 1) as usize, word & 1);
                let reply = if op == BUY && count > 0 {
                    count -= 1;
                    published.store(count, Ordering::Relaxed);
                    count + 1
                } else {
                    count
                };
                let Some(pipe) = self.replies.get(worker) else {
                    continue;
                };
                // A buyer that died is not the seller's problem.
                let _ = process::write_fd(pipe.write, &reply.to_ne_bytes());
            }
            buf.copy_within(whole..have, 0);
            have -= whole;
        }
    }
}

impl ServerClient {
    fn send(&self, op: u32) -> Result<(), StoreError> {
        let word = (self.worker << 1) | op;
        process::write_fd(self.request_fd, &word.to_ne_bytes()).map_err(|_| StoreError::SellerGone)
    }

    /// Sends a search request (one step; its answer is another).
    pub(crate) fn send_search(&self) -> Result<(), StoreError> {
        self.send(SEARCH)
    }

    /// Sends a purchase request.
    pub(crate) fn send_buy(&self) -> Result<(), StoreError> {
        self.send(BUY)
    }

    /// Reads the seller's answer to the last request: the count it saw
    /// (for a purchase, the count before it sold, if it sold).
    pub(crate) fn receive(&self) -> Result<i64, StoreError> {
        let mut reply = [0u8; 8];
        match process::read_exact_fd(self.reply_fd, &mut reply) {
            Ok(true) => Ok(i64::from_ne_bytes(reply)),
            _ => Err(StoreError::SellerGone),
        }
    }
}
