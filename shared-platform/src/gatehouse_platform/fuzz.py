"""The checks every service's schemathesis test runs (tests only: schemathesis is a dev dependency).

Not only "no 500": each answer must be one the operation documents (status code, content type,
documented headers such as a 429's `Retry-After`, body schema), an undeclared method must answer
405 with `Allow`, and an `OPTIONS` answer's `Allow` must name exactly the documented methods —
the checks that would have caught what issue 22's drill found over the gateway's merged document.
"""

from __future__ import annotations

from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

FUZZ_CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
    allow_header_conformance,
]
