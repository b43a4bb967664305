//! [`respond_shed`]: the gRPC answer to a request the load shedder sheds.

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderMap, Response};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::retry;
use super::trailers::trailers_only;
use super::DOMAIN;
use crate::shed::Shed;

/// The gRPC answer to a shed request: [`shed_status`] written as a
/// trailers-only response ([`trailers_only`]).
///
/// This is what [`LoadShedBuilder::grpc`](crate::shed::LoadShedBuilder::grpc)
/// answers with; pass it to
/// [`LoadShedBuilder::on_shed`](crate::shed::LoadShedBuilder::on_shed)
/// yourself, or wrap it, to change it.
pub fn respond_shed(shed: &Shed<'_>) -> Response<Bytes> {
    trailers_only(shed_status(shed))
}

/// The gRPC status of a shed request: `UNAVAILABLE`, with the reason's
/// sentence as the message, `RetryInfo` carrying the layer's `retry_after`
/// (exact, at least 1 ms), an `ErrorInfo` whose reason is the
/// [`ShedReason`](crate::shed::ShedReason) in capitals (`QUEUE_FULL`,
/// `QUEUE_TIMEOUT`, `OVERLOADED`, `DISPLACED`) with the request's priority
/// in its metadata, and the `retry-after` (whole seconds, rounded up) and
/// `grpc-retry-pushback-ms` metadata.
///
/// `UNAVAILABLE` is the code gRPC clients retry by default: a shed call
/// never reached the service, so retrying it elsewhere or later is safe.
pub fn shed_status(shed: &Shed<'_>) -> Status {
    let wait = shed.retry_after();
    let mut details = ErrorDetails::with_retry_info(Some(retry::delay(wait)));
    details.set_error_info(
        shed.reason().as_str().to_ascii_uppercase(),
        DOMAIN,
        HashMap::from([("priority".to_owned(), shed.priority().as_str().to_owned())]),
    );
    let mut headers = HeaderMap::new();
    retry::insert_hints(&mut headers, wait);
    Status::with_error_details_and_metadata(
        Code::Unavailable,
        shed.reason().detail(),
        details,
        MetadataMap::from_headers(headers),
    )
}
