//! [`trailers_only`]: a gRPC status as the HTTP answer the layers give.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response};
use tonic::Status;

static GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

/// Writes `status` as a gRPC *trailers-only* response: HTTP 200,
/// `content-type: application/grpc`, `grpc-status`, `grpc-message`
/// (percent-encoded), `grpc-status-details-bin` (when the status has
/// details) and the status's metadata, all in the headers, and an empty
/// body. The status itself goes into the response's extensions too, as
/// tonic's `Status::into_http` does.
///
/// ```
/// use tonic::{Code, Status};
///
/// let response = tollgate::grpc::trailers_only(Status::unavailable("try later"));
/// assert_eq!(response.status(), http::StatusCode::OK);
/// assert_eq!(response.headers()["content-type"], "application/grpc");
/// assert_eq!(response.headers()["grpc-status"], "14");
/// assert_eq!(response.headers()["grpc-message"], "try%20later");
/// assert!(response.body().is_empty());
/// assert_eq!(response.extensions().get::<Status>().map(Status::code), Some(Code::Unavailable));
/// ```
pub fn trailers_only(status: Status) -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    if status.add_header(headers).is_err() {
        // tonic percent-encodes the message and base64-encodes the
        // details, so this does not happen; the code alone still answers.
        headers.insert(GRPC_STATUS.clone(), HeaderValue::from(status.code() as i32));
    }
    response.extensions_mut().insert(status);
    response
}
