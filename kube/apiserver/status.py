"""Errors as the API server reports them: metav1.Status objects with the matching HTTP code."""

from __future__ import annotations

import math
from typing import Any

from kube.port import (
    JSON,
    AlreadyExists,
    ClusterError,
    Conflict,
    Gone,
    Invalid,
    NotFound,
    TooManyRequests,
)

# apimachinery's StatusReason for each HTTP code we answer with.
REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",  # what kube-apiserver sends for a too-old watch or continue token
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """A request the server refuses, answered as a Status object."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: JSON | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details or {}
        self.retry_after = retry_after

    def status(self) -> JSON:
        """The metav1.Status body."""
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details = dict(self.details)
        if self.retry_after is not None:
            details["retryAfterSeconds"] = retry_after_seconds(self.retry_after)
        if details:
            body["details"] = details
        return body

    def headers(self) -> dict[str, str]:
        if self.code == 429 or self.retry_after is not None:
            return {"Retry-After": str(retry_after_seconds(self.retry_after or 1))}
        return {}


def retry_after_seconds(seconds: float) -> int:
    """Retry-After is whole seconds; never 0, which clients read as 'retry at once'."""
    return max(1, math.ceil(seconds))


def success(code: int = 200, details: JSON | None = None) -> JSON:
    """A Status that reports success (eviction, binding, deletecollection)."""
    body: JSON = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    body["code"] = code
    if details:
        body["details"] = details
    return body


def from_cluster_error(
    error: ClusterError, *, group: str = "", resource: str = "", kind: str = "", name: str = ""
) -> ApiError:
    """The Status the real server sends for `error` about `resource` `name`."""
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if resource:
        details["kind"] = resource
    message = str(error)
    match error:
        case NotFound():
            return ApiError(404, message, details=details)
        case AlreadyExists():
            return ApiError(409, message, reason="AlreadyExists", details=details)
        case Conflict():
            return ApiError(409, message, details=details)
        case Invalid():
            # kube-apiserver: `Deployment.apps "web" is invalid: <field>: <why>`
            qualified = f"{kind}.{group}" if group else kind
            subject = f'{qualified} "{name}"' if name else qualified or "the object"
            details["causes"] = [{"reason": "FieldValueInvalid", "message": message}]
            return ApiError(422, f"{subject} is invalid: {message}", details=details)
        case Gone():
            return ApiError(410, message)
        case TooManyRequests():
            return ApiError(429, message, details=details, retry_after=error.retry_after or 1)
    return ApiError(error.status if error.status >= 400 else 500, message, details=details)
