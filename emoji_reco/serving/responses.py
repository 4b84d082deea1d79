"""The JSON error every route answers with: `{"error": ..., "request_id": ...}`, and the busy reply."""
from fastapi.responses import JSONResponse


def error(status: int, message: str, request_id: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "request_id": request_id}, status_code=status, headers=headers)


BUSY, BUSY_MESSAGE = {"Retry-After": "1"}, "The server is busy; retry shortly."
