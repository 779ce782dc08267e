"""Typed exceptions: one class per error code of the srppod HTTP API (docs/daemon-api.md), plus the
client's own failures (connection, timeout, unexpected answers) and the weight-image protocol's."""


class SrppodError(Exception):
    """Base of every error this package raises."""


class ApiError(SrppodError):
    """The daemon answered with an API error: `code`, `message`, HTTP `status`, and when the API gives
    them the `field` at fault and `retry_after` seconds."""

    code = None
    retryable = False

    def __init__(self, message, *, status=None, field=None, retry_after=None, code=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field
        self.retry_after = retry_after
        if code is not None:
            self.code = code

    def __str__(self):
        where = f" (field {self.field})" if self.field else ""
        return f"srppod {self.status} {self.code}: {self.message}{where}"


def _api_error(name, code, doc, retryable=False):
    return type(name, (ApiError,), {"code": code, "retryable": retryable, "__doc__": doc})


BadHTTP = _api_error("BadHTTP", "bad_http", "The bytes were not a valid HTTP/1.1 request.")
BadJSON = _api_error("BadJSON", "bad_json", "The body is not JSON (or was cut off).")
BadRequest = _api_error("BadRequest", "bad_request", "JSON of the wrong shape: missing field, wrong type, bad id or name.")
TooDeep = _api_error("TooDeep", "too_deep", "JSON nested deeper than the daemon allows.")
NoItems = _api_error("NoItems", "no_items", "A score request without items.")
EmptyPrompt = _api_error("EmptyPrompt", "empty_prompt", "An item whose prompt is empty.")
InvalidToken = _api_error("InvalidToken", "invalid_token", "A token id below 0 or outside the vocabulary.")
TooLong = _api_error("TooLong", "too_long", "Prompt + response longer than the model's context.")
TextUnsupported = _api_error("TextUnsupported", "text_unsupported", "Text or chat, but the daemon has no tokenizer (or chat template).")
BodyTooLarge = _api_error("BodyTooLarge", "body_too_large", "The request body exceeds max_body_bytes.")
TooManyItems = _api_error("TooManyItems", "too_many_items", "More items than max_items.")
TooManyTokens = _api_error("TooManyTokens", "too_many_tokens", "More tokens than max_request_tokens.")
PermissionDenied = _api_error("PermissionDenied", "permission_denied", "This peer is not on the daemon's allow-list.")
NotFound = _api_error("NotFound", "not_found", "No such path.")
MethodNotAllowed = _api_error("MethodNotAllowed", "method_not_allowed", "The path takes another method.")
RequestTimeout = _api_error("RequestTimeout", "request_timeout", "The request did not arrive within the daemon's read timeout.")
IdConflict = _api_error("IdConflict", "id_conflict", "The request id was used before (by this client) for other items.")
Busy = _api_error("Busy", "busy", "The queue is full; retry after `retry_after` seconds.", retryable=True)
NotReady = _api_error("NotReady", "not_ready", "The models are still loading; retry after `retry_after` seconds.", retryable=True)
ShuttingDown = _api_error("ShuttingDown", "shutting_down", "The daemon is stopping; retry against its successor.", retryable=True)
DeadlineExceeded = _api_error("DeadlineExceeded", "deadline_exceeded", "The request's deadline passed before it was finished.")
InternalError = _api_error("InternalError", "internal", "A bug or resource failure in the daemon.")

#: Error code -> exception class, for every code the API defines.
ERRORS = {cls.code: cls for cls in [
    BadHTTP, BadJSON, BadRequest, TooDeep, NoItems, EmptyPrompt, InvalidToken, TooLong, TextUnsupported, BodyTooLarge,
    TooManyItems, TooManyTokens, PermissionDenied, NotFound, MethodNotAllowed, RequestTimeout, IdConflict, Busy, NotReady,
    ShuttingDown, DeadlineExceeded, InternalError]}


def api_error(status, body):
    """The exception for an error answer (`{"error": {"code", "message", ...}}`)."""
    detail = body.get("error", {}) if isinstance(body, dict) else {}
    code = detail.get("code")
    cls = ERRORS.get(code, ApiError)
    return cls(detail.get("message", str(body)[:200]), status=status, field=detail.get("field"),
               retry_after=detail.get("retry_after_s"), code=None if code in ERRORS else code)


class ConnectionFailed(SrppodError):
    """Could not connect, or the connection broke before the answer was complete."""


class Timeout(ConnectionFailed):
    """No complete answer within the client's timeout."""


class UnexpectedAnswer(SrppodError):
    """An answer the API does not define (not JSON, wrong shape)."""


class ImageError(SrppodError):
    """The weight-image socket refused a request: `code` is one of the protocol's (unknown_image,
    hash_mismatch, permission_denied, bad_request, unsupported_version, unknown_op, too_large, busy)."""

    def __init__(self, code, message):
        super().__init__(f"weight image {code}: {message}")
        self.code = code
        self.message = message
