"""MonitorFlow: compare the traffic the endpoint captured over a window with the data its model was trained
on, and ask for retraining (the event that already starts EmojiFlow) when it drifted. Scheduled daily where
the config says (`monitor.schedule`: Step Functions on AWS, Argo on Kubernetes)."""
from metaflow import Parameter, card, current, step

from emoji_reco.flowkit.base import BaseFlow
from emoji_reco.flowkit.placement import Scheduled


@Scheduled("monitor")
class MonitorFlow(BaseFlow):
    """Watch live traffic for drift; retrain when it drifts."""

    capture = Parameter("capture", default="", help="captured traffic: a folder or s3:// prefix; default "
                                                    "serve.capture.uri")
    days = Parameter("days", default=0, help="the window, in days back from now; default monitor.window_days")

    @step
    def start(self):
        """Read the window's captured traffic and the serving model's data, as that model scores it."""
        import tempfile

        from emoji_reco import backends
        from emoji_reco.monitoring import monitor

        self.settings = self.settings_with({"serve.capture.uri": self.capture,
                                            "monitor.window_days": self.days or None})
        with tempfile.TemporaryDirectory(prefix="emoji-reco-model-") as tmp:
            self.observed = monitor.observe(self.run_settings, backends.target(self.run_settings), tmp)
        print(f"{sum(len(d['emoji']) for d in self.observed['days'].values())} texts captured from "
              f"{self.observed['since'][:10]} to {self.observed['until'][:10]}; reference: "
              f"{self.observed['run']}")
        self.next(self.compare)

    @card(id="drift")
    @step
    def compare(self):
        """Measure drift per feature (PSI, Jensen-Shannon) and ask for retraining if a threshold is
        crossed."""
        from emoji_reco.flowkit import cards
        from emoji_reco.monitoring import monitor

        self.drift = monitor.judge(self.observed, self.run_settings.monitor)
        self.retrain = monitor.act(self.run_settings, self.drift, self.observed)
        cards.drift_card(current.card["drift"], self.observed, self.drift, self.retrain)
        self.next(self.end)

    @step
    def end(self):
        """Say what was found and done."""
        print(f"{self.drift['verdict']}; " + (f"retraining requested: {self.retrain}" if self.retrain else
                                               "nothing to do"))


if __name__ == "__main__":
    MonitorFlow()
