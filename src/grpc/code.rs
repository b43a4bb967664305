//! The gRPC code of an answer the layer would give with an HTTP status.

use http::StatusCode;
use tonic::Code;

/// The gRPC code for a refusal the HTTP answers give `status`.
///
/// Close to gRPC's own HTTP-to-gRPC mapping, but for answers the layer
/// makes itself: 400 is the client's malformed key (`INVALID_ARGUMENT`,
/// not `INTERNAL`), 429 is `RESOURCE_EXHAUSTED`, and a server-side fault
/// such as a missing peer address (500) is `UNKNOWN`: never `INTERNAL`,
/// which clients read as a broken server or stream.
pub(crate) fn for_http(status: StatusCode) -> Code {
    match status {
        StatusCode::BAD_REQUEST => Code::InvalidArgument,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            Code::Unavailable
        }
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_error_statuses_map_to_their_codes() {
        assert_eq!(for_http(StatusCode::BAD_REQUEST), Code::InvalidArgument);
        assert_eq!(for_http(StatusCode::UNAUTHORIZED), Code::Unauthenticated);
        assert_eq!(for_http(StatusCode::FORBIDDEN), Code::PermissionDenied);
        assert_eq!(
            for_http(StatusCode::TOO_MANY_REQUESTS),
            Code::ResourceExhausted
        );
        assert_eq!(for_http(StatusCode::SERVICE_UNAVAILABLE), Code::Unavailable);
        assert_eq!(for_http(StatusCode::INTERNAL_SERVER_ERROR), Code::Unknown);
        assert_eq!(for_http(StatusCode::IM_A_TEAPOT), Code::Unknown);
    }
}
