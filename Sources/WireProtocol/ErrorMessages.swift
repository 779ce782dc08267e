import Foundation

/// Every error the API defines. Each has one HTTP status; clients branch on the code, not the text.
public enum ErrorCode: String, Codable, CaseIterable, Sendable {
    /// The bytes are not a valid HTTP/1.1 request (bad request line, header, chunking).
    case badHTTP = "bad_http"
    /// The body is not JSON (or is cut off).
    case badJSON = "bad_json"
    /// JSON of the wrong shape: a missing field, a wrong type, an invalid id or client name, a bad deadline.
    case badRequest = "bad_request"
    /// JSON nested deeper than `max_json_depth`.
    case tooDeep = "too_deep"
    /// A score request without items.
    case noItems = "no_items"
    /// An item whose prompt is empty (the first response token needs a context).
    case emptyPrompt = "empty_prompt"
    /// A token id below 0 or not in the vocabulary.
    case invalidToken = "invalid_token"
    /// Prompt + response longer than the model's context.
    case tooLong = "too_long"
    /// Text or chat, but the daemon has no tokenizer for its models (or, for chat, no chat template): send token ids.
    case textUnsupported = "text_unsupported"
    /// Body larger than `max_body_bytes`.
    case bodyTooLarge = "body_too_large"
    /// More items than `max_items`.
    case tooManyItems = "too_many_items"
    /// More tokens than `max_request_tokens`.
    case tooManyTokens = "too_many_tokens"
    /// The peer is not on the daemon's allow-list.
    case permissionDenied = "permission_denied"
    /// No such path.
    case notFound = "not_found"
    /// The path exists, the method does not.
    case methodNotAllowed = "method_not_allowed"
    /// The request was not received completely within the daemon's read timeout (slow or stalled sender).
    case requestTimeout = "request_timeout"
    /// The request id was used before (by this client) for different items.
    case idConflict = "id_conflict"
    /// The queue is full: retry after `retry_after_s` (also in the Retry-After header).
    case busy
    /// The models are still loading: retry after `retry_after_s`.
    case notReady = "not_ready"
    /// The daemon is stopping; retry against its successor.
    case shuttingDown = "shutting_down"
    /// The request's deadline passed before it was finished.
    case deadlineExceeded = "deadline_exceeded"
    /// A bug or resource failure in the daemon; the message says what.
    case `internal`

    public var httpStatus: Int {
        switch self {
        case .badHTTP, .badJSON, .badRequest, .tooDeep, .noItems, .emptyPrompt, .invalidToken, .tooLong, .textUnsupported:
            return 400
        case .permissionDenied: return 403
        case .notFound: return 404
        case .methodNotAllowed: return 405
        case .requestTimeout: return 408
        case .idConflict: return 409
        case .bodyTooLarge, .tooManyItems, .tooManyTokens: return 413
        case .internal: return 500
        case .busy, .notReady, .shuttingDown: return 503
        case .deadlineExceeded: return 504
        }
    }

    /// Whether sending the same request again (same id) may succeed.
    public var isRetryable: Bool {
        switch self {
        case .busy, .notReady, .shuttingDown: return true
        default: return false
        }
    }
}

/// The body of every error answer: `{"version":1,"error":{"code":…,"message":…}}`.
public struct ErrorResponse: Codable, Equatable, Sendable, Error {
    public var version: Int
    public var error: ErrorDetail

    public init(_ code: ErrorCode, _ message: String, field: String? = nil, retryAfterS: Double? = nil) {
        version = WireProtocol.version
        error = ErrorDetail(code: code, message: message, field: field, retryAfterS: retryAfterS)
    }
}

public struct ErrorDetail: Codable, Equatable, Sendable {
    public var code: ErrorCode
    /// One line for people: what was wrong and where.
    public var message: String
    /// Where in the request body, as a dotted path ("items.3.prompt_ids.17"), when one place is at fault.
    public var field: String?
    /// For `busy` and `not_ready`: seconds to wait before retrying (the Retry-After header rounds it up).
    public var retryAfterS: Double?

    enum CodingKeys: String, CodingKey {
        case code, message, field, retryAfterS = "retry_after_s"
    }

    public init(code: ErrorCode, message: String, field: String?, retryAfterS: Double?) {
        self.code = code
        self.message = message
        self.field = field
        self.retryAfterS = retryAfterS
    }
}
