//! Frames: a 4-byte big-endian length, then that many bytes. The length is checked against the
//! caller's limit before anything is allocated.

/// A frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The announced length is over the limit.
    #[error("frame of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame")]
    Truncated,
    /// The stream or connection failed.
    #[error("stream: {0}")]
    Stream(String),
}

/// Writes one frame.
pub async fn write_frame(send: &mut quinn::SendStream, payload: &[u8]) -> Result<(), FrameError> {
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge {
        len: payload.len(),
        max: u32::MAX as usize,
    })?;
    send.write_all(&len.to_be_bytes())
        .await
        .map_err(|e| FrameError::Stream(e.to_string()))?;
    send.write_all(payload)
        .await
        .map_err(|e| FrameError::Stream(e.to_string()))
}

/// Reads one frame of at most `max` bytes from `recv` (a QUIC stream; generic so that the
/// framing can be tested and fuzzed over plain bytes).
pub async fn read_frame<R>(recv: &mut R, max: usize) -> Result<Vec<u8>, FrameError>
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut prefix = [0u8; 4];
    read_exact(recv, &mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut payload = vec![0u8; len];
    read_exact(recv, &mut payload).await?;
    Ok(payload)
}

async fn read_exact<R>(recv: &mut R, buf: &mut [u8]) -> Result<(), FrameError>
where
    R: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    // quinn reports a stream that finished early as end of file; its other errors (reset,
    // connection lost) are of other kinds.
    match recv.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(FrameError::Stream(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(mut bytes: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(read_frame(&mut bytes, max))
    }

    #[test]
    fn frames_are_read_whole_and_checked_before_allocating() {
        assert_eq!(read(&[0, 0, 0, 2, 7, 8, 9], 2).expect("a frame"), [7, 8]);
        assert_eq!(read(&[0, 0, 0, 0], 0).expect("empty frame"), [0u8; 0]);
        assert!(matches!(
            read(&[0xff, 0xff, 0xff, 0xff], 16),
            Err(FrameError::TooLarge {
                len: 0xffff_ffff,
                max: 16
            })
        ));
        for truncated in [&[][..], &[0, 0], &[0, 0, 0, 3, 1, 2]] {
            assert!(
                matches!(read(truncated, 16), Err(FrameError::Truncated)),
                "{truncated:?}"
            );
        }
    }
}
