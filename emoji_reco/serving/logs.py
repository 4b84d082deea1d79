"""The server's logs: plain text, or one JSON object per line (`--log-format json`) for a log pipeline; and
the access record of every request (id, route, status, texts, latency, model version; never the texts
themselves)."""
import json
import logging
from datetime import UTC, datetime

ACCESS = logging.getLogger("emoji_reco.serving.access")
FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """time, level, process id, logger, message, the record's `fields` (an access record's), and the
    exception."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
               "level": record.levelname, "pid": record.process, "logger": record.name,
               "message": record.getMessage(),
               **getattr(record, "fields", {})}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(log_format: str) -> None:
    """Every logger (uvicorn's too: it is told to leave logging alone) writes to stderr in `log_format`."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         logging.Formatter("%(asctime)s [%(process)d] %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def access(fields: dict) -> None:
    extra = " ".join(f"{k}={fields[k]}" for k in ("texts", "version") if k in fields)
    ACCESS.info("%s %s %s %.1f ms %s id=%s", fields["method"], fields["path"], fields["status"],
                fields["ms"], extra,
                fields["request_id"], extra={"fields": fields})
