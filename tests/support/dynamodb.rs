//! DynamoDB clients on moto that keep DynamoDB's atomicity.
//!
//! DynamoDB applies each conditional write, and each transaction, atomically. moto's
//! server does not: it serves requests on several threads with no lock around a
//! table, so two concurrent conditional puts can both pass their condition, and a
//! cancelled `TransactWriteItems` restores a copy of the table taken before it
//! started, undoing writes that landed meanwhile. Tests of the ledger's concurrency
//! would then test moto's races, not the ledger.
//!
//! [`client`] therefore sends this process's DynamoDB requests to moto one at a time
//! (a lock around the HTTP call: an attempt holds it from sending the request until
//! the response head arrives, by which time moto has applied the operation). The
//! callers stay concurrent: their requests interleave in any order, as on DynamoDB,
//! only never inside one another. Other services are not affected.

use std::sync::{Arc, OnceLock};

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector,
    http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;

use crate::account::AccountHeader;

/// The one lock all DynamoDB requests of this process take.
static SERIAL: OnceLock<Arc<tokio::sync::Mutex<()>>> = OnceLock::new();

/// A connector that holds the process-wide lock around each call.
#[derive(Debug, Clone)]
struct Serial {
    inner: SharedHttpConnector,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl HttpConnector for Serial {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let lock = Arc::clone(&self.lock);
        HttpConnectorFuture::new(async move {
            let _turn = lock.lock_owned().await;
            inner.call(request).await
        })
    }
}

/// A plain-HTTP client (moto is on 127.0.0.1) that makes every call one at a time.
pub fn serial_http_client() -> SharedHttpClient {
    let inner = aws_smithy_http_client::Builder::new().build_http();
    let lock = Arc::clone(SERIAL.get_or_init(Arc::default));
    http_client_fn(move |settings, components| {
        SharedHttpConnector::new(Serial {
            inner: inner.http_connector(settings, components),
            lock: Arc::clone(&lock),
        })
    })
}

/// A DynamoDB client acting in `account` on moto, its requests serialized (see the
/// module documentation); the ledger's, so its user agent names
/// [`crate::record::RESPONDER_APP`].
pub fn client(config: &SdkConfig, account: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(config)
            .app_name(crate::record::responder_app())
            .http_client(serial_http_client())
            .interceptor(AccountHeader(account.to_owned()))
            .build(),
    )
}
