"""Python client of srppod, the SRPPO reward daemon (standard library only; NumPy optional).

    from srppo_client import Client, attach
    client = Client("/run/srppod/http.sock", client_name="my-trainer")
    client.score_chat([{"role": "user", "content": "Hi"}], "Hello!")["reward"]
    with attach("/run/srppod/images.sock", "sft") as image:
        embeddings = image.array("model.embed_tokens.weight")   # NumPy view of the shared memory

See docs/daemon-api.md for the HTTP API and docs/weight-image-protocol.md for the image socket.
"""
from .client import Client, new_request_id
from .errors import (ERRORS, ApiError, BadHTTP, BadJSON, BadRequest, BodyTooLarge, Busy, ConnectionFailed, DeadlineExceeded,
                     EmptyPrompt, IdConflict, ImageError, InternalError, InvalidToken, MethodNotAllowed, NoItems, NotFound,
                     NotReady, PermissionDenied, RequestTimeout, ShuttingDown, SrppodError, TextUnsupported, Timeout, TooDeep,
                     TooLong, TooManyItems, TooManyTokens, UnexpectedAnswer)
from .images import WeightImage, attach, list_images

__version__ = "1.0.0"
__all__ = ["Client", "new_request_id", "attach", "list_images", "WeightImage", "ERRORS", "SrppodError", "ApiError",
           "ConnectionFailed", "Timeout", "UnexpectedAnswer", "ImageError", *[cls.__name__ for cls in ERRORS.values()]]
