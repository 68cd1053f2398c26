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

/// Reads one frame of at most `max` bytes.
pub async fn read_frame(recv: &mut quinn::RecvStream, max: usize) -> Result<Vec<u8>, FrameError> {
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

async fn read_exact(recv: &mut quinn::RecvStream, buf: &mut [u8]) -> Result<(), FrameError> {
    recv.read_exact(buf).await.map_err(|e| match e {
        quinn::ReadExactError::FinishedEarly(_) => FrameError::Truncated,
        quinn::ReadExactError::ReadError(e) => FrameError::Stream(e.to_string()),
    })
}
