//! The client service: admitted requests become commands to the core task.

use tokio::sync::{mpsc, oneshot};

use bmpls_net::{Handler, Request, RequestError, Response};
use bmpls_types::{BoundedVec, PublicKeyBytes};

use crate::driver::Command;

pub(crate) struct Service {
    pub(crate) commands: mpsc::Sender<Command>,
}

impl Service {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RequestError> {
        let (reply, answer) = oneshot::channel();
        match self.commands.try_send(make(reply)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return Err(RequestError::Busy),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(RequestError::ShuttingDown),
        }
        answer.await.map_err(|_| RequestError::ShuttingDown)
    }
}

impl Handler for Service {
    async fn handle(&self, client: PublicKeyBytes, request: Request) -> Response {
        let answer = match request {
            Request::Submit(txs) => self
                .ask(|reply| Command::Submit {
                    txs: txs.into_inner(),
                    reply,
                })
                .await
                .map(|results| {
                    Response::Submitted(
                        BoundedVec::new(results).expect("one result per submitted transaction"),
                    )
                }),
            Request::Status => self
                .ask(|reply| Command::Status { reply })
                .await
                .map(Response::Status),
            Request::Query(queries) => self
                .ask(|reply| Command::Query {
                    client,
                    queries: queries.into_inner(),
                    reply,
                })
                .await
                .and_then(|answered| answered)
                .map(|outcomes| {
                    Response::Answers(BoundedVec::new(outcomes).expect("one outcome per query"))
                }),
            Request::Audit(request) => self
                .ask(|reply| Command::Audit {
                    client,
                    request,
                    reply,
                })
                .await
                .map(Response::Audit),
            Request::Watch(request) => self
                .ask(|reply| Command::Watch {
                    client,
                    request,
                    reply,
                })
                .await
                .and_then(|watched| watched)
                .map(Response::Watch),
            Request::Grants(asked) => self
                .ask(|reply| Command::Grants {
                    client,
                    asked,
                    reply,
                })
                .await
                .map(Response::Grants),
            Request::NextSeq(patient) => self
                .ask(|reply| Command::NextSeq {
                    client,
                    patient,
                    reply,
                })
                .await
                .map(Response::NextSeq),
            Request::Grant(request) => self
                .ask(|reply| Command::Grant {
                    client,
                    request,
                    reply,
                })
                .await
                .map(Response::Grant),
            Request::Fences(request) => self
                .ask(|reply| Command::Fences {
                    client,
                    request,
                    reply,
                })
                .await
                .map(Response::Fences),
        };
        answer.unwrap_or_else(Response::Error)
    }
}
