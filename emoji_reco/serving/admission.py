"""Admission: how many /invocations requests are past their body and not yet answered, held to a limit. One
more is shed at once with a 503 (`shed{reason="open_requests"}`) rather than queued behind the others."""
from emoji_reco.serving.metrics import Metrics


class Admission:
    def __init__(self, limit: int, metrics: Metrics):
        self.limit, self.metrics, self.open = limit, metrics, 0

    def enter(self) -> bool:
        """Take a place if one is free (then `leave` when answered); False, counted as shed, when none is."""
        if self.open >= self.limit:
            self.metrics.shed.labels("open_requests").inc()
            return False
        self.open += 1
        self.metrics.open_requests.inc()
        return True

    def leave(self) -> None:
        self.open -= 1
        self.metrics.open_requests.dec()
