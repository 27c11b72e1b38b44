"""Errors the record service and the rest of the core raise; each knows its HTTP status and code."""


class CrmError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message, fields=None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}

    def as_json(self):
        error = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}


class BadRequest(CrmError):
    status, code = 400, "bad_request"


class Unauthorized(CrmError):
    status, code = 401, "unauthorized"


class Forbidden(CrmError):
    status, code = 403, "forbidden"


class NotFound(CrmError):
    status, code = 404, "not_found"


class Conflict(CrmError):
    status, code = 409, "conflict"


class ValidationFailed(CrmError):
    status, code = 422, "validation_failed"


class Vetoed(CrmError):
    status, code = 422, "vetoed"


class ConfigurationError(CrmError):
    """Bad settings or plugin set-up; stops start-up."""
    status, code = 500, "configuration_error"
